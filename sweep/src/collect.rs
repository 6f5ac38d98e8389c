//! One run folder as a row of numbers: its seed, its config, whether it
//! is complete, and every scalar the sweep and compare views aggregate,
//! named `METRIC.STAT`:
//!
//! - `run.passed` (1 or 0), `run.duration_s` (wall time) and
//!   `verdict.<name>.passed`, from `summary.json`;
//! - from the report's aggregates: `experiment.duration_scenario_s`,
//!   `messages.{sent,received}.{messages,bytes}` (and per message type,
//!   `messages.sent.<type>.{messages,bytes}`), `drops.total`,
//!   `resources.cpu_s`, `resources.peak_rss_kb`, `stats.<counter>.sum`;
//! - every entry of `aggregates.metrics` ([`MetricSummary`], read
//!   generically): counters `<name>.{total,mean,rate_per_s}`, gauges
//!   `<name>.{total,mean,min,max}`, observations
//!   `<name>.{count,min,p50,p90,p99,max,mean}`.
//!
//! Reads only `run.json` and `summary.json`, through peerlab-run. Must
//! not: compute statistics over runs (that is [`crate::aggregate`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use peerlab_run::layout::{REPORT_HTML, RUN_JSON, SUMMARY_JSON};
use peerlab_run::metrics::{MetricKind, MetricSummary};
use peerlab_run::{RunRecord, RunStatus, Summary};
use serde_json::Value;

use crate::error::{Result, SweepError};

/// What one run folder holds, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct RunValues {
    pub dir: PathBuf,
    pub run_id: String,
    pub experiment: String,
    pub seed: u64,
    /// Every config key as the run used it.
    pub config: BTreeMap<String, String>,
    pub outcome: Option<RunStatus>,
    /// Metrics declared as headline by their module.
    pub headline: Vec<String>,
    /// `METRIC.STAT` -> value.
    pub values: BTreeMap<String, f64>,
    pub has_report: bool,
    pub started_at: String,
}

impl RunValues {
    /// The runner finished the run (passed, failed or timed out): an
    /// interrupted or unfinished run is done again by a resumed sweep.
    pub fn complete(&self) -> bool {
        matches!(
            self.outcome,
            Some(RunStatus::Passed | RunStatus::Failed | RunStatus::TimedOut)
        )
    }
}

/// The folders under `root` that look like run folders (`NNNN-name` with a
/// `run.json`), oldest first.
pub fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.split_once('-')?.0.parse::<u32>().ok()?;
            e.path().join(RUN_JSON).is_file().then(|| (n, e.path()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

/// Read one run folder. A missing `summary.json` is an unfinished run
/// (no outcome, no values); an unreadable `run.json` is an error.
pub fn read_run(dir: &Path) -> Result<RunValues> {
    let record: RunRecord =
        peerlab_run::read::read_run_record(dir).map_err(|e| SweepError::Record {
            path: dir.join(RUN_JSON),
            why: e.to_string(),
        })?;
    let mut run = RunValues {
        dir: dir.to_path_buf(),
        run_id: record.run_id.clone(),
        experiment: record.experiment.clone(),
        seed: record.seed,
        config: record.config.clone(),
        outcome: None,
        headline: record
            .metrics
            .iter()
            .filter(|m| m.headline)
            .map(|m| m.name.clone())
            .collect(),
        values: BTreeMap::new(),
        has_report: dir.join(REPORT_HTML).is_file(),
        started_at: record.created_at.clone(),
    };
    let path = dir.join(SUMMARY_JSON);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(run),
        Err(source) => return Err(SweepError::Read { path, source }),
    };
    let record_err = |why: String| SweepError::Record {
        path: path.clone(),
        why,
    };
    let summary: Summary =
        peerlab_run::read::summary_from_str(&text).map_err(|e| record_err(e.to_string()))?;
    let whole: Value = serde_json::from_str(&text).map_err(|e| record_err(e.to_string()))?;
    run.outcome = summary.outcome;
    run.values = flatten(&summary, whole.get("aggregates"));
    for (name, m) in metric_summaries(whole.get("aggregates")) {
        if m.headline && !run.headline.contains(&name) {
            run.headline.push(name);
        }
    }
    Ok(run)
}

/// `aggregates.metrics`, typed; entries that do not read as a
/// [`MetricSummary`] are skipped.
fn metric_summaries(aggregates: Option<&Value>) -> Vec<(String, MetricSummary)> {
    let Some(Value::Object(map)) = aggregates.and_then(|a| a.get("metrics")) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            serde_json::from_value::<MetricSummary>(v.clone())
                .ok()
                .map(|m| (k.clone(), m))
        })
        .collect()
}

/// Every scalar of a finished run (see the module's documentation).
pub fn flatten(summary: &Summary, aggregates: Option<&Value>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if summary.outcome.is_some() {
        out.insert("run.passed".into(), f64::from(u8::from(summary.passed())));
        out.insert("run.duration_s".into(), summary.duration_s);
    }
    for v in &summary.verdicts {
        if !v.skipped {
            out.insert(
                format!("verdict.{}.passed", v.name),
                f64::from(u8::from(v.passed)),
            );
        }
    }
    let Some(agg) = aggregates else {
        return out;
    };
    let mut num = |name: &str, pointer: &str| {
        if let Some(x) = agg.pointer(pointer).and_then(Value::as_f64) {
            out.insert(name.to_string(), x);
        }
    };
    num(
        "experiment.duration_scenario_s",
        "/experiment/duration_scenario_s",
    );
    num("messages.sent.messages", "/messages/sent/messages");
    num("messages.sent.bytes", "/messages/sent/bytes");
    num("messages.received.messages", "/messages/received/messages");
    num("messages.received.bytes", "/messages/received/bytes");
    num("drops.total", "/drops/total");
    num("resources.cpu_s", "/resources/cpu_s");
    num("resources.peak_rss_kb", "/resources/peak_rss_kb");
    for dir in ["sent", "received"] {
        if let Some(Value::Object(types)) = agg.pointer(&format!("/messages/{dir}/by_type")) {
            for (t, c) in types {
                for unit in ["messages", "bytes"] {
                    if let Some(x) = c.get(unit).and_then(Value::as_f64) {
                        out.insert(format!("messages.{dir}.{t}.{unit}"), x);
                    }
                }
            }
        }
    }
    if let Some(Value::Object(stats)) = agg.get("stats") {
        for (name, s) in stats {
            if let Some(x) = s.get("sum").and_then(Value::as_f64) {
                out.insert(format!("stats.{name}.sum"), x);
            }
        }
    }
    for (name, m) in metric_summaries(aggregates) {
        let mut put = |stat: &str, x: f64| {
            if x.is_finite() {
                out.insert(format!("{name}.{stat}"), x);
            }
        };
        match m.kind {
            Some(MetricKind::Observation) => {
                if let Some(d) = m.distribution
                    && d.count > 0
                {
                    put("count", d.count as f64);
                    put("min", d.min);
                    put("p50", d.p50);
                    put("p90", d.p90);
                    put("p99", d.p99);
                    put("max", d.max);
                    put("mean", d.mean);
                }
            }
            Some(MetricKind::Gauge) => {
                put("total", m.total);
                put("mean", m.mean);
                put("min", m.min);
                put("max", m.max);
            }
            _ => {
                put("total", m.total);
                put("mean", m.mean);
                if let Some(r) = m.rate_per_s {
                    put("rate_per_s", r);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_flatten_into_named_scalars() {
        let summary: Summary = serde_json::from_str(
            r#"{"outcome": "failed", "duration_s": 2.5, "verdicts": [
                {"name": "reconstructed", "passed": true},
                {"name": "off", "passed": true, "skipped": true}]}"#,
        )
        .unwrap();
        let agg: Value = serde_json::from_str(
            r#"{"messages": {"sent": {"messages": 10, "bytes": 900,
                   "by_type": {"rumor": {"messages": 4, "bytes": 400}}}},
                "resources": {"cpu_s": 0.25},
                "stats": {"stat/x": {"sum": 3.0}},
                "metrics": {
                  "benaloh.time_to_total": {"kind": "observation", "distribution":
                     {"count": 4, "min": 1.0, "p50": 2.0, "p90": 3.0, "p99": 3.5, "max": 4.0, "mean": 2.5}},
                  "gossip.received": {"kind": "counter", "total": 40, "mean": 10, "rate_per_s": 2.0},
                  "peers": {"kind": "gauge", "total": 8, "mean": 2, "min": 1, "max": 3},
                  "broken": 17}}"#,
        )
        .unwrap();
        let v = flatten(&summary, Some(&agg));
        assert_eq!(v["run.passed"], 0.0);
        assert_eq!(v["run.duration_s"], 2.5);
        assert_eq!(v["verdict.reconstructed.passed"], 1.0);
        assert!(!v.contains_key("verdict.off.passed"));
        assert_eq!(v["messages.sent.bytes"], 900.0);
        assert_eq!(v["messages.sent.rumor.messages"], 4.0);
        assert_eq!(v["resources.cpu_s"], 0.25);
        assert_eq!(v["stats.stat/x.sum"], 3.0);
        assert_eq!(v["benaloh.time_to_total.p99"], 3.5);
        assert_eq!(v["benaloh.time_to_total.count"], 4.0);
        assert_eq!(v["gossip.received.rate_per_s"], 2.0);
        assert_eq!(v["peers.max"], 3.0);
        assert!(!v.keys().any(|k| k.starts_with("broken")));
    }
}
