//! The run's progress display: an indicatif line on a terminal, plain log
//! lines (at most one per few seconds) when stderr is not a terminal.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::runner::status::Counts;

/// Shows registration, the scenario clock, ends and failures.
pub struct Progress {
    bar: Option<ProgressBar>,
    instances: u32,
    last_line: Option<Instant>,
    last: Counts,
    /// What the launcher says (e.g. a SLURM job's state).
    state: Option<String>,
}

impl Progress {
    /// `fancy` asks for a bar; it is only drawn when stderr is a terminal.
    pub fn new(fancy: bool, instances: u32, run_id: &str) -> Self {
        let bar = (fancy && console_is_terminal()).then(|| {
            let bar = ProgressBar::new(u64::from(instances));
            bar.set_style(
                ProgressStyle::with_template("{prefix:.bold} {spinner} {wide_msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(run_id.to_string());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Self {
            bar,
            instances,
            last_line: None,
            last: Counts::default(),
            state: None,
        }
    }

    fn message(&self, c: Counts, clock: Option<f64>) -> String {
        let clock = match clock {
            Some(t) if t < 0.0 => format!("starting in {:.1} s", -t),
            Some(t) => format!("t={}", clock_text(t)),
            None => "waiting at the barrier".into(),
        };
        let state = self
            .state
            .as_deref()
            .map(|s| format!("{s} · "))
            .unwrap_or_default();
        format!(
            "{state}registered {}/{} · ready {} · {clock} · ended {} · failed {}",
            c.registered, self.instances, c.ready, c.ended, c.failed
        )
    }

    /// Refresh with the current tallies and the wall clock since the start.
    pub fn update(&mut self, counts: Counts, clock: Option<f64>) {
        let msg = self.message(counts, clock);
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::from(counts.ended));
                bar.set_message(msg);
            }
            None => {
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
                if counts != self.last || due {
                    if due {
                        tracing::info!("{msg}");
                        self.last_line = Some(Instant::now());
                    }
                    self.last = counts;
                }
            }
        }
    }

    /// Show what the launcher reports (replaces the previous state).
    pub fn set_state(&mut self, state: String) {
        tracing::info!("{state}");
        self.state = Some(state);
    }

    pub fn finish(&mut self, counts: Counts) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "all {} instances ended ({} failed)",
            counts.ended,
            counts.failed
        );
    }
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// `75.5` -> `1:15.5`.
pub fn clock_text(secs: f64) -> String {
    let whole = secs.max(0.0);
    let m = (whole / 60.0).floor();
    let s = whole - m * 60.0;
    format!("{}:{:04.1}", m as u64, s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_reads_minutes_and_seconds() {
        assert_eq!(super::clock_text(75.5), "1:15.5");
        assert_eq!(super::clock_text(3.0), "0:03.0");
    }
}
