//! The supervision loop's state and what it does with each event: the sync
//! server's reports, the launcher's events, the 200 ms tick (process exits
//! whose reports had time to arrive, the registration and run deadlines,
//! the escalation from a polite to a forced stop) and stop signals.
//!
//! Owns the decisions, not the I/O: it stops processes only through the
//! [`Launcher`] and aborts instances only through the sync server; the
//! files an ending run writes are `end.rs`'s.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{GIVE_UP, GRACE, LaunchEvent, Launcher, REPORT_GRACE, unix_ms_now};
use crate::progress::Progress;
use crate::runner::RunSettings;
use crate::runner::folder::Placement;
use crate::runner::interrupt::StopSignal;
use crate::runner::status::{EndStatus, Phase, Tracker};
use crate::util::ranges;
use peerlab_sync::server::{ServerEvent, SyncServer};

/// Everything the supervision loop knows about a run going on.
pub(super) struct Watch<'a> {
    pub(super) settings: &'a RunSettings,
    pub(super) run_dir: &'a Path,
    pub(super) server: SyncServer,
    pub(super) progress: Progress,
    pub(super) tracker: Tracker,
    /// Where instances really run: planned, then as their processes report
    /// (a SLURM node's name is only known once the job runs).
    pub(super) placement: Vec<Placement>,
    /// `None` while the launcher waits for resources (a queued job).
    registration_deadline: Option<Instant>,
    run_deadline: Option<Instant>,
    start_unix_ms: Option<u64>,
    pub(super) timed_out: bool,
    /// Set with the stop signal's words ("stopped by SIGTERM").
    pub(super) interrupted: Option<String>,
    stopping_since: Option<Instant>,
    forced: bool,
    pub(super) launcher_done: bool,
    /// Process exits waiting for their reports (see [`Watch::on_launch`]).
    pending_exits: Vec<(Instant, LaunchEvent)>,
    /// Instances whose process's connection to the sync server has closed.
    closed: HashSet<u32>,
}

impl<'a> Watch<'a> {
    pub(super) fn new(
        settings: &'a RunSettings,
        run_id: &str,
        run_dir: &'a Path,
        server: SyncServer,
        placement: Vec<Placement>,
    ) -> Self {
        Self {
            settings,
            run_dir,
            server,
            progress: Progress::new(settings.progress, settings.instances, run_id),
            tracker: Tracker::new(settings.instances),
            placement,
            registration_deadline: Some(Instant::now() + settings.registration_timeout),
            run_deadline: None,
            start_unix_ms: None,
            timed_out: false,
            interrupted: None,
            stopping_since: None,
            forced: false,
            launcher_done: false,
            pending_exits: Vec::new(),
            closed: HashSet::new(),
        }
    }

    /// Every instance has a final status and no process runs (or the
    /// launcher can no longer tell).
    pub(super) fn done(&self, launcher: &dyn Launcher) -> bool {
        self.tracker.all_ended() && (!launcher.running() || self.launcher_done)
    }

    /// Stop every process politely; the tick forces them after [`GRACE`].
    fn begin_stop(&mut self, launcher: &mut dyn Launcher, now: Instant) {
        launcher.stop(false);
        self.stopping_since = Some(now);
    }

    pub(super) fn on_server(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Registered {
                ids, host, node, ..
            } => {
                for &id in &ids {
                    self.tracker.registered(id);
                    match self.placement.iter_mut().find(|p| p.id == id) {
                        Some(p) => {
                            p.host = host.clone();
                            p.node = node;
                        }
                        None => self.placement.push(Placement {
                            id,
                            host: host.clone(),
                            node,
                            process: 0,
                        }),
                    }
                }
            }
            ServerEvent::Ready { id } => self.tracker.ready(id),
            ServerEvent::Started {
                start_unix_ms: start,
                peers,
            } => {
                crate::runner::peers::record(
                    self.run_dir,
                    start,
                    &peers,
                    &self.settings.external_ids(),
                );
                self.start_unix_ms = Some(start);
                let until_start = Duration::from_millis(start.saturating_sub(unix_ms_now()));
                self.run_deadline = Some(Instant::now() + until_start + self.settings.timeout);
            }
            ServerEvent::Done {
                id,
                status,
                exit_code,
                error,
            } => {
                // A status this version does not know counts as failed.
                let status = match status {
                    EndStatus::Unknown => EndStatus::Failed,
                    known => known,
                };
                self.tracker.end(id, status, exit_code, error);
            }
            ServerEvent::Refused { peer, reason } => {
                tracing::warn!(%peer, %reason, "sync server refused a connection");
            }
            ServerEvent::RefusalsNotReported { count, window } => {
                tracing::warn!(
                    "sync server refused {count} more connections in the last {:.0} s (not reported one by one)",
                    window.as_secs_f64()
                );
            }
            ServerEvent::Disconnected { all, .. } => self.closed.extend(all),
            ServerEvent::Progress { commands } => self.progress.set_commands(commands),
        }
    }

    pub(super) fn on_launch(&mut self, event: Option<LaunchEvent>, launcher: &mut dyn Launcher) {
        match event {
            None => self.launcher_done = true,
            Some(LaunchEvent::State(state)) => self.progress.set_state(state),
            Some(LaunchEvent::Placed { ids, host, node }) => {
                for p in self.placement.iter_mut().filter(|p| ids.contains(&p.id)) {
                    p.host = host.clone();
                    p.node = node;
                }
            }
            Some(LaunchEvent::Waiting) => self.registration_deadline = None,
            Some(LaunchEvent::Running) => {
                self.registration_deadline =
                    Some(Instant::now() + self.settings.registration_timeout);
            }
            Some(LaunchEvent::Failed(reason)) => {
                tracing::error!("{reason}");
                self.tracker
                    .end_all_open(EndStatus::NeverStarted, EndStatus::Crashed, &reason);
                if self.stopping_since.is_none() {
                    self.server.abort_all(reason);
                    self.begin_stop(launcher, Instant::now());
                }
            }
            Some(exit @ LaunchEvent::Exited { .. }) => {
                // The process's last reports may still be on their way
                // through the sync server: judge the exit once its
                // connection has closed (every line read), or after
                // REPORT_GRACE if it never connected or the close is lost.
                self.pending_exits
                    .push((Instant::now() + REPORT_GRACE, exit));
            }
        }
    }

    pub(super) fn on_tick(&mut self, launcher: &mut dyn Launcher) {
        let now = Instant::now();
        self.judge_exits(now);
        if self.stopping_since.is_none() {
            if let Some(why) = self.deadline_passed(now) {
                tracing::error!("{why}");
                self.timed_out = true;
                self.tracker
                    .end_all_open(EndStatus::NeverStarted, EndStatus::TimedOut, &why);
                self.server.abort_all(why);
                self.begin_stop(launcher, now);
            }
        } else if !self.forced
            && self
                .stopping_since
                .is_some_and(|s| now.duration_since(s) >= GRACE)
        {
            self.forced = true;
            launcher.stop(true);
        } else if self.forced
            && !self.launcher_done
            && self
                .stopping_since
                .is_some_and(|s| now.duration_since(s) >= GRACE + GIVE_UP)
        {
            // The launcher cannot tell whether its processes are gone
            // (e.g. the scheduler stopped answering): stop waiting.
            eprintln!(
                "peerlab: warning: the run's processes were stopped {} s ago but their end is not confirmed; giving up waiting (check for leftovers)",
                (GRACE + GIVE_UP).as_secs()
            );
            self.launcher_done = true;
        }
        let clock = self
            .start_unix_ms
            .map(|s| (unix_ms_now() as f64 - s as f64) / 1000.0);
        self.progress.update(self.tracker.counts(), clock);
    }

    /// End the instances of the exits that are due (their connection
    /// closed, or [`REPORT_GRACE`] passed) and that did not report an end.
    fn judge_exits(&mut self, now: Instant) {
        let settled = |ids: &[u32]| {
            ids.iter().all(|id| {
                self.closed.contains(id)
                    || matches!(self.tracker.phase(*id), Some(Phase::Ended(_)) | None)
            })
        };
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending_exits.drain(..).partition(|(at, exit)| {
                let LaunchEvent::Exited { ids, .. } = exit else {
                    return true;
                };
                *at <= now || settled(ids)
            });
        self.pending_exits = later;
        for (_, exit) in due {
            let LaunchEvent::Exited {
                ids,
                exit_code,
                how,
                clean,
                stderr,
            } = exit
            else {
                continue;
            };
            for id in ids {
                if matches!(self.tracker.phase(id), Some(Phase::Ended(_)) | None) {
                    continue;
                }
                let (status, why) = if let Some(why) = &self.interrupted {
                    (EndStatus::Interrupted, why.clone())
                } else if self.timed_out {
                    (
                        EndStatus::TimedOut,
                        "stopped by the run timeout".to_string(),
                    )
                } else if clean {
                    (
                        EndStatus::Crashed,
                        "its process exited without reporting an end".to_string(),
                    )
                } else {
                    (EndStatus::Crashed, format!("its process ended: {how}"))
                };
                super::end::note_abnormal_end(
                    self.run_dir,
                    &self.placement,
                    id,
                    &why,
                    stderr.as_deref(),
                );
                self.tracker.end(id, status, exit_code, Some(why));
            }
        }
    }

    /// Why the run must stop now, if it must: an instance ended before the
    /// start, the registration timeout passed, or the run timeout did.
    fn deadline_passed(&self, now: Instant) -> Option<String> {
        let ended_early = if self.start_unix_ms.is_none() {
            self.tracker.ids_ended()
        } else {
            Vec::new()
        };
        if !ended_early.is_empty() {
            // The barrier needs everyone: it can never open now.
            Some(format!(
                "instances {} ended before the start, so the run cannot begin",
                ranges(&ended_early)
            ))
        } else if self.registration_deadline.is_some_and(|d| now >= d)
            && self.start_unix_ms.is_none()
        {
            let missing = self.tracker.ids_not_registered();
            let secs = self.settings.registration_timeout.as_secs_f64();
            Some(if missing.is_empty() {
                format!(
                    "instances {} registered but did not finish their setup (@! and @@ lines) within {secs:.1} s",
                    ranges(&self.tracker.ids_not_ready())
                )
            } else {
                format!(
                    "instances {} never registered within {secs:.1} s",
                    ranges(&missing)
                )
            })
        } else if self.run_deadline.is_some_and(|d| now >= d) {
            Some(format!(
                "the run timed out after {:.1} s with instances {} still running",
                self.settings.timeout.as_secs_f64(),
                ranges(&self.tracker.ids_running())
            ))
        } else {
            None
        }
    }

    pub(super) fn on_signal(
        &mut self,
        signal: StopSignal,
        count: u32,
        launcher: &mut dyn Launcher,
    ) {
        let name = signal.describe();
        if self.interrupted.is_none() {
            let why = format!("stopped by {name}");
            tracing::warn!("{name}: stopping every instance (outputs are kept)");
            self.tracker
                .end_all_open(EndStatus::Interrupted, EndStatus::Interrupted, &why);
            self.server.abort_all(format!("interrupted by {name}"));
            self.interrupted = Some(why);
            self.begin_stop(launcher, Instant::now());
        } else if !self.forced && count > 1 {
            tracing::warn!("asked to stop again: stopping the processes now, without grace");
            self.forced = true;
            launcher.stop(true);
        }
    }
}
