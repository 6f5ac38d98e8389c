//! The end of a supervised run: one final status per instance (naming the
//! callback an instance that did not end on its own was stuck in), the
//! runner's `summary.json`, and the notes an abnormal end leaves in the
//! instance's `.err` (why, and the bounded tail of its process's stderr).
//!
//! Best effort on disk: a note that cannot be written is lost, the summary
//! still says it; a summary that cannot be written is said, and the caller
//! writes it again with the verdicts.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::watch::Watch;
use crate::runner::folder::{self, Placement};
use crate::runner::status::{End, EndStatus};

impl Watch<'_> {
    /// Close the progress line, give every instance its final status and
    /// write the runner's summary (returned).
    pub(super) fn finish(
        mut self,
        runner: &str,
        nodes: u32,
        started_at: SystemTime,
        run_id: String,
    ) -> folder::Summary {
        self.progress.finish(self.tracker.counts());
        let ended_at = SystemTime::now();
        let refused = self.server.admission_stats();
        if refused.refused > 0 {
            tracing::warn!(
                "the sync server refused {} connections during the run ({} oversize hellos, {} without a hello in time, {} closed as too many waited)",
                refused.refused,
                refused.oversize,
                refused.hello_timeouts,
                refused.evicted
            );
        }
        let run_dir = self.run_dir;
        let placement = &self.placement;
        let mut in_flight_files = HashMap::new();
        let instance_status = self
            .tracker
            .ends()
            .map(|(id, end)| {
                let place = placement.iter().find(|p| p.id == id);
                let (host, node) = place
                    .map(|p| (p.host.clone(), p.node))
                    .unwrap_or_else(|| ("localhost".into(), 1));
                let paths = folder::InstancePaths::new(&host, node, id);
                let mut end = end.cloned().unwrap_or(End {
                    status: EndStatus::Crashed,
                    exit_code: None,
                    error: Some("no end was recorded".into()),
                });
                // An instance whose process did not report its end may have
                // been stuck in a callback: name it.
                if end.status != EndStatus::Finished
                    && let Some(callback) = in_flight(run_dir, placement, id, &mut in_flight_files)
                {
                    let note = match end.status {
                        EndStatus::TimedOut => format!("hung in {callback}"),
                        EndStatus::Crashed => format!("crashed in {callback}"),
                        _ => format!("was in {callback} when it ended"),
                    };
                    append_err(
                        run_dir,
                        &paths.err,
                        &format!("peerlab: instance {id} {note}"),
                    );
                    end.error = Some(match end.error {
                        Some(e) => format!("{e}; {note}"),
                        None => note,
                    });
                }
                folder::InstanceStatus {
                    id,
                    host,
                    node,
                    status: end.status,
                    exit_code: end.exit_code,
                    error: end.error,
                    out: paths.out,
                    err: paths.err,
                }
            })
            .collect::<Vec<_>>();
        let summary = folder::runner_summary(
            self.settings,
            run_id,
            runner,
            nodes,
            started_at,
            ended_at,
            instance_status,
            folder::RunEnd {
                timed_out: self.timed_out,
                interrupted: self.interrupted.is_some(),
            },
        );
        // The caller writes it again with the verdicts: a failure here (a full
        // disk) is said, and the run goes on to that second attempt.
        if let Err(e) = folder::write_summary(run_dir, folder::SummaryContent::Runner(&summary)) {
            tracing::warn!(
                "cannot write {}: {e}",
                run_dir.join("summary.json").display()
            );
        }
        summary
    }
}

/// Append why an instance ended abnormally, and the tail of its process's
/// stderr, to the instance's `.err` file.
pub(super) fn note_abnormal_end(
    run_dir: &Path,
    placement: &[Placement],
    id: u32,
    why: &str,
    stderr: Option<&Path>,
) {
    let (host, node) = placement
        .iter()
        .find(|p| p.id == id)
        .map(|p| (p.host.as_str(), p.node))
        .unwrap_or(("localhost", 1));
    let paths = folder::InstancePaths::new(host, node, id);
    let path = run_dir.join(&paths.err);
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    let _ = writeln!(f, "peerlab: instance {id} ended abnormally: {why}");
    // Bounded: a process may have written gigabytes.
    let Some(tail) = stderr.and_then(|p| peerlab_run::tail::of_file(p, 20).ok()) else {
        return;
    };
    if !tail.cause.is_empty() {
        let _ = writeln!(f, "peerlab: the first error in its process's stderr:");
        for line in &tail.cause {
            let _ = writeln!(f, "  {line}");
        }
    }
    if !tail.lines.is_empty() {
        let _ = writeln!(
            f,
            "peerlab: last lines of its process's stderr{}:",
            stderr
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        );
        for line in &tail.lines {
            let _ = writeln!(f, "  {line}");
        }
    }
}

/// Append one line to instance `id`'s `.err` (best effort: a full disk
/// loses it, the summary still says it).
fn append_err(run_dir: &Path, err: &Path, line: &str) {
    let path = run_dir.join(err);
    if let Ok(mut f) = fs::OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// The module callback instance `id` was running when its process last
/// wrote its in-flight file, if any (each file is read once into `files`).
fn in_flight(
    run_dir: &Path,
    placement: &[Placement],
    id: u32,
    files: &mut HashMap<PathBuf, HashMap<u32, String>>,
) -> Option<String> {
    let p = placement.iter().find(|p| p.id == id)?;
    let path = run_dir.join(folder::process_inflight(&p.host, p.node, p.process));
    files
        .entry(path)
        .or_insert_with_key(|path| peerlab_runtime::inflight::read_all(path))
        .remove(&id)
}
