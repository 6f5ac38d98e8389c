//! Follows one submitted job until it ends: polls `squeue` (and `sacct` /
//! `scontrol` once the job leaves the queue), reads the agents' exit
//! reports, and turns both into the supervisor's [`LaunchEvent`]s. It
//! decides when SLURM cannot place the job; it never cancels it (the
//! launcher does, on the supervisor's word).

use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::queue::{
    JobRow, JobState, SACCT_FIELDS, SQUEUE_FORMAT, cannot_place, describe_end, parse_sacct,
    parse_scontrol, parse_squeue,
};
use super::{AgentExit, SLURM_DIR, SlurmError, exits_file, slurm_command};
use crate::runner::supervise::LaunchEvent;

/// Follows one job until it ends, turning what SLURM and the agents say
/// into [`LaunchEvent`]s.
pub(super) struct Poller {
    pub(super) job: String,
    pub(super) run_dir: PathBuf,
    pub(super) nodes: u32,
    pub(super) instances: u32,
    pub(super) immediate: bool,
    pub(super) poll_interval: Duration,
    pub(super) queue_timeout: Duration,
    pub(super) running: Arc<AtomicBool>,
    pub(super) tx: mpsc::UnboundedSender<LaunchEvent>,
}

impl Poller {
    pub(super) async fn run(self) {
        let submitted = Instant::now();
        let mut offsets = vec![0u64; self.nodes as usize];
        let mut last_state = String::new();
        let mut started = false;
        let mut failed = false;
        let mut query_errors = 0u32;
        let end = loop {
            self.read_exits(&mut offsets);
            let row = match self.query_queue().await {
                Ok(row) => {
                    query_errors = 0;
                    row
                }
                Err(err) => {
                    query_errors += 1;
                    if query_errors == 1 || query_errors.is_multiple_of(30) {
                        tracing::warn!(
                            "cannot ask SLURM about job {}: {}",
                            self.job,
                            crate::util::chain(&err)
                        );
                    }
                    tokio::time::sleep(self.poll_interval).await;
                    continue;
                }
            };
            let row = match row {
                Some(row) if !row.state.is_terminal() => row,
                // Gone from the queue or over: ask the accounting for how it ended.
                other => break self.query_end(other).await,
            };
            if row.state != JobState::Pending && !started {
                // Out of the queue: the node agents are starting.
                started = true;
                let _ = self.tx.send(LaunchEvent::Running);
            }
            let state = self.describe(&row);
            if state != last_state {
                let _ = self.tx.send(LaunchEvent::State(state.clone()));
                last_state = state;
            }
            if row.state == JobState::Pending && !failed {
                let why = cannot_place(&row.reason, self.immediate).or_else(|| {
                    (submitted.elapsed() >= self.queue_timeout).then(|| {
                        format!(
                            "{}: still pending after {:.0} s in the queue",
                            row.reason,
                            self.queue_timeout.as_secs_f64()
                        )
                    })
                });
                if let Some(why) = why {
                    failed = true;
                    let _ = self.tx.send(LaunchEvent::Failed(format!(
                        "SLURM cannot place job {}: {why}",
                        self.job
                    )));
                }
            }
            tokio::time::sleep(self.poll_interval).await;
        };
        self.read_exits(&mut offsets);
        let how = match &end {
            Some(row) => describe_end(&self.job, row),
            None => format!("SLURM job {} left the queue (its end is unknown)", self.job),
        };
        let clean = end.as_ref().is_some_and(|r| r.state == JobState::Completed);
        let _ = self.tx.send(LaunchEvent::State(how.clone()));
        self.running.store(false, Ordering::SeqCst);
        let _ = self.tx.send(LaunchEvent::Exited {
            ids: (1..=self.instances).collect(),
            exit_code: end.as_ref().and_then(|r| r.exit.map(|(c, _)| c)),
            how,
            clean,
            stderr: Some(self.run_dir.join(SLURM_DIR).join("job.out")),
        });
    }

    fn describe(&self, row: &JobRow) -> String {
        let job = &self.job;
        match row.state {
            JobState::Pending => format!("SLURM job {job} pending ({})", row.reason),
            JobState::Running if !row.nodes.is_empty() => {
                format!("SLURM job {job} running on {}", row.nodes)
            }
            _ => format!("SLURM job {job} {}", row.state.describe()),
        }
    }

    /// The job's row in `squeue`, `None` once SLURM no longer knows it.
    async fn query_queue(&self) -> Result<Option<JobRow>, SlurmError> {
        let args: Vec<String> = ["-h", "-t", "all", "-j", &self.job, "-o", SQUEUE_FORMAT]
            .map(String::from)
            .to_vec();
        match slurm_command("squeue", &args).await {
            Ok(out) => Ok(parse_squeue(&out, &self.job)),
            Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// How the job ended: the accounting's record, else `scontrol`'s, else
    /// the last row seen.
    async fn query_end(&self, last: Option<JobRow>) -> Option<JobRow> {
        let args: Vec<String> = ["-n", "-P", "-X", "-j", &self.job, "-o", SACCT_FIELDS]
            .map(String::from)
            .to_vec();
        if let Ok(out) = slurm_command("sacct", &args).await
            && let Some(row) = parse_sacct(&out, &self.job)
            && row.state.is_terminal()
        {
            return Some(row);
        }
        let args: Vec<String> = ["-o", "show", "job", &self.job].map(String::from).to_vec();
        if let Ok(out) = slurm_command("scontrol", &args).await
            && let Some(row) = parse_scontrol(&out, &self.job)
        {
            return Some(row);
        }
        last
    }

    /// Forward the lines the agents added to their exit files.
    fn read_exits(&self, offsets: &mut [u64]) {
        for (i, offset) in offsets.iter_mut().enumerate() {
            let path = self.run_dir.join(exits_file(i as u32 + 1));
            let Ok(mut file) = fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // A line still being written: read it whole next time.
                    Ok(_) if !line.ends_with('\n') => break,
                    Ok(n) => {
                        *offset += n as u64;
                        match serde_json::from_str::<AgentExit>(line.trim()) {
                            Ok(exit) => {
                                // Where they ran, also for instances that never registered.
                                if let Some(host) = exit.host {
                                    let _ = self.tx.send(LaunchEvent::Placed {
                                        ids: exit.ids.clone(),
                                        host,
                                        node: i as u32 + 1,
                                    });
                                }
                                let _ = self.tx.send(LaunchEvent::Exited {
                                    ids: exit.ids,
                                    exit_code: exit.exit_code,
                                    how: exit.how,
                                    clean: exit.clean,
                                    stderr: exit.stderr.map(|p| self.run_dir.join(p)),
                                });
                            }
                            Err(err) => {
                                tracing::warn!("ignoring a bad line in {}: {err}", path.display())
                            }
                        }
                    }
                }
            }
        }
    }
}
