//! The SLURM test clusters of `scripts/slurm-local.sh` as the SLURM
//! end-to-end tests (tests/tests/slurm.rs on the single-host one,
//! tests/tests/slurm_netns.rs on the netns one) use them: taking a cluster
//! for one test at a time (or skipping, with `PEERLAB_SKIP_SLURM=1`),
//! SLURM's clients and `peerlab` against it, what a run's summary and job
//! say, and that a run left nothing behind.
//!
//! Must not: start, stop or reconfigure a cluster (`scripts/test` and
//! `scripts/slurm-local.sh` do), or wait without a bound.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Dir, TestCommand, peerlab_bin};

static SINGLE_HOST: Mutex<()> = Mutex::new(());
static NETNS: Mutex<()> = Mutex::new(());

/// Which of `scripts/slurm-local.sh`'s clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nodes n1..n3 as three slurmd on 127.0.0.1 (`SLURM_CONF`).
    SingleHost,
    /// Nodes n1..n3 in network namespaces on a bridge
    /// (`PEERLAB_SLURM_NETNS_CONF`).
    Netns,
}

/// A test cluster, held by one test at a time (a lock per shape), so one
/// test's job never waits in the queue behind another's.
pub struct Cluster {
    /// Its `slurm.conf`.
    pub conf: PathBuf,
    shape: Shape,
    _lock: MutexGuard<'static, ()>,
}

impl Cluster {
    /// The cluster of `shape` for `test`; `None` (after a SKIPPED line)
    /// when the SLURM tests were opted out with `PEERLAB_SKIP_SLURM=1`.
    /// Fails saying how to get one when it is not running.
    pub fn get(shape: Shape, test: &str) -> Option<Cluster> {
        if std::env::var("PEERLAB_SKIP_SLURM").as_deref() == Ok("1") {
            let what = match shape {
                Shape::SingleHost => "slurm test",
                Shape::Netns => "slurm netns test",
            };
            eprintln!("SKIPPED (PEERLAB_SKIP_SLURM=1): {what} {test}");
            return None;
        }
        let conf = match shape {
            Shape::SingleHost => {
                assert!(
                    std::env::var("PEERLAB_SLURM_TESTS").as_deref() == Ok("1"),
                    "{test}: the SLURM test cluster is not running (PEERLAB_SLURM_TESTS is not 1): \
                     run scripts/test as root on Debian (it starts scripts/slurm-local.sh, which \
                     installs slurm-wlm and munge), or set PEERLAB_SKIP_SLURM=1 to skip the SLURM tests"
                );
                std::env::var_os("SLURM_CONF").unwrap_or_else(|| {
                    panic!(
                        "{test}: PEERLAB_SLURM_TESTS=1 but SLURM_CONF is not set: \
                         eval \"$(scripts/slurm-local.sh env)\" after starting the cluster"
                    )
                })
            }
            Shape::Netns => std::env::var_os("PEERLAB_SLURM_NETNS_CONF").unwrap_or_else(|| {
                panic!(
                    "{test}: the netns SLURM test cluster is not running (PEERLAB_SLURM_NETNS_CONF is \
                     not set): run scripts/test as root (it starts `scripts/slurm-local.sh --netns`), \
                     or start it by hand and export PEERLAB_SLURM_NETNS_CONF=/tmp/peerlab-slurm-netns/slurm.conf; \
                     or set PEERLAB_SKIP_SLURM=1 to skip the SLURM tests"
                )
            }),
        };
        let lock = match shape {
            Shape::SingleHost => &SINGLE_HOST,
            Shape::Netns => &NETNS,
        };
        Some(Cluster {
            conf: PathBuf::from(conf),
            shape,
            _lock: lock.lock().unwrap_or_else(|e| e.into_inner()),
        })
    }

    /// A SLURM client command (`sbatch`, `squeue`, ...) against this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// `peerlab` in `dir`, against this cluster, run to its end.
    pub fn peerlab(&self, dir: &Dir) -> TestCommand {
        let mut cmd = dir.peerlab();
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// `peerlab` in `dir`, against this cluster, to spawn (and signal or
    /// kill) while the test watches it.
    pub fn peerlab_child(&self, dir: &Dir) -> Command {
        let mut cmd = Command::new(peerlab_bin());
        cmd.current_dir(dir.path())
            .env("SLURM_CONF", &self.conf)
            .env("NO_COLOR", "1");
        cmd
    }

    /// `squeue`'s state of a job (`-t all` keeps ended jobs for a while).
    pub fn job_state(&self, job: &str) -> String {
        let out = self
            .command("squeue")
            .args(["-h", "-t", "all", "-j", job, "-o", "%T"])
            .output()
            .expect("running squeue");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// After a run: its job has ended and nothing it started still runs.
    /// On the single-host cluster the job must have ended already; on the
    /// netns one it may take a while (a node lost to `kill-node` ends it
    /// as NODE_FAIL once SLURM notices).
    pub fn assert_nothing_left(&self, run: &Path) {
        let job = job_id(run);
        match self.shape {
            Shape::SingleHost => {
                let state = self.job_state(&job);
                assert!(
                    ["COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", ""].contains(&state.as_str()),
                    "job {job} is still {state}"
                );
            }
            Shape::Netns => wait_for("the job to end", Duration::from_secs(60), || {
                let state = self.job_state(&job);
                [
                    "COMPLETED",
                    "CANCELLED",
                    "FAILED",
                    "TIMEOUT",
                    "NODE_FAIL",
                    "",
                ]
                .contains(&state.as_str())
            }),
        }
        let needle = run.to_string_lossy().into_owned();
        wait_for(
            "the run's processes to be gone",
            Duration::from_secs(30),
            || processes_mentioning(&needle).is_empty(),
        );
    }
}

/// Cancels a job when dropped (also when the test fails).
pub struct Cancel<'a>(pub &'a Cluster, pub String);

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        let _ = self.0.command("scancel").arg(&self.1).status();
    }
}

/// A JSON file of a run.
pub fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `(id, host, node, status, error)` of every instance in a summary.
pub fn statuses(summary: &Value) -> Vec<(u64, String, u64, String, String)> {
    summary["instance_status"]
        .as_array()
        .expect("instance_status")
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap_or(0),
                s["host"].as_str().unwrap_or_default().to_string(),
                s["node"].as_u64().unwrap_or(0),
                s["status"].as_str().unwrap_or_default().to_string(),
                s["error"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The SLURM job of a run (its `slurm/job_id`).
pub fn job_id(run: &Path) -> String {
    std::fs::read_to_string(run.join("slurm/job_id"))
        .unwrap_or_else(|e| panic!("{}: {e}", run.display()))
        .trim()
        .to_string()
}

/// Processes whose command line mentions `needle`, in any namespace.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("reading /proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

/// Wait (bounded) until `cond` holds; fails the test naming `what`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
