//! The read-only part of a run that every instance of a process shares,
//! rebuilt from the run folder's `run.json`: the experiment read again
//! (refused when its files changed since the run started), its modules
//! loaded, every command bound, the overlay tuning and the verification
//! pool typed from the recorded config. The instance processes and the
//! simulated runner both build it here.
//!
//! It must not start instances, open sockets or write to the run folder.

use std::collections::BTreeMap;
use std::sync::Arc;

use peerlab_lang::{Format, render_all};

use super::ExperimentError;
use crate::modules::{LoadModules, Registry, SearchPaths};
use crate::runner::folder::RunRecord;
use peerlab_runtime::instance::Shared;

/// Parse the scenario and load the modules exactly as `peerlab run` checked
/// them, and bind every command.
pub fn load_shared(record: &RunRecord, run_identity: &str) -> Result<Arc<Shared>, ExperimentError> {
    let (source, loaded) =
        super::load::load_again(record.config_path.as_deref(), &record.scenario_path);
    unchanged_since_the_run_started(record, &loaded.sources)?;
    if peerlab_lang::has_errors(&loaded.diagnostics) {
        return Err(ExperimentError::NoLongerParses {
            rendered: render_all(&loaded.diagnostics, &loaded.sources, Format::Short),
        });
    }
    let scenario = loaded
        .scenario
        .as_ref()
        .ok_or(ExperimentError::NoScenario)?;
    let experiment_dir = source.parent().map(|p| p.to_path_buf());
    let paths = SearchPaths::standard(&record.plugin_path, experiment_dir.as_deref());
    let registry =
        Registry::resolve(&scenario.modules, &paths).map_err(ExperimentError::Modules)?;
    // Commands only external instances run are not peerlab's to bind.
    let ids = super::external::ExternalIds {
        instances: record.instances,
        external: external_count(record),
    };
    let scenario = &ids.peerlab_share(scenario);
    let names = run_folder_names(record);
    let mut commands = Vec::with_capacity(scenario.commands.len());
    for cmd in &scenario.commands {
        let bound = registry.bind_command(cmd).map_err(|diags| {
            ExperimentError::Bind(render_all(&diags, &loaded.sources, Format::Short))
        })?;
        let mut call = peerlab_runtime::instance::ScheduledCall::new(cmd, bound);
        if let Some(name) = std::fs::canonicalize(&*call.file)
            .ok()
            .and_then(|p| names.get(&p))
        {
            call.file = name.clone();
        }
        commands.push(call);
    }
    Ok(Arc::new(Shared {
        registry: Arc::new(registry),
        commands,
        config: record.config.clone(),
        instances: record.instances,
        run_seed: record.seed,
        time_scale: record.time_scale,
        run_identity: run_identity.as_bytes().to_vec(),
        pool: shared_verification(record)
            .then(|| Arc::new(peerlab_dispersy::SharedPool::new(POOL_CAPACITY))),
        overlay: peerlab_runtime::instance::OverlayTuning::from_config(&record.config)
            .map_err(ExperimentError::Overlay)?,
        topology: match loaded.topology.clone() {
            Some(spec) => Some(Arc::new(
                peerlab_lang::network::Topology::assign(
                    spec,
                    &loaded.experiment.topology_assign,
                    record.instances,
                )
                .map_err(ExperimentError::Overlay)?,
            )),
            None => None,
        },
    }))
}

/// Each source file of the run (canonical path) by the name events and
/// errors give it: its file name where the experiment was first read
/// (`SourceRecord::name`; a rerun's copies carry the original names), so
/// they read the same wherever the experiment was run from and `peerlab
/// rerun` repeats them byte for byte. Folders made before names were
/// recorded keep the loader's names.
fn run_folder_names(record: &RunRecord) -> BTreeMap<std::path::PathBuf, Arc<str>> {
    let mut names = BTreeMap::new();
    for s in record.sources.iter().filter(|s| !s.name.is_empty()) {
        if let Ok(p) = std::fs::canonicalize(&s.path) {
            names.insert(p, Arc::from(s.name.as_str()));
        }
    }
    names
}

/// Refuse to run an experiment whose files differ from what `peerlab run`
/// checked and recorded: instances would run something nobody checked, and
/// the run folder would describe another experiment.
fn unchanged_since_the_run_started(
    record: &RunRecord,
    sources: &peerlab_lang::diag::SourceMap,
) -> Result<(), ExperimentError> {
    if record.sources.is_empty() {
        // A run folder from before sources were recorded.
        return Ok(());
    }
    for file in sources.iter() {
        let Ok(path) = std::fs::canonicalize(&**file.name()) else {
            continue;
        };
        let what = match record.sources.iter().find(|s| s.path == path) {
            Some(s) if s.sha256 == crate::runner::folder::source_hash(file.text()) => continue,
            Some(s) => format!(
                "`{}` changed after the run started (the run folder keeps the version it was started with: {})",
                path.display(),
                s.copy
            ),
            None => format!(
                "`{}` is read by the experiment now but was not when the run started",
                path.display()
            ),
        };
        return Err(ExperimentError::Changed { what });
    }
    Ok(())
}

/// How many of the run's instances are other programs (`external_instances`).
fn external_count(record: &RunRecord) -> u32 {
    let mut e = peerlab_lang::External::default();
    for key in peerlab_lang::External::KEYS {
        if let Some(v) = record.config.get(key) {
            let _ = e.set(key, v);
        }
    }
    e.instances.min(record.instances)
}

/// How many verified packets a process remembers (a few hundred bytes each).
const POOL_CAPACITY: usize = 1 << 16;

/// Whether instances of one process share signature verifications
/// (config key `shared_verification`; default on when a process hosts
/// several instances, where it saves the most).
pub fn shared_verification(record: &RunRecord) -> bool {
    // lang checked the value when the run was planned; one it would not
    // take falls back to the default, as a missing one does.
    peerlab_lang::RuntimeKeys::from_strings(&record.config)
        .0
        .shared_verification
        .unwrap_or(record.instances_per_process > 1 || record.runner == "simulated")
}
