//! The run folder on this machine: choosing its number, its permissions
//! (owner-only), the `latest` link, and the runner's `summary.json` record
//! from what the runner saw. The folder's layout, its records' types and
//! their one writer and reader are peerlab-run's (re-exported here for the
//! runners); docs/outputs.md is the contract.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
