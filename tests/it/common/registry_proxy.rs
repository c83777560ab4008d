//! nginx (Debian's, unpacked by `scripts/setup.sh test`) in front of the
//! Schema Registry: rivven-schema has neither TLS nor authentication, and
//! registries in production have both. One listener asks for basic
//! authentication, one for a bearer token; both speak TLS with a private CA
//! and pass what they accept on to the registry.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{certificates, free_port, repo_root, setup, wait_until_listening};

pub const REGISTRY_USER: &str = "sr-reader";
/// The tests check the password and the token appear in no output.
pub const REGISTRY_PASSWORD: &str = "Sr-p4ss-never-printed";
pub const REGISTRY_TOKEN: &str = "sr-t0ken-never-printed";

pub struct RegistryProxy {
    /// `https://127.0.0.1:PORT`, basic authentication.
    pub basic_url: String,
    /// `https://127.0.0.1:PORT`, bearer authentication.
    pub bearer_url: String,
    /// The CA that signed both listeners' certificate.
    pub ca: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RegistryProxy {
    /// Proxies `upstream` (the registry's `http://` url).
    pub fn start(upstream: &str) -> Self {
        setup(Some("test"));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("certs")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        certificates(&root.join("certs"));
        std::fs::write(
            root.join("htpasswd"),
            format!("{REGISTRY_USER}:{{PLAIN}}{REGISTRY_PASSWORD}\n"),
        )
        .unwrap();
        let (basic, bearer) = (free_port(), free_port());
        let config = root.join("nginx.conf");
        std::fs::write(&config, nginx_conf(root, upstream, basic, bearer)).unwrap();
        let log_path = root.join("error.log");
        let log = File::create(&log_path).unwrap();
        let mut child = Command::new(repo_root().join(".tools/nginx/bin/nginx"))
            .arg("-p")
            .arg(root)
            .arg("-e")
            .arg(&log_path)
            .arg("-c")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nginx starts");
        for port in [basic, bearer] {
            wait_until_listening(&mut child, port, &log_path, "nginx");
        }
        RegistryProxy {
            basic_url: format!("https://127.0.0.1:{basic}"),
            bearer_url: format!("https://127.0.0.1:{bearer}"),
            ca: root.join("certs/ca.pem"),
            child,
            _dir: dir,
        }
    }
}

fn nginx_conf(root: &Path, upstream: &str, basic: u16, bearer: u16) -> String {
    let root = root.display();
    format!(
        "daemon off;\nmaster_process off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {root}/tmp;\n  proxy_temp_path {root}/tmp;\n  fastcgi_temp_path {root}/tmp;\n  uwsgi_temp_path {root}/tmp;\n  scgi_temp_path {root}/tmp;\n  ssl_certificate {root}/certs/server.pem;\n  ssl_certificate_key {root}/certs/server.key;\n  server {{\n    listen 127.0.0.1:{basic} ssl;\n    auth_basic \"schema registry\";\n    auth_basic_user_file {root}/htpasswd;\n    location / {{ proxy_pass {upstream}; }}\n  }}\n  server {{\n    listen 127.0.0.1:{bearer} ssl;\n    location / {{\n      if ($http_authorization != \"Bearer {REGISTRY_TOKEN}\") {{ return 401; }}\n      proxy_pass {upstream};\n    }}\n  }}\n}}\n"
    )
}

impl Drop for RegistryProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
