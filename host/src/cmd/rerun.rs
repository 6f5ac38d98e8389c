//! `peerlab rerun RUN_DIR`: run a finished run's experiment again from its
//! run folder alone (its `experiment.conf`, which names the
//! `experiment.scenario` copy beside it), with the same seed, time scale
//! and runner, after checking that every plugin it loaded is still the same
//! file (`run.json`'s `plugins`, [`crate::provenance`]).
//!
//! Must not: run anything itself: it builds `peerlab run`'s arguments and
//! hands over to [`crate::cmd::run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use peerlab_run::layout::{EXPERIMENT_CONF, EXPERIMENT_SCENARIO};

use crate::cmd::run::{PlanArgs, RunArgs, RunnerArg};
use crate::global::{EXIT_ERROR, GlobalArgs};
use crate::provenance;

/// Arguments of `peerlab rerun`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  peerlab rerun output/0007-benaloh
  peerlab rerun output/latest --output reruns/

The new run gets its own folder (in the run folder's output root unless --output says otherwise). \
A simulated run repeats byte for byte. Exit status as for `peerlab run`; 2 when a plugin changed \
(unless --allow-changed-plugins) or the folder cannot be rerun.")]
pub struct RerunArgs {
    /// The run folder to run again
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// Output root of the new run [default: the run folder's own output root]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Run even when a plugin library differs from the one the run loaded
    #[arg(long)]
    pub allow_changed_plugins: bool,
    /// Skip plots and report.html (summary aggregates are still computed)
    #[arg(long)]
    pub no_plots: bool,
}

/// Entry point of `peerlab rerun`.
pub fn run(global: &GlobalArgs, args: RerunArgs) -> anyhow::Result<u8> {
    let dir = &args.run_dir;
    let record = peerlab_run::read::read_run_record(dir).with_context(|| {
        format!(
            "cannot rerun {}: its run.json cannot be read; give a run folder of `peerlab run` (OUTPUT/NNNN-name)",
            dir.display()
        )
    })?;
    let conf = dir.join(EXPERIMENT_CONF);
    let text = std::fs::read_to_string(&conf).with_context(|| {
        format!(
            "cannot rerun {}: cannot read {}",
            dir.display(),
            conf.display()
        )
    })?;
    let self_sufficient = text.lines().any(|l| {
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "scenario_file" && v.trim().trim_matches('"') == EXPERIMENT_SCENARIO
        })
    });
    if !self_sufficient || !dir.join(EXPERIMENT_SCENARIO).is_file() {
        let original = record
            .config_path
            .as_ref()
            .unwrap_or(&record.scenario_path)
            .display();
        anyhow::bail!(
            "cannot rerun {}: {} does not name its {EXPERIMENT_SCENARIO} copy (the folder was made before peerlab 0.1.2); \
             run the original instead: peerlab run {original} --seed {}",
            dir.display(),
            conf.display(),
            record.seed
        );
    }

    let changed = provenance::changed_plugins(&record.plugins);
    for c in &changed {
        if args.allow_changed_plugins {
            eprintln!("peerlab: warning: {c} (running anyway: --allow-changed-plugins)");
        } else {
            eprintln!("peerlab: error: {c}");
        }
    }
    if !changed.is_empty() && !args.allow_changed_plugins {
        eprintln!(
            "peerlab: the run was not repeated: rebuild the plugin as it was, or pass --allow-changed-plugins to run with the plugin as it is now"
        );
        return Ok(EXIT_ERROR);
    }

    // The recorded libraries' folders first, so the same files load.
    let mut plugin_path: Vec<PathBuf> = Vec::new();
    for p in &record.plugins {
        if let Some(parent) = p.path.parent()
            && !plugin_path.iter().any(|q| q == parent)
        {
            plugin_path.push(parent.to_path_buf());
        }
    }
    plugin_path.extend(record.plugin_path.iter().cloned());
    let simulate = record.runner == "simulated";
    let runner = match record.runner.as_str() {
        "local" => Some(RunnerArg::Local),
        "slurm" => Some(RunnerArg::Slurm),
        _ => None,
    };
    let output = match args.output {
        Some(o) => o,
        None => dir
            .canonicalize()
            .ok()
            .and_then(|d| d.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("output")),
    };
    // Stage the experiment as it was laid out: the config and the scenario
    // under their original names (so events and errors name the same
    // files), from the run folder's copies.
    let (conf_name, scenario_rel) = original_names(&record);
    let staging = output.join(format!(".rerun-{}-{}", record.run_id, std::process::id()));
    let staged_conf = staging.join(&conf_name);
    let stage = || -> anyhow::Result<()> {
        let scenario = staging.join(&scenario_rel);
        std::fs::create_dir_all(scenario.parent().unwrap_or(&staging))?;
        std::fs::copy(dir.join(EXPERIMENT_SCENARIO), &scenario)?;
        // The run's own name too (a run of a bare .scenario had no config).
        let mut conf_text = format!("experiment_name = \"{}\"\n", record.experiment);
        for l in text.lines() {
            match l.split_once('=').map(|(k, _)| k.trim()) {
                Some("scenario_file") => {
                    conf_text.push_str(&format!("scenario_file = \"{}\"\n", scenario_rel.display()))
                }
                Some("experiment_name") => {}
                _ => conf_text.push_str(&format!("{l}\n")),
            }
        }
        std::fs::write(&staged_conf, conf_text)?;
        Ok(())
    };
    stage().with_context(|| format!("cannot stage the rerun in {}", staging.display()))?;
    eprintln!(
        "peerlab: rerunning {} from {} (seed {}, {} runner)",
        record.run_id,
        dir.display(),
        record.seed,
        record.runner
    );
    let result = crate::cmd::run::run(
        global,
        RunArgs {
            experiment: staged_conf,
            plan: PlanArgs {
                time_scale: (!simulate).then_some(record.time_scale),
                runner: runner.filter(|_| !simulate),
                simulate,
                ..PlanArgs::default()
            },
            seed: Some(record.seed),
            // The record's config has the original's `sim_threads`, if set.
            threads: None,
            output: Some(output),
            plugin: crate::cmd::PluginPathArg { plugin_path },
            no_plots: args.no_plots,
            no_verdicts: false,
            no_history: false,
            follow: None,
            // The copies' names are the original files' (events and errors
            // name the files as the first run did).
            source_names: record
                .sources
                .iter()
                .map(|s| {
                    let name = if s.name.is_empty() {
                        s.path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    } else {
                        s.name.clone()
                    };
                    (s.sha256.clone(), name)
                })
                .collect(),
        },
    );
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// The config's file name and the scenario's path relative to it, as the
/// original run had them (`experiment.conf` and `experiment.scenario` when
/// the record does not say).
fn original_names(record: &peerlab_run::RunRecord) -> (String, PathBuf) {
    let conf = record
        .config_path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && !n.ends_with(".scenario"))
        .unwrap_or_else(|| EXPERIMENT_CONF.to_string());
    let base = record
        .config_path
        .as_ref()
        .and_then(|p| p.parent())
        .or_else(|| record.scenario_path.parent());
    let rel = base
        .and_then(|b| record.scenario_path.strip_prefix(b).ok())
        .filter(|r| {
            !r.as_os_str().is_empty()
                && r.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(EXPERIMENT_SCENARIO));
    (conf, rel)
}
