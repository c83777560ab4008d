//! The stop signal: the first SIGINT/SIGTERM stops reading and lets
//! in-flight batches drain; a second one exits at once. A leaf module: the
//! sources watch it, the runner and the commands raise it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raised when the run should stop reading new records.
#[derive(Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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
            std::process::exit(1);
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
                        "stopping: no new records are read; finishing the batches in flight (signal again to exit at once)"
                    );
                    stop.raise();
                } else {
                    tracing::error!("second signal: exiting without draining");
                    std::process::exit(130);
                }
            }
        });
        Ok(())
    }
}
