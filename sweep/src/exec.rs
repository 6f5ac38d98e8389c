//! Running a sweep's jobs: each a `peerlab run` child process (its own
//! process group, its output in a log file), up to `parallel` at once.
//! When `stop` is set (the caller's Ctrl-C), no new job starts and every
//! running child is sent one SIGINT, so it ends its run as interrupted and
//! writes its summary, which a resumed sweep then does again.
//!
//! Must not: decide what to run or read run folders (the caller does).

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One child process to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Its stdout and stderr go here.
    pub log: PathBuf,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    /// The process exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It was never started (a stop came first).
    NotStarted,
    /// It could not be started.
    SpawnFailed(String),
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started(usize),
    Ended {
        job: usize,
        end: JobEnd,
        took: Duration,
    },
    /// The stop was seen: running jobs were asked to stop.
    Stopping {
        running: usize,
    },
}

/// Run every launch, at most `parallel` at a time, reporting each event.
/// Returns each job's end, in the launches' order.
pub fn run_all(
    launches: &[Launch],
    parallel: usize,
    stop: &AtomicBool,
    mut on_event: impl FnMut(Event),
) -> Vec<JobEnd> {
    let parallel = parallel.max(1);
    let mut ends: Vec<Option<JobEnd>> = vec![None; launches.len()];
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let mut next = 0;
    let mut stopping = false;
    loop {
        if !stopping && stop.load(Ordering::SeqCst) {
            stopping = true;
            for (_, child, _) in &running {
                interrupt(child);
            }
            on_event(Event::Stopping {
                running: running.len(),
            });
        }
        while !stopping && running.len() < parallel && next < launches.len() {
            let i = next;
            next += 1;
            match spawn(&launches[i]) {
                Ok(child) => {
                    running.push((i, child, Instant::now()));
                    on_event(Event::Started(i));
                }
                Err(e) => {
                    let end = JobEnd::SpawnFailed(e);
                    on_event(Event::Ended {
                        job: i,
                        end: end.clone(),
                        took: Duration::ZERO,
                    });
                    ends[i] = Some(end);
                }
            }
        }
        let mut k = 0;
        while k < running.len() {
            match running[k].1.try_wait() {
                Ok(Some(status)) => {
                    let (i, _, started) = running.swap_remove(k);
                    let end = JobEnd::Exited(status.code());
                    on_event(Event::Ended {
                        job: i,
                        end: end.clone(),
                        took: started.elapsed(),
                    });
                    ends[i] = Some(end);
                }
                Ok(None) => k += 1,
                Err(e) => {
                    let (i, _, started) = running.swap_remove(k);
                    let end = JobEnd::SpawnFailed(format!("cannot wait for it: {e}"));
                    on_event(Event::Ended {
                        job: i,
                        end: end.clone(),
                        took: started.elapsed(),
                    });
                    ends[i] = Some(end);
                }
            }
        }
        if running.is_empty() && (stopping || next >= launches.len()) {
            break;
        }
        // Children are polled: a short wait between looks, not a timing guess.
        std::thread::sleep(Duration::from_millis(50));
    }
    ends.into_iter()
        .map(|e| e.unwrap_or(JobEnd::NotStarted))
        .collect()
}

fn spawn(l: &Launch) -> Result<Child, String> {
    let log =
        File::create(&l.log).map_err(|e| format!("cannot create {}: {e}", l.log.display()))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", l.log.display()))?;
    let mut cmd = Command::new(&l.program);
    cmd.args(&l.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // Its own process group: a terminal's Ctrl-C reaches the sweep only,
    // which forwards one SIGINT (two would skip the run's grace period).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", l.program.display()))
}

fn interrupt(child: &Child) {
    #[cfg(unix)]
    // SAFETY: kill only sends a signal to the child's pid, which is ours
    // and not yet reaped (so not reused).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_and_report_their_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let l = |code: &str, i: usize| Launch {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), format!("echo job{i}; exit {code}").into()],
            log: dir.path().join(format!("{i}.log")),
        };
        let launches = [l("0", 0), l("3", 1), l("0", 2)];
        let mut events = Vec::new();
        let ends = run_all(&launches, 2, &AtomicBool::new(false), |e| events.push(e));
        assert_eq!(
            ends,
            [
                JobEnd::Exited(Some(0)),
                JobEnd::Exited(Some(3)),
                JobEnd::Exited(Some(0))
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("1.log")).unwrap(),
            "job1\n"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Started(_)))
                .count(),
            3
        );
    }

    #[test]
    fn a_stop_interrupts_running_jobs_and_starts_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let started = dir.path().join("started");
        // The child traps SIGINT and exits 7: the stop reached it.
        let script = format!(
            "trap 'exit 7' INT; touch '{}'; while true; do sleep 0.05; done",
            started.display()
        );
        let launches: Vec<Launch> = (0..3)
            .map(|i| Launch {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script.clone().into()],
                log: dir.path().join(format!("{i}.log")),
            })
            .collect();
        let ends = std::thread::scope(|s| {
            let h = s.spawn(|| run_all(&launches, 1, &stop, |_| {}));
            // Wait for the first child to be up, then stop.
            while !started.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::SeqCst);
            h.join().unwrap()
        });
        assert_eq!(ends[0], JobEnd::Exited(Some(7)));
        assert_eq!(ends[1], JobEnd::NotStarted);
        assert_eq!(ends[2], JobEnd::NotStarted);
    }
}
