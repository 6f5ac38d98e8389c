//! External instances: instances of a run that are other programs
//! (`external_instances`, `external_cmd`; a py-ipv8 peer through
//! peerlab's Python client, say). They are started like peerlab's own
//! instance processes (own process group, dying with their parent), find
//! the sync server, token, instance id and output paths in their
//! environment (docs/sync-protocol.md), write their stdout to the
//! instance's `.out` and their stderr to its `.err`, and are supervised by
//! [`super::supervise`] exactly like the others.
//!
//! Must not: interpret the scenario beyond writing each external
//! instance's share of it (its schedule file), or talk to the programs
//! other than through the sync server.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use peerlab_lang::External;
use peerlab_run::InstancePaths;

use super::RunSettings;
use super::error::RunError;
use super::supervise::TOKEN_ENV;

impl RunSettings {
    /// The external-instance keys of this run (lang typed them when the
    /// run was planned).
    pub fn external(&self) -> External {
        let mut e = External::default();
        for key in External::KEYS {
            if let Some(v) = self.config.get(key) {
                let _ = e.set(key, v);
            }
        }
        e
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

/// What an external instance is started with.
pub struct Start<'a> {
    pub run_dir: &'a Path,
    pub sync: SocketAddr,
    pub token: &'a str,
    pub host: &'a str,
    pub node: u32,
    pub id: u32,
}

/// The scenario of the run, read again as `peerlab run` checked it, for
/// the external instances' schedules.
pub fn scenario(settings: &RunSettings) -> Result<peerlab_lang::Scenario, RunError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let source = settings
        .config_path
        .clone()
        .unwrap_or(settings.scenario_path.clone());
    let loaded = crate::experiment::load(&source, &env);
    loaded
        .scenario
        .ok_or(RunError::ScenarioUnreadable { path: source })
}

/// The folder external commands run in: the config's (or the lone
/// scenario's).
fn work_dir(settings: &RunSettings) -> PathBuf {
    let file = settings
        .config_path
        .as_ref()
        .unwrap_or(&settings.scenario_path);
    crate::experiment::load::search_dir(file.parent().unwrap_or(Path::new("")))
}

/// Start external instance `start.id`: `sh -c external_cmd` in its own
/// process group, dying with its parent, stdout to its `.out`, stderr to
/// its `.err`, its schedule written beside them. Returns the child.
pub fn spawn(
    settings: &RunSettings,
    scenario: &peerlab_lang::Scenario,
    start: &Start<'_>,
) -> Result<tokio::process::Child, RunError> {
    let ext = settings.external();
    let cmd_line = ext.cmd.as_deref().ok_or(RunError::NoExternalCmd)?;
    let paths = InstancePaths::new(start.host, start.node, start.id);
    let abs = |p: &Path| start.run_dir.join(p);
    if let Some(dir) = abs(&paths.out).parent() {
        fs::create_dir_all(dir).map_err(RunError::create(dir))?;
    }
    let schedule_path = abs(&paths.out).with_extension("schedule.json");
    let schedule = crate::experiment::external::schedule(
        scenario,
        start.id,
        settings.instances,
        settings.time_scale,
    );
    peerlab_run::write::write_json(&schedule_path, &schedule)
        .map_err(RunError::write(&schedule_path))?;
    let out = fs::File::create(abs(&paths.out)).map_err(RunError::create(abs(&paths.out)))?;
    let err = fs::File::create(abs(&paths.err)).map_err(RunError::create(abs(&paths.err)))?;
    let port = peerlab_lang::RuntimeKeys::from_strings(&settings.config)
        .0
        .instance_port_base
        .map(|b| u32::from(b) + start.id - 1)
        .unwrap_or(0);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(cmd_line)
        .current_dir(work_dir(settings))
        .env("PEERLAB_SYNC", start.sync.to_string())
        .env(TOKEN_ENV, start.token)
        .env("PEERLAB_INSTANCE_ID", start.id.to_string())
        .env("PEERLAB_INSTANCES", settings.instances.to_string())
        .env("PEERLAB_HOST", start.host)
        .env("PEERLAB_NODE", start.node.to_string())
        .env("PEERLAB_BIND_IP", start.sync.ip().to_string())
        .env("PEERLAB_PORT", port.to_string())
        .env("PEERLAB_RUN_DIR", start.run_dir)
        .env("PEERLAB_OUT", abs(&paths.out))
        .env("PEERLAB_ERR", abs(&paths.err))
        .env("PEERLAB_STATS", abs(&paths.stats))
        .env("PEERLAB_EVENTS", abs(&paths.events))
        .env("PEERLAB_SCHEDULE", &schedule_path)
        .env("PEERLAB_TIME_SCALE", settings.time_scale.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    super::local::die_with_parent(&mut cmd);
    cmd.spawn().map_err(|source| RunError::SpawnExternal {
        id: start.id,
        cmd: cmd_line.to_string(),
        source,
    })
}
