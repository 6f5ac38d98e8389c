//! Comparing runs and sweeps: the first input is the baseline; every other
//! is compared with it grid point by grid point (points matched on the
//! keys that vary inside both; a single run or a one-point sweep is one
//! point), metric by metric: the means, their difference (absolute and
//! relative) and, where both sides have repetitions, Welch's t-test and
//! Mann–Whitney U p-values. `--fail-if` conditions are read and judged
//! here too.
//!
//! Pure: [`crate::aggregate::Group`]s in, rows out. Must not: read files
//! (the caller loads the sets) or decide an exit code.

use std::collections::BTreeSet;

use crate::aggregate::{Group, metric_names, values_of};
use crate::error::SweepError;
use crate::grid::Point;
use crate::stats;

/// One input: a run (one group of one run) or a sweep (its groups).
#[derive(Debug, Clone)]
pub struct Set {
    /// How the set is named in tables (its folder).
    pub label: String,
    pub groups: Vec<Group>,
}

impl Set {
    /// The keys whose value differs between this set's points.
    fn varying(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for g in &self.groups {
            for (k, v) in &g.point.0 {
                if self
                    .groups
                    .iter()
                    .any(|h| h.point.get(k) != Some(v.as_str()))
                {
                    keys.insert(k.clone());
                }
            }
        }
        keys
    }
}

/// A metric measured on the wall clock or the machine (run time, CPU,
/// memory): it differs between identical runs, so it is reported apart
/// from the experiment's results.
pub fn is_timing(metric: &str) -> bool {
    metric.starts_with("run.duration_s") || metric.starts_with("resources.")
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub n: usize,
    pub mean: f64,
    pub values: Vec<f64>,
}

/// One metric at one point, baseline against one other set.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub other: String,
    /// The matched point (only the keys that vary).
    pub point: Point,
    pub metric: String,
    pub base: Side,
    pub new: Side,
    /// new − base.
    pub diff: f64,
    /// (new − base) / |base|; `None` when the base is 0.
    pub rel: Option<f64>,
    pub p_welch: Option<f64>,
    pub p_mann_whitney: Option<f64>,
}

impl Row {
    /// The difference is significant at 5% (Welch's test where there are
    /// repetitions on both sides).
    pub fn significant(&self) -> Option<bool> {
        self.p_welch.map(|p| p < 0.05)
    }
}

/// Compare every other set with the baseline.
pub fn compare(base: &Set, others: &[Set]) -> Vec<Row> {
    let mut rows = Vec::new();
    for other in others {
        let keys: Vec<String> = base.varying().union(&other.varying()).cloned().collect();
        let trim = |p: &Point| {
            Point(
                p.0.iter()
                    .filter(|(k, _)| keys.contains(k))
                    .cloned()
                    .collect(),
            )
        };
        for bg in &base.groups {
            let point = trim(&bg.point);
            let Some(og) = other.groups.iter().find(|g| trim(&g.point) == point) else {
                continue;
            };
            let both = [bg.clone(), og.clone()];
            for metric in metric_names(&both) {
                let a = values_of(&bg.runs, &metric);
                let b = values_of(&og.runs, &metric);
                if a.is_empty() || b.is_empty() {
                    continue;
                }
                let (ma, mb) = (stats::mean(&a), stats::mean(&b));
                let diff = mb - ma;
                rows.push(Row {
                    other: other.label.clone(),
                    point: point.clone(),
                    metric,
                    rel: (ma != 0.0).then(|| diff / ma.abs()),
                    p_welch: stats::welch_p(&a, &b),
                    p_mann_whitney: (a.len() >= 2 && b.len() >= 2)
                        .then(|| stats::mann_whitney_p(&a, &b))
                        .flatten(),
                    base: Side {
                        n: a.len(),
                        mean: ma,
                        values: a,
                    },
                    new: Side {
                        n: b.len(),
                        mean: mb,
                        values: b,
                    },
                    diff,
                });
            }
        }
    }
    rows
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

/// `METRIC OP [+|-]NUMBER[%]`: the change of METRIC's mean from the
/// baseline (relative with `%`, absolute without) compared with NUMBER.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub text: String,
    pub metric: String,
    pub op: Op,
    pub threshold: f64,
    pub relative: bool,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, SweepError> {
        let bad = |why: &str| SweepError::BadCondition {
            text: text.to_string(),
            why: why.to_string(),
        };
        let ops = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)];
        let (at, sym, op) = ops
            .iter()
            .filter_map(|(s, op)| text.find(s).map(|i| (i, *s, *op)))
            .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
            .ok_or_else(|| bad("expected METRIC > +10% (operators: > >= < <=)"))?;
        let metric = text[..at].trim();
        let rhs = text[at + sym.len()..].trim();
        if metric.is_empty() {
            return Err(bad("no metric before the operator (e.g. run.duration_s)"));
        }
        let (num, relative) = match rhs.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (rhs, false),
        };
        let threshold: f64 = num
            .trim_start_matches('+')
            .parse()
            .map_err(|_| bad(&format!("`{rhs}` is not a number (e.g. +10% or 0.5)")))?;
        let threshold = if relative {
            threshold / 100.0
        } else {
            threshold
        };
        Ok(Condition {
            text: text.trim().to_string(),
            metric: metric.to_string(),
            op,
            threshold,
            relative,
        })
    }

    /// Whether the condition holds for a row (of its metric).
    pub fn holds(&self, row: &Row) -> bool {
        if row.metric != self.metric {
            return false;
        }
        let change = if self.relative {
            match row.rel {
                Some(r) => r,
                None if row.diff == 0.0 => 0.0,
                None => row.diff.signum() * f64::INFINITY,
            }
        } else {
            row.diff
        };
        match self.op {
            Op::Gt => change > self.threshold,
            Op::Ge => change >= self.threshold,
            Op::Lt => change < self.threshold,
            Op::Le => change <= self.threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::RunValues;
    use peerlab_run::RunStatus;

    fn run(v: f64) -> RunValues {
        RunValues {
            dir: "d".into(),
            run_id: "r".into(),
            experiment: "e".into(),
            seed: 1,
            config: Default::default(),
            outcome: Some(RunStatus::Passed),
            headline: Vec::new(),
            values: [("t.mean".to_string(), v)].into(),
            has_report: false,
            started_at: String::new(),
        }
    }

    fn set(label: &str, key: &str, value: &str, vals: &[f64]) -> Set {
        Set {
            label: label.into(),
            groups: vec![Group {
                point: Point(vec![(key.into(), value.into())]),
                runs: vals.iter().map(|v| run(*v)).collect(),
            }],
        }
    }

    #[test]
    fn one_point_sweeps_compare_despite_different_values() {
        let a = set("a", "fanout", "2", &[10.0, 11.0, 12.0]);
        let b = set("b", "fanout", "6", &[5.0, 5.5, 6.0]);
        let rows = compare(&a, &[b]);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.diff, -5.5);
        assert!((r.rel.unwrap() + 0.5).abs() < 1e-12);
        assert_eq!(r.significant(), Some(true));
        let same = compare(&a, std::slice::from_ref(&a));
        assert_eq!(same[0].diff, 0.0);
        assert_eq!(same[0].significant(), Some(false));
    }

    #[test]
    fn conditions_parse_and_judge() {
        let c = Condition::parse("benaloh.time_to_total.p99 > +10%").unwrap();
        assert_eq!(c.metric, "benaloh.time_to_total.p99");
        assert_eq!((c.op, c.threshold, c.relative), (Op::Gt, 0.1, true));
        let c2 = Condition::parse("run.duration_s>=-0.5").unwrap();
        assert_eq!((c2.op, c2.threshold, c2.relative), (Op::Ge, -0.5, false));
        for bad in ["x", "> 1", "x > fast", "x > 1%%"] {
            let e = Condition::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let a = set("a", "k", "1", &[10.0, 10.0]);
        let b = set("b", "k", "1", &[12.0, 12.0]);
        let row = &compare(&a, &[b])[0];
        let holds = |t: &str| Condition::parse(t).unwrap().holds(row);
        assert!(holds("t.mean > +10%"));
        assert!(!holds("t.mean > +25%"));
        assert!(holds("t.mean >= 2"));
        assert!(!holds("t.mean < 0"));
        assert!(!holds("other.mean > 0%"), "another metric");
    }
}
