//! A progress bar on a terminal, nothing otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    /// Shown after the count, e.g. documents skipped as unchanged.
    unchanged: Option<Arc<AtomicU64>>,
}

impl Progress {
    /// A bar when the total is known, a counter otherwise; hidden unless stderr is a terminal.
    /// `unit` names what is counted ("records", "queries").
    pub fn new(total: Option<u64>, unit: &str) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:40}} {{human_pos}}/{{human_len}} {unit} {{msg}}{{per_sec}} eta {{eta}}"
                ))
                .expect("valid template"),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{human_pos}} {unit} {{msg}}{{per_sec}}"
                ))
                .expect("valid template"),
            ),
        };
        Progress {
            bar,
            unchanged: None,
        }
    }

    /// Also shows how many documents were skipped as unchanged.
    pub fn with_unchanged(mut self, unchanged: Option<Arc<AtomicU64>>) -> Self {
        self.unchanged = unchanged;
        self
    }

    pub fn advance(&self, records: u64) {
        if let Some(unchanged) = &self.unchanged {
            let n = unchanged.load(Ordering::Relaxed);
            self.bar.set_message(format!("({n} unchanged) "));
        }
        self.bar.inc(records);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
