//! docker-compose.yml is valid (checked with a real Docker Compose binary, as
//! no Docker engine runs here) and pins every image.

mod common;

use std::process::Command;

use common::*;

fn compose_config(file: &std::path::Path) -> std::process::Output {
    setup(Some("test"));
    Command::new(repo_root().join(".tools/compose/compose/docker-compose"))
        .arg("-f")
        .arg(file)
        .args(["config", "-q"])
        .output()
        .expect("docker-compose runs")
}

#[test]
fn compose_file_is_valid() {
    let output = compose_config(&repo_root().join("docker-compose.yml"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_validator_rejects_a_broken_file() {
    let ws = Workspace::new();
    let broken = ws.write(
        "docker-compose.yml",
        "services:\n  x:\n    image: a:1\n    depends_on: {nope: {condition: service_healthy}}\n",
    );
    assert!(!compose_config(&broken).status.success());
}

#[test]
fn every_image_is_pinned_and_ports_stay_on_loopback() {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    for line in text.lines().map(str::trim) {
        if let Some(image) = line.strip_prefix("image:") {
            let image = image.trim();
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(!tag.is_empty() && tag != "latest", "unpinned image {image}");
        }
        if line.starts_with("- \"")
            && line.contains(':')
            && line.ends_with('"')
            && line.matches(':').count() == 2
        {
            assert!(
                line.starts_with("- \"127.0.0.1:"),
                "port published beyond loopback: {line}"
            );
        }
    }
}
