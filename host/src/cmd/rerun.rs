//! `peerlab rerun RUN_DIR`: run a finished run's experiment again from its
//! run folder alone (its `experiment.conf`, which names the
//! `experiment.scenario` copy beside it), with the same seed, time scale
//! and runner, after checking that every plugin it loaded is still the same
//! file (`run.json`'s `plugins`, [`crate::provenance`]).
//!
//! Must not: run anything itself: it builds `peerlab run`'s arguments and
//! hands over to [`crate::cmd::run`].

use std::path::{Component, Path, PathBuf};

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
    // Included files go where they were relative to the experiment's
    // folder; one that was above it (`&include ../lib/x.scenario`) needs
    // the staged folder that many levels down.
    let includes = staged_includes(&record);
    let depth = includes.iter().map(|(_, rel)| leading_parents(rel)).max();
    let mut root = staging.clone();
    for level in 0..depth.unwrap_or(0) {
        root.push(format!("up{level}"));
    }
    let staged_conf = root.join(&conf_name);
    let stage = || -> anyhow::Result<()> {
        let scenario = root.join(&scenario_rel);
        std::fs::create_dir_all(scenario.parent().unwrap_or(&root))?;
        std::fs::copy(dir.join(EXPERIMENT_SCENARIO), &scenario)?;
        for (copy, rel) in &includes {
            let to = lexical_join(&root, rel);
            std::fs::create_dir_all(to.parent().unwrap_or(&root))?;
            std::fs::copy(dir.join(copy), &to)
                .with_context(|| format!("cannot copy {}", dir.join(copy).display()))?;
        }
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

/// The run's other sources (its `&include`d files): each one's copy in the
/// run folder and its original path relative to the experiment's folder
/// (the config's, else the scenario's), `..` where it was above it.
fn staged_includes(record: &peerlab_run::RunRecord) -> Vec<(PathBuf, PathBuf)> {
    let base = record
        .config_path
        .as_ref()
        .and_then(|p| p.parent())
        .or_else(|| record.scenario_path.parent());
    let Some(base) = base else {
        return Vec::new();
    };
    record
        .sources
        .iter()
        .filter(|s| Some(&s.path) != record.config_path.as_ref() && s.path != record.scenario_path)
        .filter_map(|s| Some((PathBuf::from(&s.copy), relative_to(&s.path, base)?)))
        .collect()
}

/// `path` relative to `base`, lexically (both absolute, as `run.json`
/// records them), with `..` for each of `base`'s components it leaves.
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || !base.is_absolute() {
        return None;
    }
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// How many `..` a relative path starts with.
fn leading_parents(rel: &Path) -> usize {
    rel.components()
        .take_while(|c| matches!(c, Component::ParentDir))
        .count()
}

/// `root` joined with `rel`, each `..` taking one component off.
fn lexical_join(root: &Path, rel: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
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
            !r.as_os_str().is_empty() && r.components().all(|c| matches!(c, Component::Normal(_)))
        })
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(EXPERIMENT_SCENARIO));
    (conf, rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_include_above_the_experiment_folder_lands_inside_the_staging() {
        let base = Path::new("/home/u/exp");
        assert_eq!(
            relative_to(Path::new("/home/u/exp/lib/c.scenario"), base),
            Some(PathBuf::from("lib/c.scenario"))
        );
        let up = relative_to(Path::new("/home/u/shared/c.scenario"), base).unwrap();
        assert_eq!(up, PathBuf::from("../shared/c.scenario"));
        assert_eq!(leading_parents(&up), 1);
        let root = Path::new("/out/.rerun-1/up0");
        assert_eq!(
            lexical_join(root, &up),
            PathBuf::from("/out/.rerun-1/shared/c.scenario")
        );
        assert_eq!(relative_to(Path::new("rel/c.scenario"), base), None);
    }
}
