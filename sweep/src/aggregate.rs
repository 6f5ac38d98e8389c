//! Statistics per grid point over its repetitions ([`Cell`]: n, mean, sd,
//! 95% CI for every metric), and the sweep's two CSV files in tidy long
//! format: `sweep.csv` (one row per point and metric) and `runs.csv` (one
//! row per run and metric, the values the statistics were computed from).
//!
//! Pure: runs in, rows and text out. Must not: read or write files.

use std::collections::BTreeSet;

use crate::collect::RunValues;
use crate::grid::Point;
use crate::stats::{self, CiMethod, Describe};

/// One grid point's runs (complete ones only count).
#[derive(Debug, Clone)]
pub struct Group {
    pub point: Point,
    pub runs: Vec<RunValues>,
}

/// One metric at one grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub point: Point,
    pub metric: String,
    pub stats: Describe,
    /// The values, in run order.
    pub values: Vec<f64>,
}

/// Percentiles and extremes get a bootstrap interval; means, totals,
/// counts and rates a t interval.
pub fn ci_method(metric: &str) -> CiMethod {
    match metric.rsplit('.').next() {
        Some("p50" | "p90" | "p99" | "min" | "max") => CiMethod::Bootstrap,
        _ => CiMethod::T,
    }
}

/// Every metric of any complete run, sorted.
pub fn metric_names(groups: &[Group]) -> Vec<String> {
    let set: BTreeSet<&String> = groups
        .iter()
        .flat_map(|g| g.runs.iter().filter(|r| r.complete()))
        .flat_map(|r| r.values.keys())
        .collect();
    set.into_iter().cloned().collect()
}

/// The values of `metric` over a group's complete runs that have it.
pub fn values_of(runs: &[RunValues], metric: &str) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.complete())
        .filter_map(|r| r.values.get(metric).copied())
        .collect()
}

/// A cell per point and metric (points in order, metrics sorted).
pub fn cells(groups: &[Group]) -> Vec<Cell> {
    let metrics = metric_names(groups);
    let mut out = Vec::new();
    for g in groups {
        for m in &metrics {
            let values = values_of(&g.runs, m);
            if values.is_empty() {
                continue;
            }
            out.push(Cell {
                point: g.point.clone(),
                metric: m.clone(),
                stats: stats::describe(&values, ci_method(m)),
                values,
            });
        }
    }
    out
}

/// A CSV field: quoted when it holds a comma, quote or newline.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number as CSV writes it: shortest round-trip form; empty for none.
pub fn num(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => String::new(),
    }
}

/// `sweep.csv`: `point,<key>...,metric,n,mean,sd,ci95_lo,ci95_hi,ci_method`.
pub fn sweep_csv(keys: &[String], cells: &[Cell]) -> String {
    let mut out = String::from("point");
    for k in keys {
        out.push(',');
        out.push_str(&field(k));
    }
    out.push_str(",metric,n,mean,sd,ci95_lo,ci95_hi,ci_method\n");
    for c in cells {
        out.push_str(&field(&c.point.to_string()));
        for k in keys {
            out.push(',');
            out.push_str(&field(c.point.get(k).unwrap_or_default()));
        }
        let s = &c.stats;
        out.push_str(&format!(
            ",{},{},{},{},{},{},{}\n",
            field(&c.metric),
            s.n,
            num(Some(s.mean)),
            num(s.sd),
            num(s.ci95.map(|c| c.0)),
            num(s.ci95.map(|c| c.1)),
            s.method.as_str()
        ));
    }
    out
}

/// `runs.csv`: `run,seed,outcome,<key>...,metric,value`, one row per
/// complete run and metric.
pub fn runs_csv(keys: &[String], groups: &[Group]) -> String {
    let mut out = String::from("run,seed,outcome");
    for k in keys {
        out.push(',');
        out.push_str(&field(k));
    }
    out.push_str(",metric,value\n");
    for g in groups {
        for r in g.runs.iter().filter(|r| r.complete()) {
            for (m, v) in &r.values {
                out.push_str(&format!(
                    "{},{},{}",
                    field(&r.run_id),
                    r.seed,
                    r.outcome.map(|o| o.as_str()).unwrap_or("")
                ));
                for k in keys {
                    out.push(',');
                    out.push_str(&field(g.point.get(k).unwrap_or_default()));
                }
                out.push_str(&format!(",{},{}\n", field(m), num(Some(*v))));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_run::RunStatus;

    fn run(id: &str, outcome: Option<RunStatus>, vals: &[(&str, f64)]) -> RunValues {
        RunValues {
            dir: id.into(),
            run_id: id.into(),
            experiment: "e".into(),
            seed: 1,
            config: Default::default(),
            outcome,
            headline: Vec::new(),
            values: vals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            has_report: false,
            started_at: String::new(),
        }
    }

    #[test]
    fn cells_count_complete_runs_only_and_csv_is_tidy() {
        let point = Point(vec![("n".into(), "5".into())]);
        let g = Group {
            point: point.clone(),
            runs: vec![
                run(
                    "a",
                    Some(RunStatus::Passed),
                    &[("x.mean", 1.0), ("x.p99", 4.0)],
                ),
                run(
                    "b",
                    Some(RunStatus::Failed),
                    &[("x.mean", 3.0), ("x.p99", 6.0)],
                ),
                run("c", Some(RunStatus::Interrupted), &[("x.mean", 100.0)]),
                run("d", None, &[]),
            ],
        };
        let cs = cells(std::slice::from_ref(&g));
        assert_eq!(cs.len(), 2);
        let mean = cs.iter().find(|c| c.metric == "x.mean").unwrap();
        assert_eq!(mean.values, [1.0, 3.0]);
        assert_eq!(mean.stats.mean, 2.0);
        assert_eq!(mean.stats.method, CiMethod::T);
        let p99 = cs.iter().find(|c| c.metric == "x.p99").unwrap();
        assert_eq!(p99.stats.method, CiMethod::Bootstrap);
        let csv = sweep_csv(&["n".into()], &cs);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("point,n,metric,n,mean,sd,ci95_lo,ci95_hi,ci_method")
        );
        assert!(
            csv.contains("\nn=5,5,x.mean,2,2,1.4142135623730951,"),
            "{csv}"
        );
        let runs = runs_csv(&["n".into()], &[g]);
        assert_eq!(runs.lines().count(), 1 + 4, "{runs}");
        assert_eq!(field("a,b"), "\"a,b\"");
    }
}
