//! External instances: instances of a run that are other programs
//! (`external_instances`, `external_cmd`; a py-ipv8 peer through
//! peerlab's Python client, say). They are started like peerlab's own
//! instance processes (own process group, dying with their parent), find
//! the sync server, token, instance id and output paths in their
//! environment (docs/sync-protocol.md), write their stdout to the
//! instance's `.out` and their stderr to its `.err`, and are supervised by
//! [`super::supervise`] exactly like the others.
//!
//! The one definition of how they start, shared by the local runner and
//! the SLURM node agent: which process each id is in ([`process_groups`]),
//! what the run tells every external instance ([`ExternalRun`], from the
//! runner's settings or, on a node, from `run.json`), and the command and
//! environment of one ([`spawn`]).
//!
//! Must not: interpret the scenario beyond writing each external
//! instance's share of it (its schedule file), or talk to the programs
//! other than through the sync server.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use peerlab_lang::External;
use peerlab_run::{InstancePaths, RunRecord};

use super::RunSettings;
use super::error::RunError;
use super::supervise::TOKEN_ENV;

impl RunSettings {
    /// The external-instance keys of this run (lang typed them when the
    /// run was planned).
    pub fn external(&self) -> External {
        external_keys(&self.config)
    }

    /// The ids of the instances that are other programs (the last ones).
    pub fn external_ids(&self) -> Vec<u32> {
        let e = self.external();
        if e.instances == 0 {
            return Vec::new();
        }
        e.ids(self.instances).collect()
    }
}

/// The external-instance keys of a run's recorded config.
pub fn external_keys(config: &std::collections::BTreeMap<String, String>) -> External {
    let mut e = External::default();
    for key in External::KEYS {
        if let Some(v) = config.get(key) {
            let _ = e.set(key, v);
        }
    }
    e
}

/// The OS processes that run `ids` (one node's share, or the whole run),
/// in order: peerlab's instances `per_process` to a process, then each
/// external instance (`is_external`) in a process of its own. A process's
/// number is its index here plus one.
pub fn process_groups(
    ids: &[u32],
    per_process: u32,
    is_external: impl Fn(u32) -> bool,
) -> Vec<Vec<u32>> {
    let (external, peerlab): (Vec<u32>, Vec<u32>) = ids.iter().partition(|&&id| is_external(id));
    let mut groups: Vec<Vec<u32>> = peerlab
        .chunks(per_process.max(1) as usize)
        .map(<[u32]>::to_vec)
        .collect();
    groups.extend(external.into_iter().map(|id| vec![id]));
    groups
}

/// What every external instance of a run is started with: the command,
/// where it runs, the scenario its schedule comes from, and the run-wide
/// values of its environment.
pub struct ExternalRun {
    /// `external_cmd`.
    pub cmd: String,
    /// The folder the command runs in: the config's (or the lone scenario's).
    pub work_dir: PathBuf,
    /// Instances in the run.
    pub instances: u32,
    pub time_scale: f64,
    /// `instance_port_base`: instance N binds base + N - 1.
    pub port_base: Option<u16>,
    /// The scenario, read again as `peerlab run` checked it.
    pub scenario: peerlab_lang::Scenario,
}

impl ExternalRun {
    /// From the runner's settings (the local runner).
    pub fn from_settings(settings: &RunSettings) -> Result<Self, RunError> {
        Self::new(
            &settings.config,
            settings.config_path.as_deref(),
            &settings.scenario_path,
            settings.instances,
            settings.time_scale,
        )
    }

    /// From the run folder's record (a SLURM node agent).
    pub fn from_record(record: &RunRecord) -> Result<Self, RunError> {
        Self::new(
            &record.config,
            record.config_path.as_deref(),
            &record.scenario_path,
            record.instances,
            record.time_scale,
        )
    }

    fn new(
        config: &std::collections::BTreeMap<String, String>,
        config_path: Option<&Path>,
        scenario_path: &Path,
        instances: u32,
        time_scale: f64,
    ) -> Result<Self, RunError> {
        let cmd = external_keys(config).cmd.ok_or(RunError::NoExternalCmd)?;
        let (source, loaded) = crate::experiment::load::load_again(config_path, scenario_path);
        let scenario = loaded
            .scenario
            .ok_or(RunError::ScenarioUnreadable { path: source })?;
        let file = config_path.unwrap_or(scenario_path);
        Ok(Self {
            cmd,
            work_dir: crate::experiment::load::search_dir(file.parent().unwrap_or(Path::new(""))),
            instances,
            time_scale,
            port_base: peerlab_lang::RuntimeKeys::from_strings(config)
                .0
                .instance_port_base,
            scenario,
        })
    }
}

/// Where and as whom one external instance starts.
pub struct Start<'a> {
    /// The folder its outputs go to: the run folder, or a SLURM node's
    /// node-local copy of it.
    pub run_dir: &'a Path,
    /// The sync server, as this machine reaches it.
    pub sync: SocketAddr,
    pub token: &'a str,
    /// The address its overlay binds and advertises.
    pub bind: IpAddr,
    pub host: &'a str,
    pub node: u32,
    pub id: u32,
}

/// Start external instance `start.id`: `sh -c external_cmd` in its own
/// process group, dying with its parent, stdout to its `.out`, stderr to
/// its `.err`, its schedule written beside them. Returns the child.
pub fn spawn(run: &ExternalRun, start: &Start<'_>) -> Result<tokio::process::Child, RunError> {
    let paths = InstancePaths::new(start.host, start.node, start.id);
    let abs = |p: &Path| start.run_dir.join(p);
    if let Some(dir) = abs(&paths.out).parent() {
        fs::create_dir_all(dir).map_err(RunError::create(dir))?;
    }
    let schedule_path = abs(&paths.out).with_extension("schedule.json");
    let schedule = crate::experiment::external::schedule(
        &run.scenario,
        start.id,
        run.instances,
        run.time_scale,
    );
    peerlab_run::write::write_json(&schedule_path, &schedule)
        .map_err(RunError::write(&schedule_path))?;
    let out = fs::File::create(abs(&paths.out)).map_err(RunError::create(abs(&paths.out)))?;
    let err = fs::File::create(abs(&paths.err)).map_err(RunError::create(abs(&paths.err)))?;
    let port = run
        .port_base
        .map(|b| u32::from(b) + start.id - 1)
        .unwrap_or(0);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&run.cmd)
        .current_dir(&run.work_dir)
        .env("PEERLAB_SYNC", start.sync.to_string())
        .env(TOKEN_ENV, start.token)
        .env("PEERLAB_INSTANCE_ID", start.id.to_string())
        .env("PEERLAB_INSTANCES", run.instances.to_string())
        .env("PEERLAB_HOST", start.host)
        .env("PEERLAB_NODE", start.node.to_string())
        .env("PEERLAB_BIND_IP", start.bind.to_string())
        .env("PEERLAB_PORT", port.to_string())
        .env("PEERLAB_RUN_DIR", start.run_dir)
        .env("PEERLAB_OUT", abs(&paths.out))
        .env("PEERLAB_ERR", abs(&paths.err))
        .env("PEERLAB_STATS", abs(&paths.stats))
        .env("PEERLAB_EVENTS", abs(&paths.events))
        .env("PEERLAB_SCHEDULE", &schedule_path)
        .env("PEERLAB_TIME_SCALE", run.time_scale.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    super::local::die_with_parent(&mut cmd);
    cmd.spawn().map_err(|source| RunError::SpawnExternal {
        id: start.id,
        cmd: run.cmd.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_instances_get_a_process_each_after_peerlabs() {
        let ext = |id| id >= 5;
        assert_eq!(
            process_groups(&[1, 2, 3, 4, 5, 6], 3, ext),
            vec![vec![1, 2, 3], vec![4], vec![5], vec![6]]
        );
        // A SLURM node whose share is external only, or has none.
        assert_eq!(process_groups(&[5, 6], 3, ext), vec![vec![5], vec![6]]);
        assert_eq!(process_groups(&[1, 2], 0, ext), vec![vec![1], vec![2]]);
        assert!(process_groups(&[], 2, ext).is_empty());
    }
}
