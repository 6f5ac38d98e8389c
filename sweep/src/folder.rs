//! The sweep folder: its layout, its record (`sweep.json`: the grid, the
//! repetitions, the base seed and every job's seed), which of its jobs
//! have a complete run (a resumed sweep runs only the others), and loading
//! a run folder or a sweep folder as a comparable [`Set`].
//!
//! ```text
//! SWEEP/sweep.json            the record (written before any run starts)
//! SWEEP/points/pNN/<exp>.conf each grid point's config
//! SWEEP/runs/NNNN-<exp>/      ordinary run folders, one per job (plus any
//!                             interrupted attempt, kept as it is)
//! SWEEP/logs/pNN-rK.log       each `peerlab run`'s own output
//! SWEEP/sweep.csv, runs.csv, sweep.html   the aggregation
//! SWEEP/charts/<metric>--vs--<key>.svg    each of the report's charts
//! ```
//!
//! Must not: start runs (the host's `peerlab sweep` does) or compute
//! statistics.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aggregate::Group;
use crate::collect::{self, RunValues};
use crate::compare::Set;
use crate::error::{Result, SweepError};
use crate::grid::{Job, Param, Point};

pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_CSV: &str = "sweep.csv";
pub const RUNS_CSV: &str = "runs.csv";
pub const SWEEP_HTML: &str = "sweep.html";
pub const RUNS_DIR: &str = "runs";
pub const POINTS_DIR: &str = "points";
pub const LOGS_DIR: &str = "logs";
pub const CHARTS_DIR: &str = "charts";
/// Where the sweeps of an output root go.
pub const SWEEPS_DIR: &str = "sweeps";

/// One job as `sweep.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub key: String,
    pub point: Point,
    pub repeat: u32,
    pub seed: u64,
    /// The point's config, relative to the sweep folder.
    pub conf: String,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub name: String,
    pub experiment: String,
    /// The experiment's `.conf` (or `.scenario`), absolute.
    pub experiment_path: PathBuf,
    pub params: Vec<Param>,
    pub repeat: u32,
    pub base_seed: u64,
    pub simulate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// The command line that made it (for the report).
    pub command: String,
    pub created_at: String,
    pub jobs: Vec<JobRecord>,
}

impl SweepRecord {
    pub fn keys(&self) -> Vec<String> {
        self.params.iter().map(|p| p.key.clone()).collect()
    }

    pub fn points(&self) -> Vec<Point> {
        crate::grid::points(&self.params)
    }
}

/// A job's record.
pub fn job_record(job: &Job, conf: String) -> JobRecord {
    JobRecord {
        key: job.key(),
        point: job.point.clone(),
        repeat: job.repeat,
        seed: job.seed,
        conf,
    }
}

pub fn read_record(dir: &Path) -> Result<SweepRecord> {
    let path = dir.join(SWEEP_JSON);
    let text = fs::read_to_string(&path).map_err(|source| SweepError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| SweepError::Record {
        path,
        why: format!("not a sweep record ({e})"),
    })
}

pub fn write_record(dir: &Path, record: &SweepRecord) -> Result<()> {
    let path = dir.join(SWEEP_JSON);
    peerlab_run::write::write_json(&path, record)
        .map_err(|source| SweepError::Write { path, source })
}

/// Write a file of the sweep folder (atomically).
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    peerlab_run::write::write_atomic(path, text.as_bytes()).map_err(|source| SweepError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Every run folder of a sweep, read (unreadable ones are skipped with
/// the reason, for the caller to show).
pub fn read_runs(dir: &Path) -> (Vec<RunValues>, Vec<SweepError>) {
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for d in collect::run_dirs(&dir.join(RUNS_DIR)) {
        match collect::read_run(&d) {
            Ok(r) => runs.push(r),
            Err(e) => problems.push(e),
        }
    }
    (runs, problems)
}

/// For each job (by key), its newest complete run, if any.
pub fn completed(record: &SweepRecord, runs: &[RunValues]) -> BTreeMap<String, RunValues> {
    let mut out = BTreeMap::new();
    for job in &record.jobs {
        let mut matching = runs.iter().filter(|r| {
            r.seed == job.seed
                && r.complete()
                && job
                    .point
                    .0
                    .iter()
                    .all(|(k, v)| r.config.get(k).is_some_and(|rv| rv.trim_matches('"') == v))
        });
        if let Some(r) = matching.next_back() {
            out.insert(job.key.clone(), r.clone());
        }
    }
    out
}

/// The sweep's groups: each point with its jobs' complete runs.
pub fn groups(record: &SweepRecord, done: &BTreeMap<String, RunValues>) -> Vec<Group> {
    record
        .points()
        .into_iter()
        .map(|point| Group {
            runs: record
                .jobs
                .iter()
                .filter(|j| j.point == point)
                .filter_map(|j| done.get(&j.key).cloned())
                .collect(),
            point,
        })
        .collect()
}

/// A run folder or a sweep folder, as a [`Set`].
pub fn load_set(path: &Path) -> Result<Set> {
    let label = path.display().to_string();
    if path.join(SWEEP_JSON).is_file() {
        let record = read_record(path)?;
        let (runs, _) = read_runs(path);
        let done = completed(&record, &runs);
        return Ok(Set {
            label,
            groups: groups(&record, &done),
        });
    }
    if path.join(peerlab_run::layout::RUN_JSON).is_file() {
        let run = collect::read_run(path)?;
        if !run.complete() {
            return Err(SweepError::Record {
                path: path.to_path_buf(),
                why: "the run did not finish (interrupted, or no summary.json): nothing to compare"
                    .into(),
            });
        }
        return Ok(Set {
            label,
            groups: vec![Group {
                point: Point(Vec::new()),
                runs: vec![run],
            }],
        });
    }
    Err(SweepError::NotRunOrSweep(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_run::RunStatus;

    fn run(id: &str, seed: u64, fanout: &str, outcome: Option<RunStatus>) -> RunValues {
        RunValues {
            dir: id.into(),
            run_id: id.into(),
            experiment: "g".into(),
            seed,
            config: [("fanout".to_string(), fanout.to_string())].into(),
            outcome,
            headline: Vec::new(),
            values: Default::default(),
            has_report: false,
            started_at: String::new(),
        }
    }

    #[test]
    fn a_job_is_done_by_a_complete_run_of_its_seed_and_values_only() {
        let params = vec![Param::parse("fanout=1,2").unwrap()];
        let jobs = crate::grid::jobs(&params, 1, 5);
        let record = SweepRecord {
            name: "s".into(),
            experiment: "g".into(),
            experiment_path: "/g.conf".into(),
            params,
            repeat: 1,
            base_seed: 5,
            simulate: true,
            time_scale: None,
            command: String::new(),
            created_at: String::new(),
            jobs: jobs.iter().map(|j| job_record(j, String::new())).collect(),
        };
        let (a, b) = (jobs[0].seed, jobs[1].seed);
        let runs = [
            run("0001-g", a, "1", Some(RunStatus::Interrupted)),
            run("0002-g", a, "1", Some(RunStatus::Failed)),
            run("0003-g", b, "1", Some(RunStatus::Passed)), // b's seed, a's value
            run("0004-g", b, "2", None),                    // unfinished
        ];
        let done = completed(&record, &runs);
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done["p01-r1"].run_id, "0002-g", "a failed run is complete");
        let gs = groups(&record, &done);
        assert_eq!(gs.len(), 2);
        assert_eq!(gs[0].runs.len(), 1);
        assert!(gs[1].runs.is_empty());
    }
}
