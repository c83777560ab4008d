//! The one token that tells every node how the run should end. A stop
//! (the first SIGINT/SIGTERM) stops reading and lets in-flight batches
//! drain; a failure (any node's error) also stops reading, and every node
//! drops what it holds, unconfirmed. A second signal exits at once. A leaf
//! module: sources watch it, the runner and the commands raise it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const FAILED: u8 = 2;

/// Shared by every node of a run; clones are the same token.
#[derive(Clone, Default)]
pub struct StopSignal(Arc<AtomicU8>);

impl StopSignal {
    /// Stop reading and drain (a signal); no effect after a failure.
    pub fn raise(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, STOPPING, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Stop reading and drop what is in flight (a node failed).
    pub fn fail(&self) {
        self.0.store(FAILED, Ordering::SeqCst);
    }

    /// True once stopping or failed: read nothing more.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst) != RUNNING
    }

    /// True once a node failed: publish nothing more.
    pub fn has_failed(&self) -> bool {
        self.0.load(Ordering::SeqCst) == FAILED
    }

    /// Once raised, allows `limit` for draining; then the process exits with code 1.
    pub fn exit_if_not_done_within(&self, limit: std::time::Duration) {
        let stop = self.clone();
        tokio::spawn(async move {
            while !stop.is_raised() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tokio::time::sleep(limit).await;
            tracing::error!(
                seconds = limit.as_secs(),
                "did not drain in time after the stop signal; exiting"
            );
            exit_now(1);
        });
    }

    /// Raises the signal on SIGINT or SIGTERM; must be called inside a tokio runtime.
    pub fn raise_on_os_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stop = self.clone();
        tokio::spawn(async move {
            for attempt in 0.. {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if attempt == 0 {
                    tracing::warn!(
                        "stopping: no new records are read; finishing the batches being written (signal again to exit at once)"
                    );
                    stop.raise();
                } else {
                    tracing::error!("second signal: exiting without draining");
                    exit_now(130);
                }
            }
        });
        Ok(())
    }
}

/// Exits at once, without running libraries' exit-time teardown: ONNX
/// Runtime's, while a session still runs on another thread, prints
/// errors of its own. Nothing unacknowledged is lost: it is read again.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stderr().flush();
    let _ = std::io::stdout().flush();
    // SAFETY: `_exit` ends the process; no Rust state is used after it.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_wins_over_a_stop_and_a_stop_does_not_undo_a_failure() {
        let token = StopSignal::default();
        assert!(!token.is_raised() && !token.has_failed());
        token.raise();
        assert!(token.is_raised() && !token.has_failed());
        token.fail();
        assert!(token.has_failed());
        token.clone().raise();
        assert!(token.has_failed(), "a later stop leaves it failed");
    }
}
