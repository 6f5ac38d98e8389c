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
    /// What the launcher says (e.g. a SLURM job's state).
    state: Option<String>,
    /// Scenario commands fired so far, over every instance.
    commands: u64,
    /// Whether to show anything at all (`-q` turns it off).
    enabled: bool,
    started: Instant,
}

/// How often the plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// `fancy` asks for progress: a bar when stderr is a terminal, a plain
    /// line every 10 s otherwise; `false` (`-q`) shows nothing.
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
            state: None,
            commands: 0,
            enabled: fancy,
            started: Instant::now(),
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
            "{state}registered {}/{} · ready {} · {clock} · commands {} · ended {} · failed {}",
            c.registered, self.instances, c.ready, self.commands, c.ended, c.failed
        )
    }

    /// Refresh with the current tallies and the wall clock since the start.
    pub fn update(&mut self, counts: Counts, clock: Option<f64>) {
        let msg = self.message(counts, clock);
        // Nothing to say in a log before the first process registers.
        self.show(msg, counts.ended, counts != Counts::default());
    }

    /// Refresh with where a simulated run is: virtual time and datagrams
    /// instead of registrations (a simulation has no processes to wait for).
    pub fn update_simulated(&mut self, p: &peerlab_runtime::sim::SimProgress) {
        self.commands = p.commands;
        let msg = simulated_message(p, self.started.elapsed());
        self.show(msg, p.ended, true);
    }

    /// Put `msg` on the bar, or, when stderr is not a terminal (CI logs,
    /// redirected output), print it as a plain line at most every
    /// PLAIN_EVERY.
    fn show(&mut self, msg: String, ended: u32, worth_a_line: bool) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::from(ended));
                bar.set_message(msg);
            }
            None if self.enabled && worth_a_line => {
                let due = self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY);
                if due {
                    eprintln!("peerlab: {msg}");
                    self.last_line = Some(Instant::now());
                }
            }
            None => {}
        }
    }

    /// Scenario commands fired so far, over every instance.
    pub fn set_commands(&mut self, commands: u64) {
        self.commands = commands;
    }

    /// Show what the launcher reports (replaces the previous state).
    pub fn set_state(&mut self, state: String) {
        if self.bar.is_none() && self.enabled {
            eprintln!("peerlab: {state}");
        }
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

/// The simulated run's line: `simulated · set up 64/10000 · wall 0:03.0` while
/// instances are created, then the virtual clock, ends and datagrams.
fn simulated_message(p: &peerlab_runtime::sim::SimProgress, wall: Duration) -> String {
    use peerlab_runtime::sim::SimStage;
    let wall = clock_text(wall.as_secs_f64());
    let (done, n) = (p.set_up, p.instances);
    match p.clock {
        None => match p.stage {
            SimStage::SettingUp | SimStage::Running => {
                format!("simulated · set up {done}/{n} instances · wall {wall}")
            }
            SimStage::Directory => {
                format!("simulated · peer directory {done}/{n} instances · wall {wall}")
            }
            SimStage::Starting => format!("simulated · started {done}/{n} instances · wall {wall}"),
            SimStage::Ending => {
                format!("simulated · ending: {done}/{n} instances shut down · wall {wall}")
            }
        },
        Some(t) => {
            let clock = if t < 0.0 {
                format!("starting in {:.1} s", -t)
            } else {
                format!("t={}", clock_text(t))
            };
            format!(
                "simulated · {clock} (virtual) · commands {} · ended {}/{} · failed {} · datagrams {} delivered, {} lost · wall {wall}",
                p.commands, p.ended, p.instances, p.failed, p.delivered, p.lost
            )
        }
    }
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// `75.5` -> `1:15.5`.
pub fn clock_text(secs: f64) -> String {
    // Round to the tenth shown first, so 599.97 reads 10:00.0, not 9:60.0.
    let tenths = (secs.max(0.0) * 10.0).round() as u64;
    format!("{}:{:02}.{}", tenths / 600, tenths % 600 / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_where_the_run_is() {
        let mut p = Progress::new(false, 5, "0001-x");
        p.set_commands(12);
        let c = Counts {
            registered: 5,
            ready: 4,
            ended: 1,
            failed: 1,
        };
        assert_eq!(
            p.message(c, Some(75.5)),
            "registered 5/5 · ready 4 · t=1:15.5 · commands 12 · ended 1 · failed 1"
        );
        assert!(p.message(c, None).contains("waiting at the barrier"));
        assert!(p.message(c, Some(-2.0)).contains("starting in 2.0 s"));
    }

    #[test]
    fn the_simulated_line_says_virtual_time_and_datagrams() {
        use peerlab_runtime::sim::SimProgress;
        let setting_up = SimProgress {
            set_up: 64,
            instances: 10_000,
            ..SimProgress::default()
        };
        assert_eq!(
            simulated_message(&setting_up, Duration::from_secs(3)),
            "simulated · set up 64/10000 instances · wall 0:03.0"
        );
        // The stages between setup and the clock, and after it, say so.
        use peerlab_runtime::sim::SimStage;
        let at = |stage| SimProgress {
            stage,
            ..setting_up
        };
        assert_eq!(
            simulated_message(&at(SimStage::Directory), Duration::from_secs(3)),
            "simulated · peer directory 64/10000 instances · wall 0:03.0"
        );
        assert_eq!(
            simulated_message(&at(SimStage::Starting), Duration::from_secs(3)),
            "simulated · started 64/10000 instances · wall 0:03.0"
        );
        assert_eq!(
            simulated_message(&at(SimStage::Ending), Duration::from_secs(3)),
            "simulated · ending: 64/10000 instances shut down · wall 0:03.0"
        );
        let running = SimProgress {
            stage: peerlab_runtime::sim::SimStage::Running,
            set_up: 10_000,
            instances: 10_000,
            clock: Some(90.0),
            ended: 3,
            failed: 1,
            commands: 40_000,
            delivered: 123,
            lost: 4,
        };
        assert_eq!(
            simulated_message(&running, Duration::from_secs(61)),
            "simulated · t=1:30.0 (virtual) · commands 40000 · ended 3/10000 · failed 1 · datagrams 123 delivered, 4 lost · wall 1:01.0"
        );
    }

    #[test]
    fn clock_reads_minutes_and_seconds() {
        assert_eq!(super::clock_text(75.5), "1:15.5");
        assert_eq!(super::clock_text(3.0), "0:03.0");
        assert_eq!(super::clock_text(599.97), "10:00.0");
        assert_eq!(super::clock_text(59.94), "0:59.9");
        assert_eq!(super::clock_text(-1.0), "0:00.0");
    }
}
