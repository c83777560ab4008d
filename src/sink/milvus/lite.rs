//! Embedded Milvus Lite: when a sink's `uri` is a path, start
//! `milvus-lite server` on that data directory and a free loopback port,
//! wait until it answers, and stop it cleanly when dropped — and, should
//! vecpipe die first, have the kernel stop it (see [`spawn_server`]).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::MilvusError;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Milvus Lite server owned by this process.
pub(crate) struct MilvusLite {
    child: Child,
    uri: String,
    data_dir: PathBuf,
    /// Keeps the thread that spawned the server alive until the server is
    /// stopped (dropped after [`Drop::drop`]): see [`spawn_server`].
    _spawner: mpsc::Sender<()>,
}

/// True when `uri` names a local data directory rather than a server.
pub(crate) fn is_local_path(uri: &str) -> bool {
    !(uri.starts_with("http://")
        || uri.starts_with("https://")
        || uri.starts_with("tcp://")
        || uri.starts_with("unix:"))
}

/// Where the `milvus-lite` executable is looked for, in order; a configured
/// path is the only candidate.
pub(super) fn executable_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = configured {
        return vec![path.to_path_buf()];
    }
    let mut candidates = Vec::new();
    // Beside the executable: a wheel install puts both in the venv's bin/.
    candidates.extend(crate::install::bin_dir().map(|bin| bin.join("milvus-lite")));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("milvus-lite")));
    }
    candidates.push(PathBuf::from(".venv/bin/milvus-lite"));
    // The checkout the binary was built in (target/{debug,release}/vecpipe).
    if let Some(root) = crate::install::checkout() {
        candidates.push(root.join(".venv/bin/milvus-lite"));
    }
    candidates
}

impl MilvusLite {
    pub(crate) fn start(data_dir: &Path, executable: Option<&Path>) -> Result<Self, MilvusError> {
        let candidates = executable_candidates(executable);
        let Some(program) = candidates.iter().find(|p| p.is_file()).cloned() else {
            return Err(MilvusError::LiteNotInstalled {
                looked: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if data_dir.is_file() {
            return Err(MilvusError::LiteUriIsFile {
                path: data_dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(data_dir).map_err(|source| MilvusError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        check_unlocked(data_dir)?;
        let port = free_port().map_err(|source| MilvusError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let mut command = Command::new(&program);
        command
            .args(["server", "--data-dir"])
            .arg(data_dir)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (mut child, spawner) = spawn_server(command).map_err(|source| MilvusError::Io {
            path: program.clone(),
            source,
        })?;
        let stderr_tail = Arc::new(Mutex::new(Vec::<String>::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = stderr_tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::debug!(target: "milvus_lite", "{line}");
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
            });
        }
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = stderr_tail
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .join("\n");
                return Err(MilvusError::LiteFailed {
                    data_dir: data_dir.to_path_buf(),
                    message: format!("exited with {status}: {tail}"),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(MilvusError::LiteFailed {
                    data_dir: data_dir.to_path_buf(),
                    message: format!(
                        "did not answer on {address} within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(data_dir = %data_dir.display(), %address, "started Milvus Lite");
        Ok(MilvusLite {
            child,
            uri: format!("http://{address}"),
            data_dir: data_dir.to_path_buf(),
            _spawner: spawner,
        })
    }

    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }
}

impl Drop for MilvusLite {
    fn drop(&mut self) {
        // SIGINT is Milvus Lite's graceful stop (a KeyboardInterrupt, then
        // `db.close()`: background compaction and index writes finish). It
        // has no SIGTERM handler: SIGTERM ends it mid-write, which can leave
        // a half-written index file the next server fails to load.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                tracing::info!(data_dir = %self.data_dir.display(), "stopped Milvus Lite");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(data_dir = %self.data_dir.display(), "Milvus Lite did not stop in time; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns the server so that only vecpipe decides when it stops:
/// - in a process group of its own, so a Ctrl-C at the terminal (SIGINT to
///   the foreground group) reaches vecpipe alone, which drains its last
///   batches into the server and then stops it;
/// - with SIGINT at its default disposition: a command started in the
///   background by a script inherits SIGINT *ignored*, and Python then never
///   turns it into its graceful stop (`vecpipe search` from such a script
///   waited 20 s, then had to kill the server);
/// - with SIGINT, its graceful stop, as its parent-death signal (Linux), so
///   a vecpipe killed outright (kill -9, a crash) does not leave it running
///   and holding the data directory.
///
/// The kernel sends the parent-death signal when the *thread* that spawned
/// the child ends, so the spawning happens on a thread of its own that
/// waits until the returned sender is dropped.
fn spawn_server(mut command: Command) -> std::io::Result<(Child, mpsc::Sender<()>)> {
    command.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec, only async-signal-safe calls (signal,
    // prctl, getppid) and no allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::signal(libc::SIGINT, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // vecpipe died before the signal was armed: do not start.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (spawned_tx, spawned) = mpsc::channel();
    let (keep, kept) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("milvus-lite".into())
        .spawn(move || {
            let _ = spawned_tx.send(command.spawn());
            // Returns once the MilvusLite, holding `keep`, is dropped.
            let _ = kept.recv();
        })?;
    let child = spawned
        .recv()
        .map_err(|_| std::io::Error::other("the thread starting Milvus Lite ended"))??;
    Ok((child, keep))
}

/// Milvus Lite holds an advisory lock on `LOCK` in its data directory while
/// it runs; a second one would die with a Python traceback, so ask first.
fn check_unlocked(data_dir: &Path) -> Result<(), MilvusError> {
    let path = data_dir.join("LOCK");
    let Ok(file) = std::fs::File::open(&path) else {
        return Ok(()); // never opened by Milvus Lite: nobody holds it
    };
    match file.try_lock() {
        Ok(()) => Ok(()), // released when `file` closes
        Err(std::fs::TryLockError::WouldBlock) => Err(MilvusError::LiteLocked {
            data_dir: data_dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(MilvusError::Io { path, source }),
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
