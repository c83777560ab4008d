//! docker-compose.yml is valid (checked with a real Docker Compose binary, as
//! no Docker engine runs here) and pins every image.

use std::process::Command;

use crate::common::*;

/// `docker-compose -f FILE ARGS…` with the real Docker Compose binary.
fn compose(file: &std::path::Path, args: &[&str]) -> std::process::Output {
    setup(Some("test"));
    Command::new(repo_root().join(".tools/compose/compose/docker-compose"))
        .arg("-f")
        .arg(file)
        .args(args)
        .output()
        .expect("docker-compose runs")
}

fn compose_config(file: &std::path::Path) -> std::process::Output {
    compose(file, &["config", "-q"])
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

/// Every published port mapping not bound to 127.0.0.1, as Docker Compose
/// itself reads the file (short and long syntax alike).
fn ports_beyond_loopback(file: &std::path::Path) -> Vec<String> {
    let output = compose(file, &["config", "--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut open = Vec::new();
    for (service, definition) in config["services"].as_object().unwrap() {
        for port in definition["ports"].as_array().into_iter().flatten() {
            if port["host_ip"] != "127.0.0.1" {
                open.push(format!("{service}: {port}"));
            }
        }
    }
    open
}

#[test]
fn every_image_is_pinned_and_ports_stay_on_loopback() {
    let file = repo_root().join("docker-compose.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text.lines().map(str::trim) {
        if let Some(image) = line.strip_prefix("image:") {
            let image = image.trim();
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(!tag.is_empty() && tag != "latest", "unpinned image {image}");
        }
    }
    assert_eq!(ports_beyond_loopback(&file), Vec::<String>::new());
}

#[test]
fn the_port_check_catches_every_form_of_an_open_port() {
    let ws = Workspace::new();
    let file = ws.write(
        "docker-compose.yml",
        "services:\n  a:\n    image: a:1\n    ports: [\"19530:19530\", \"127.0.0.1:9000:9000\", \"8080\"]\n  b:\n    image: b:1\n    ports:\n      - { target: 80, published: 8081 }\n",
    );
    let open = ports_beyond_loopback(&file);
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(
        open[0].starts_with("a: ") && open[0].contains("19530"),
        "{open:?}"
    );
    assert!(
        open[2].starts_with("b: ") && open[2].contains("8081"),
        "{open:?}"
    );
}
