//! A progress bar on a terminal, nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress(ProgressBar);

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
                    "{{bar:40}} {{human_pos}}/{{human_len}} {unit} {{per_sec}} eta {{eta}}"
                ))
                .expect("valid template"),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {{human_pos}} {unit} {{per_sec}}"
                ))
                .expect("valid template"),
            ),
        };
        Progress(bar)
    }

    pub fn advance(&self, records: u64) {
        self.0.inc(records);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
