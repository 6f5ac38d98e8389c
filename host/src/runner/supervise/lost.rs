//! A failed node, as the supervision loop handles it: the open instances
//! placed on it end `lost` (named with the node's name and the launcher's
//! words for its state), a note goes to each one's `.err`, and the run
//! either stops the others (`stop`) or lets them go on; in the latter case
//! the launcher is stopped once every instance has ended, since a job step
//! with a dead node never ends by itself.
//!
//! Must not: ask the scheduler anything (the launcher reports the loss) or
//! touch the outputs beyond the `.err` note.

use std::time::Instant;

use super::watch::Watch;
use super::{Launcher, REPORT_GRACE};
use crate::runner::status::{EndStatus, Phase};
use crate::util::ranges;

impl Watch<'_> {
    /// Node `node` (1-based, named `host`) failed: `why` is the launcher's
    /// account (SLURM's state and reason); with `stop` the run ends.
    pub(super) fn on_node_lost(
        &mut self,
        host: &str,
        node: u32,
        why: &str,
        stop: bool,
        launcher: &mut dyn Launcher,
    ) {
        let ids: Vec<u32> = self
            .placement
            .iter()
            .filter(|p| p.node == node || p.host == host)
            .map(|p| p.id)
            .filter(|&id| !matches!(self.tracker.phase(id), Some(Phase::Ended(_)) | None))
            .collect();
        let lost = format!("lost with node {host}: {why}");
        tracing::error!(
            "node {host} failed ({why}): instances {} lost",
            if ids.is_empty() {
                "none".to_string()
            } else {
                ranges(&ids)
            }
        );
        for &id in &ids {
            super::end::note_abnormal_end(self.run_dir, &self.placement, id, &lost, None);
            self.tracker
                .end(id, EndStatus::Lost, None, Some(lost.clone()));
        }
        self.lost_nodes.push(host.to_string());
        if stop && self.stopping_since.is_none() {
            let reason = format!("stopped because node {host} was lost ({why})");
            self.tracker
                .end_all_open(EndStatus::NeverStarted, EndStatus::Interrupted, &reason);
            self.server.abort_all(reason);
            self.begin_stop(launcher, Instant::now());
        }
    }

    /// After a node loss, stop the launcher once every instance has ended
    /// (and their processes had [`REPORT_GRACE`] to hand their last files
    /// back): the job's step waits for the dead node forever.
    pub(super) fn stop_after_node_loss(&mut self, now: Instant, launcher: &mut dyn Launcher) {
        if self.lost_nodes.is_empty() || self.stopping_since.is_some() {
            return;
        }
        if !self.tracker.all_ended() {
            self.all_ended_at = None;
            return;
        }
        let since = *self.all_ended_at.get_or_insert(now);
        if now.duration_since(since) >= REPORT_GRACE && launcher.running() {
            tracing::info!(
                "every instance has ended; stopping the job (node {} is lost)",
                self.lost_nodes.join(", ")
            );
            self.begin_stop(launcher, now);
        }
    }
}
