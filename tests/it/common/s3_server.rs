//! An S3-protocol server for the tests: s3s-fs (the s3s crate's server
//! over a directory, built by `scripts/setup.sh test`), on a free
//! 127.0.0.1 port with its own directory, stopped when dropped.
//!
//! Its limits, as the tests meet them: one access key pair, given at start;
//! path-style requests only (`http://host:port/bucket/key`); a bucket is a
//! directory of its root and an object a file under it (so a test can see
//! what a bucket holds on disk); no TLS, versioning or lifecycle rules. The
//! real Milvus server keeps all its data in it (`--s3`), as a cluster keeps
//! its data in MinIO or S3.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{free_port, repo_root, setup};

/// The bucket the Milvus server keeps its data in (its `minio.bucketName`).
pub const BUCKET: &str = "a-bucket";
pub const ACCESS_KEY: &str = "vecpipe-test-access";
pub const SECRET_KEY: &str = "s3-secret-7d1f0c2b9e";

pub struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl S3Server {
    pub fn start() -> Self {
        setup(Some("test"));
        let program = repo_root().join(".tools/s3s-fs/bin/s3s-fs");
        assert!(
            program.is_file(),
            "{} is missing after setup",
            program.display()
        );
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("data").join(BUCKET)).unwrap();
        let port = free_port();
        let log = std::fs::File::create(root.path().join("server.log")).unwrap();
        let mut child = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path().join("data"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("s3s-fs starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "s3s-fs exited: {}",
                std::fs::read_to_string(root.path().join("server.log")).unwrap_or_default()
            );
            assert!(
                Instant::now() < deadline,
                "s3s-fs was not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            child,
            root,
            address,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The files under `prefix` of the bucket, as the server stores them.
    pub fn objects(&self, prefix: &str) -> Vec<PathBuf> {
        let dir = self.bucket_dir().join(prefix);
        let mut found = Vec::new();
        collect_files(&dir, &mut found);
        found.sort();
        found
    }

    fn bucket_dir(&self) -> PathBuf {
        self.root.path().join("data").join(BUCKET)
    }
}

fn collect_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, found);
        } else {
            found.push(path);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
