//! Graceful stop: the first SIGINT/SIGTERM stops reading and lets in-flight
//! batches drain; a second one exits at once.

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
