//! The run folder on this machine: choosing its number, its permissions
//! (owner-only), the `latest` link, what a run starts it with (`run.json`,
//! the experiment's sources, its resolved config and scenario), and the
//! runner's `summary.json` record from what the runner saw. The folder's layout, its records' types and
//! their one writer and reader are peerlab-run's (re-exported here for the
//! runners); docs/outputs.md is the contract.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::RunSettings;
use super::error::RunError;
use peerlab_run::layout;

pub use peerlab_run::layout::{
    InstancePaths, instance_dir, instance_stem, process_inflight, process_resources, process_stderr,
};
pub use peerlab_run::schema::RunEnd;
pub use peerlab_run::write::{SummaryContent, write_summary};
pub use peerlab_run::{
    EndStatus, InstanceStatus, Placement, RunRecord, RunStatus, SourceRecord, Summary,
    VerdictRecord,
};

/// Create `<root>/<NNNN>-<experiment>` with the next free number and point
/// `<root>/latest` at it. Earlier runs are never touched.
///
/// The folder is owner-only (0700), and from here on this process and the
/// instance processes it starts create files owner-only (umask 077): a run
/// folder holds the experiment's inputs and outputs, which other local
/// users have no business reading (docs/security.md).
pub fn create_run_folder(root: &Path, experiment: &str) -> io::Result<(String, PathBuf)> {
    fs::create_dir_all(root)?;
    owner_only_from_now_on();
    let slug = slug(experiment);
    let mut next = highest_run_number(root)? + 1;
    loop {
        let run_id = format!("{next:04}-{slug}");
        let dir = root.join(&run_id);
        // create_dir (not _all) fails if a concurrent run took the number.
        match create_private_dir(&dir) {
            Ok(()) => {
                point_latest(root, &run_id);
                return Ok((run_id, dir));
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => next += 1,
            Err(err) => return Err(err),
        }
    }
}

/// Files and folders this process (and its children) creates from now on
/// are readable by their owner only.
fn owner_only_from_now_on() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// `mkdir` with mode 0700 (not `_all`: it fails if the folder exists).
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

fn highest_run_number(root: &Path) -> io::Result<u32> {
    let mut highest = 0;
    for entry in fs::read_dir(root)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some((num, _)) = name.split_once('-')
            && let Ok(n) = num.parse::<u32>()
        {
            highest = highest.max(n);
        }
    }
    Ok(highest)
}

fn point_latest(root: &Path, run_id: &str) {
    let link = root.join("latest");
    let _ = fs::remove_file(&link);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(run_id, &link);
}

/// Experiment names become folder names: keep them tame.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "run".into() } else { s }
}

/// Create the run folder and write `run.json` and the inputs (no server:
/// the simulated runner needs none).
pub fn prepare_folder(
    settings: &RunSettings,
    runner: &str,
    nodes: u32,
    placement: Vec<Placement>,
) -> Result<(String, PathBuf, RunRecord), RunError> {
    let (run_id, run_dir) = create_run_folder(&settings.output_root, &settings.experiment)
        .map_err(|source| RunError::RunFolder {
            root: settings.output_root.clone(),
            source,
        })?;
    let record = RunRecord {
        run_id: run_id.clone(),
        experiment: settings.experiment.clone(),
        seed: settings.seed,
        instances: settings.instances,
        nodes,
        instances_per_process: settings.instances_per_process,
        runner: runner.into(),
        time_scale: settings.time_scale,
        peerlab_version: env!("CARGO_PKG_VERSION").into(),
        peerlab_commit: crate::provenance::commit().map(String::from),
        created_at: timestamp(SystemTime::now()),
        modules: settings.modules.clone(),
        config_path: settings.config_path.clone(),
        scenario_path: settings.scenario_path.clone(),
        plugin_path: settings.plugin_path.clone(),
        config: settings.config.clone(),
        placement,
        sources: source_records(settings),
        metrics: settings.metrics.clone(),
        plugins: settings.plugins.clone(),
        simulation: None,
    };
    write_inputs(&run_dir, settings, &record)?;
    Ok((run_id, run_dir, record))
}

/// Name and hash the run's source files (their copies are written by
/// [`write_inputs`]).
fn source_records(settings: &RunSettings) -> Vec<SourceRecord> {
    settings
        .sources
        .iter()
        .enumerate()
        .map(|(i, (path, text))| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "source".into());
            let sha256 = source_hash(text);
            SourceRecord {
                path: path.clone(),
                copy: layout::source_copy(i, &name),
                name: settings.source_names.get(&sha256).cloned().unwrap_or(name),
                sha256,
            }
        })
        .collect()
}

/// Copy what the run was made from into the run folder.
fn write_inputs(
    run_dir: &Path,
    settings: &RunSettings,
    record: &RunRecord,
) -> Result<(), RunError> {
    peerlab_run::write::write_run_record(run_dir, record)
        .map_err(RunError::write(run_dir.join(layout::RUN_JSON)))?;
    if !record.sources.is_empty() {
        let dir = run_dir.join(layout::SOURCES_DIR);
        fs::create_dir_all(&dir).map_err(RunError::create(dir))?;
    }
    for (source, (_, text)) in record.sources.iter().zip(&settings.sources) {
        fs::write(run_dir.join(&source.copy), text.as_bytes()).map_err(|e| {
            RunError::CopyInput {
                path: source.path.clone(),
                source: e,
            }
        })?;
    }
    // It names the scenario's copy beside it, so the run folder alone can
    // run again (`peerlab rerun`).
    let mut conf = String::from("# the resolved experiment config of this run\n");
    for (k, v) in &settings.config {
        if k != "scenario_file" {
            conf.push_str(&format!("{k} = {v}\n"));
        }
    }
    conf.push_str(&format!(
        "scenario_file = {}\n",
        layout::EXPERIMENT_SCENARIO
    ));
    let conf_path = run_dir.join(layout::EXPERIMENT_CONF);
    fs::write(&conf_path, conf).map_err(RunError::write(conf_path))?;
    // Read and write (not fs::copy, which would keep the original's mode):
    // files in the run folder are owner-only.
    fs::read(&settings.scenario_path)
        .and_then(|bytes| fs::write(run_dir.join(layout::EXPERIMENT_SCENARIO), bytes))
        .map_err(|source| RunError::CopyInput {
            path: settings.scenario_path.clone(),
            source,
        })?;
    Ok(())
}

/// RFC 3339 in UTC, seconds precision.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// SHA-256 of a source text, in hex (what [`SourceRecord::sha256`] holds).
pub fn source_hash(text: &str) -> String {
    use sha2::Digest;
    peerlab_dispersy::crypto::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// The runner's summary of a finished run: the outcome follows from the
/// instances' statuses and how the run ended (verdicts come later).
#[allow(clippy::too_many_arguments)]
pub fn runner_summary(
    settings: &super::RunSettings,
    run_id: String,
    runner: &str,
    nodes: u32,
    started_at: SystemTime,
    ended_at: SystemTime,
    instance_status: Vec<InstanceStatus>,
    end: RunEnd,
) -> Summary {
    let outcome = RunStatus::of_run(instance_status.iter().map(|s| s.status), end);
    Summary {
        run_id,
        experiment: settings.experiment.clone(),
        seed: settings.seed,
        instances: settings.instances,
        nodes,
        runner: runner.into(),
        time_scale: settings.time_scale,
        started_at: timestamp(started_at),
        ended_at: timestamp(ended_at),
        duration_s: ended_at
            .duration_since(started_at)
            .unwrap_or_default()
            .as_secs_f64(),
        outcome: Some(outcome),
        timed_out: end.timed_out,
        instance_status,
        verdicts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_are_numbered_and_latest_follows() {
        let root = tempfile::tempdir().unwrap();
        let (a, _) = create_run_folder(root.path(), "benaloh").unwrap();
        let (b, dir_b) = create_run_folder(root.path(), "bena loh/x").unwrap();
        assert_eq!(a, "0001-benaloh");
        assert_eq!(b, "0002-bena_loh_x");
        assert!(root.path().join(&a).is_dir(), "the first run is kept");
        assert_eq!(
            fs::canonicalize(root.path().join("latest")).unwrap(),
            fs::canonicalize(&dir_b).unwrap()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir_b), 0o700, "a run folder is owner-only");
            let f = dir_b.join("run.json");
            peerlab_run::write::write_json(&f, &1).unwrap();
            assert_eq!(mode(&f), 0o600, "files in it too");
        }
        fs::create_dir(root.path().join("0041-old")).unwrap();
        let (c, _) = create_run_folder(root.path(), "e").unwrap();
        assert_eq!(c, "0042-e", "numbering continues after the highest");
    }
}
