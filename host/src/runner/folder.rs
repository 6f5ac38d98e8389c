//! The run folder on disk: choosing its number, its fixed file names, its
//! permissions (owner-only), and the `run.json` / `summary.json` records
//! the runners write. The layout is specified in docs/outputs.md; this
//! module is its only writer of records.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Where one instance's files go, relative to the run folder.
pub fn instance_dir(host: &str, node: u32) -> PathBuf {
    PathBuf::from(host).join(format!("node{node:03}"))
}

/// The file name stem of an instance: its id on five digits.
pub fn instance_stem(id: u32) -> String {
    format!("{id:05}")
}

/// Paths of one instance's files, relative to the run folder.
#[derive(Debug, Clone)]
pub struct InstancePaths {
    pub out: PathBuf,
    pub err: PathBuf,
    pub stats: PathBuf,
    pub events: PathBuf,
}

impl InstancePaths {
    pub fn new(host: &str, node: u32, id: u32) -> Self {
        let dir = instance_dir(host, node);
        let stem = instance_stem(id);
        Self {
            out: dir.join(format!("{stem}.out")),
            err: dir.join(format!("{stem}.err")),
            stats: dir.join(format!("{stem}.stats.jsonl")),
            events: dir.join(format!("{stem}.events.jsonl")),
        }
    }
}

/// The resources file of one OS process, relative to the run folder.
pub fn process_resources(host: &str, node: u32, process: u32) -> PathBuf {
    instance_dir(host, node).join(format!("process{process:03}.resources.jsonl"))
}

/// The captured stderr of one OS process (panics, crashes), relative to the run folder.
pub fn process_stderr(host: &str, node: u32, process: u32) -> PathBuf {
    instance_dir(host, node).join(format!("process{process:03}.stderr"))
}

/// Which module callback each instance of one OS process is running
/// (`runtime::inflight`), relative to the run folder.
pub fn process_inflight(host: &str, node: u32, process: u32) -> PathBuf {
    instance_dir(host, node).join(format!("process{process:03}.inflight"))
}

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

/// Where one instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub id: u32,
    pub host: String,
    pub node: u32,
    pub process: u32,
}

/// `run.json`: the plan, written before any instance starts. Instance
/// processes read it to learn everything about the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub experiment: String,
    pub seed: u64,
    pub instances: u32,
    pub nodes: u32,
    pub instances_per_process: u32,
    pub runner: String,
    pub time_scale: f64,
    pub peerlab_version: String,
    pub created_at: String,
    pub modules: Vec<String>,
    /// Absolute path of the experiment's .conf (or the scenario when run without one).
    pub config_path: Option<PathBuf>,
    /// Absolute path of the scenario the instances parse.
    pub scenario_path: PathBuf,
    /// Extra directories searched for plugins (`--plugin-path`).
    #[serde(default)]
    pub plugin_path: Vec<PathBuf>,
    /// Every config key after defaults and overrides (plugins read theirs).
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
    pub placement: Vec<Placement>,
    /// Every file the experiment was read from (config, scenario, includes)
    /// with its hash and its copy in the run folder; instances refuse to
    /// start when a file has changed since. Empty in runs before 0.1.1.
    #[serde(default)]
    pub sources: Vec<SourceRecord>,
}

/// One file the experiment was read from, as `peerlab run` read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Where it was read from (absolute).
    pub path: PathBuf,
    /// SHA-256 of the text read, in hex.
    pub sha256: String,
    /// Its copy, relative to the run folder (`sources/NN-name`).
    pub copy: String,
}

/// SHA-256 of a source text, in hex (what [`SourceRecord::sha256`] holds).
pub fn source_hash(text: &str) -> String {
    use sha2::Digest;
    peerlab_dispersy::crypto::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// One instance's end, in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: u32,
    pub host: String,
    pub node: u32,
    pub status: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub out: PathBuf,
    pub err: PathBuf,
}

/// A named pass/fail judgement of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    pub message: String,
    /// Not judged: the module's verdicts were turned off (config key
    /// `verdicts`, `--no-verdicts`); `passed` is true so it fails nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// `summary.json` as the runner writes it (post-processing adds `aggregates`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub experiment: String,
    pub seed: u64,
    pub instances: u32,
    pub nodes: u32,
    pub runner: String,
    pub time_scale: f64,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub outcome: String,
    pub timed_out: bool,
    pub instance_status: Vec<InstanceStatus>,
    pub verdicts: Vec<Verdict>,
}

/// How a run ended, before verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    pub timed_out: bool,
    pub interrupted: bool,
}

impl Summary {
    /// The runner's summary of a finished run: the outcome follows from the
    /// instances' statuses and how the run ended (verdicts come later).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: &super::RunSettings,
        run_id: String,
        runner: &str,
        nodes: u32,
        started_at: SystemTime,
        ended_at: SystemTime,
        instance_status: Vec<InstanceStatus>,
        end: RunEnd,
    ) -> Self {
        let all_finished = instance_status.iter().all(|s| s.status == "finished");
        let outcome = if end.interrupted {
            "interrupted"
        } else if end.timed_out {
            "timed_out"
        } else if all_finished {
            "passed"
        } else {
            "failed"
        };
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
            outcome: outcome.into(),
            timed_out: end.timed_out,
            instance_status,
            verdicts: Vec::new(),
        }
    }
}

/// Write JSON atomically (write a temporary file, then rename), so a reader
/// never sees half a record even if the run is killed. A failed write (a
/// full disk) leaves no temporary file behind.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, (text + "\n").as_bytes())
}

/// Write a file atomically: `<path>.tmp`, then a rename. On failure the
/// temporary file is removed and `path` keeps what it had.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
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
            write_json(&f, &1).unwrap();
            assert_eq!(mode(&f), 0o600, "files in it too");
        }
        fs::create_dir(root.path().join("0041-old")).unwrap();
        let (c, _) = create_run_folder(root.path(), "e").unwrap();
        assert_eq!(c, "0042-e", "numbering continues after the highest");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_keeps_the_old_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        fs::write(&path, "{}\n").unwrap();
        // The temporary file on a "full disk": every write fails.
        let tmp = dir.path().join("summary.json.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let err = write_json(&path, &serde_json::json!({"outcome": "passed"})).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        assert!(
            fs::symlink_metadata(&tmp).is_err(),
            "summary.json.tmp is left behind"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "{}\n");
        write_json(&path, &serde_json::json!({"outcome": "passed"})).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("passed"));
    }

    #[test]
    fn instance_files_follow_gumbys_layout() {
        let p = InstancePaths::new("localhost", 1, 7);
        assert_eq!(p.out, PathBuf::from("localhost/node001/00007.out"));
        assert_eq!(
            p.stats,
            PathBuf::from("localhost/node001/00007.stats.jsonl")
        );
    }
}
