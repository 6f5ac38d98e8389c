//! What one SLURM node agent starts: its share of the run split into OS
//! processes (peerlab's instances `instances_per_process` to a process,
//! each external instance in one of its own, as the submitting host
//! planned it), and the external instances among them started through
//! the local runner's definition ([`crate::runner::external::spawn`]),
//! with the run read from `run.json` on the shared file system.
//!
//! Must not: supervise or report (the agent does), or decide statuses
//! (the supervisor on the submitting host does).

use std::path::Path;

use peerlab_lang::External;

use crate::runner::external::{ExternalRun, Start, external_keys, process_groups};

/// One node's processes and what its external instances start with.
pub struct NodeProcesses {
    /// The processes, in order: process N is `groups[N - 1]`.
    pub groups: Vec<Vec<u32>>,
    external: External,
    instances: u32,
    /// The run as external instances see it, or why it cannot be read
    /// (`None`: this node has no external instance).
    run: Option<Result<ExternalRun, String>>,
}

impl NodeProcesses {
    /// Plan the processes of `share` (ids of a run of `instances`), reading
    /// `run_dir/run.json` for which ids are external and how they start.
    /// The error says why the record cannot be read.
    pub fn plan(
        run_dir: &Path,
        share: &[u32],
        instances: u32,
        per_process: u32,
    ) -> Result<Self, String> {
        let record = peerlab_run::read::read_run_record(run_dir).map_err(|err| {
            format!(
                "cannot read {}: {}",
                run_dir.join("run.json").display(),
                crate::util::chain(&err)
            )
        })?;
        let external = external_keys(&record.config);
        let groups = process_groups(share, per_process, |id| external.is_external(id, instances));
        let any_external = share.iter().any(|&id| external.is_external(id, instances));
        let run = any_external
            .then(|| ExternalRun::from_record(&record).map_err(|err| crate::util::chain(&err)));
        Ok(Self {
            groups,
            external,
            instances,
            run,
        })
    }

    /// No process at all (when the share cannot be planned).
    pub fn none() -> Self {
        Self {
            groups: Vec::new(),
            external: External::default(),
            instances: 0,
            run: None,
        }
    }

    /// Whether instance `id` is another program.
    pub fn is_external(&self, id: u32) -> bool {
        self.external.is_external(id, self.instances)
    }

    /// Start external instance `start.id`; the error is one line saying why not.
    pub fn spawn_external(&self, start: &Start<'_>) -> Result<tokio::process::Child, String> {
        match &self.run {
            Some(Ok(run)) => {
                crate::runner::external::spawn(run, start).map_err(|e| crate::util::chain(&e))
            }
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("instance {} is not external", start.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_node_reads_its_external_instances_from_the_run_record() {
        let tmp = tempfile::tempdir().unwrap();
        let err = NodeProcesses::plan(tmp.path(), &[1, 2], 2, 1)
            .err()
            .unwrap();
        assert!(
            err.starts_with("cannot read ") && err.contains("run.json"),
            "{err}"
        );

        // 5 instances, the last 2 external; this node runs 3 and 4.
        fs::write(tmp.path().join("x.scenario"), "@0 echo up\n@1 stop\n").unwrap();
        let record = peerlab_run::RunRecord {
            instances: 5,
            scenario_path: tmp.path().join("x.scenario"),
            config: [
                ("external_instances", "2"),
                ("external_cmd", "exec true"),
                ("instance_port_base", "7000"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        };
        peerlab_run::write::write_run_record(tmp.path(), &record).unwrap();
        let p = NodeProcesses::plan(tmp.path(), &[3, 4], 5, 2).unwrap();
        assert_eq!(p.groups, vec![vec![3], vec![4]]);
        assert!(!p.is_external(3) && p.is_external(4));
        let run = p.run.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            (run.cmd.as_str(), run.instances, run.port_base),
            ("exec true", 5, Some(7000))
        );
        // A node with peerlab instances only does not read the scenario.
        let p = NodeProcesses::plan(tmp.path(), &[1, 2], 5, 2).unwrap();
        assert_eq!(p.groups, vec![vec![1, 2]]);
        assert!(p.run.is_none());
    }
}
