//! The maths of declared metrics (run.json's `metrics`): folds each
//! instance's counters, gauges and observation histograms into per-run
//! [`MetricSummary`]s (summary.json's `aggregates.metrics`), the reduced
//! series the plots draw, and the rows of `timeseries.csv` and
//! `observations.csv`.
//!
//! Must not: read or write files (the loader reads, the pipeline writes),
//! or redefine the run folder's metric types (they are peerlab-run's).
//! Like [`crate::analyse::Aggregator`], a [`MetricsAcc`] is fed one
//! instance at a time and two of them merge, so loading stays parallel.
//! Observations are merged exactly with `Histogram::merge`.
//!
//! Memory stays bounded by the instances, never by instances × samples:
//! [`MetricsAcc::fold_instance`] hands each instance's `timeseries.csv`
//! rows back for the caller to write; each instance keeps its last value
//! and its observations' statistics (not its histograms); whole series are
//! kept only while few instances recorded a metric (the plots draw them
//! one line each), except the `online` gauge's, cut to its changes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use peerlab_run::metrics::{Histogram, MetricDecl, MetricKind, MetricSummary, ObservationStats};

use crate::model::InstanceData;
use crate::series::{GaugeBins, Grid, bin_of, tidy};

/// One metric, folded over the instances seen so far.
#[derive(Debug, Clone)]
struct MetricAcc {
    /// Index of its declaration.
    decl: usize,
    /// Counters and gauges: each instance's last value.
    finals: Vec<(u32, f64)>,
    /// Counters and gauges: each instance's value per base bin (its last
    /// value in the bin), seen across instances.
    bins: GaugeBins,
    /// Counters and gauges: each instance's series, (t, value), while at
    /// most [`SERIES_KEPT`] instances recorded the metric (see
    /// [`MetricData::series`]).
    series: Vec<(u32, Vec<(f64, f64)>)>,
    /// Whether `series` were cut to their changes (the `online` gauge).
    cut: bool,
    /// Observations: every sample of every instance.
    merged: Histogram,
    /// Observations: the statistics of each instance's samples.
    per_instance: Vec<(u32, ObservationStats)>,
    /// Observations: the samples recorded in each base bin.
    bin_hist: BTreeMap<i64, Histogram>,
}

impl MetricAcc {
    /// Adds one instance's series (after its final value): whole while
    /// at most [`SERIES_KEPT`] instances recorded the metric; beyond, none,
    /// or for the `online` gauge its changes only.
    fn keep_series(&mut self, id: u32, mut points: Vec<(f64, f64)>, name: &str) {
        if self.finals.len() > SERIES_KEPT {
            if name != crate::online::ONLINE_METRIC {
                self.series = Vec::new();
                return;
            }
            self.cut_series();
            changes_only(&mut points);
        }
        self.series.push((id, points));
    }

    /// Once more than [`SERIES_KEPT`] instances recorded the metric: drops
    /// the series, or cuts the `online` gauge's to its changes (once).
    fn cut_series(&mut self) {
        if !self.cut {
            self.series.iter_mut().for_each(|(_, p)| changes_only(p));
            self.cut = true;
        }
    }

    fn new(decl: usize) -> Self {
        MetricAcc {
            decl,
            finals: Vec::new(),
            bins: GaugeBins::default(),
            series: Vec::new(),
            cut: false,
            merged: Histogram::new(),
            per_instance: Vec::new(),
            bin_hist: BTreeMap::new(),
        }
    }

    fn merge(&mut self, mut o: MetricAcc, name: &str) {
        self.finals.append(&mut o.finals);
        self.bins.merge(&o.bins);
        if self.finals.len() > SERIES_KEPT {
            if name == crate::online::ONLINE_METRIC {
                self.cut_series();
                o.cut_series();
            } else {
                self.series = Vec::new();
                o.series = Vec::new();
            }
        }
        self.series.extend(o.series);
        self.merged.merge(&o.merged);
        self.per_instance.extend(o.per_instance);
        for (k, h) in o.bin_hist {
            match self.bin_hist.get_mut(&k) {
                Some(mine) => mine.merge(&h),
                None => {
                    self.bin_hist.insert(k, h);
                }
            }
        }
    }
}

/// Declared metrics folded over instances; see the module docs.
#[derive(Debug, Clone)]
pub struct MetricsAcc {
    width: f64,
    decls: Vec<MetricDecl>,
    /// By full name (a family's members each have their own).
    metrics: BTreeMap<String, MetricAcc>,
    /// `run` column of the CSVs (already quoted when it needs to be).
    run: String,
    /// `timeseries.csv` rows of each instance (without the header) that
    /// [`MetricsAcc::add_instance`] kept.
    rows: Vec<(u32, String)>,
}

/// The first line of `timeseries.csv`.
pub const TIMESERIES_HEADER: &str = "run,instance,t,metric,value\n";

/// Series of a metric are kept whole while at most this many instances
/// recorded it (the plots draw one line per instance up to this many).
pub const SERIES_KEPT: usize = 10;

/// Cuts a series to the points where the value changed (from 0 before the
/// first) and its last point: what [`crate::online::series`] needs.
fn changes_only(points: &mut Vec<(f64, f64)>) {
    let Some(&last) = points.last() else { return };
    let mut prev = 0.0;
    points.retain(|&(_, v)| {
        let changed = v != prev;
        prev = v;
        changed
    });
    if points.last() != Some(&last) {
        points.push(last);
    }
}

impl MetricsAcc {
    pub fn new(width: f64, decls: Vec<MetricDecl>, run: &str) -> Self {
        MetricsAcc {
            width,
            decls,
            metrics: BTreeMap::new(),
            run: csv_field(run),
            rows: Vec::new(),
        }
    }

    /// Whether any metric is declared.
    pub fn is_empty(&self) -> bool {
        self.decls.is_empty()
    }

    fn decl_of(&self, name: &str) -> Option<usize> {
        // An exact declaration wins over a family.
        self.decls
            .iter()
            .position(|d| d.name == name)
            .or_else(|| self.decls.iter().position(|d| d.matches(name)))
    }

    /// Folds one instance, keeping its `timeseries.csv` rows for
    /// [`MetricsAcc::finish`] (small runs and tests; the pipeline uses
    /// [`MetricsAcc::fold_instance`] and writes the rows as they come).
    pub fn add_instance(&mut self, inst: &InstanceData) {
        let rows = self.fold_instance(inst);
        if !rows.is_empty() {
            self.rows.push((inst.id, rows));
        }
    }

    /// Folds one instance and returns its `timeseries.csv` rows (without
    /// the header; empty when it recorded no declared metric).
    pub fn fold_instance(&mut self, inst: &InstanceData) -> String {
        if self.decls.is_empty() {
            return String::new();
        }
        let width = self.width;
        let decl_of: Vec<Option<usize>> =
            inst.counter_names.iter().map(|n| self.decl_of(n)).collect();
        // Counters and gauges: (t, value) per name, resets taken out of
        // counters (a counter after a reset goes on from where it was).
        let n = inst.counter_names.len();
        let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
        let mut offset = vec![0.0f64; n];
        let mut last = vec![0.0f64; n];
        for s in &inst.stats {
            if s.reset {
                for i in 0..n {
                    offset[i] += last[i];
                    last[i] = 0.0;
                }
            }
            for &(idx, v) in &s.values {
                let idx = idx as usize;
                let Some(d) = decl_of[idx] else { continue };
                let counter = self.decls[d].kind == Some(MetricKind::Counter);
                let value = if counter {
                    if v < last[idx] {
                        // Went down without a reset mark: counts from zero.
                        offset[idx] += last[idx];
                    }
                    last[idx] = v;
                    offset[idx] + v
                } else {
                    v
                };
                series[idx].push((s.t, value));
            }
        }
        let mut csv = String::new();
        for (idx, points) in series.into_iter().enumerate() {
            let Some(d) = decl_of[idx] else { continue };
            if points.is_empty() {
                continue;
            }
            let name = &inst.counter_names[idx];
            for &(t, v) in &points {
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{}",
                    self.run,
                    inst.id,
                    t,
                    csv_field(name),
                    v
                );
            }
            let acc = self
                .metrics
                .entry(name.clone())
                .or_insert_with(|| MetricAcc::new(d));
            // The instance's last value in each bin.
            let mut i = 0;
            while i < points.len() {
                let k = bin_of(points[i].0, width);
                let mut j = i;
                while j + 1 < points.len() && bin_of(points[j + 1].0, width) == k {
                    j += 1;
                }
                acc.bins.observe(k, points[j].1);
                i = j + 1;
            }
            acc.finals.push((inst.id, points[points.len() - 1].1));
            acc.keep_series(inst.id, points, name);
        }

        // Observations.
        let obs_decl: Vec<Option<usize>> = inst
            .observation_names
            .iter()
            .map(|n| self.decl_of(n))
            .collect();
        // Each line's histogram goes into its time bin and the instance's
        // own; the instance's into the run's (one merge per instance, not
        // per line: merging walks the whole histogram).
        let mut mine: HashMap<u32, Histogram> = HashMap::new();
        for s in &inst.stats {
            let k = bin_of(s.t, width);
            for (idx, h) in &s.observations {
                let Some(d) = obs_decl[*idx as usize] else {
                    continue;
                };
                let name = &inst.observation_names[*idx as usize];
                if !self.metrics.contains_key(name) {
                    self.metrics.insert(name.clone(), MetricAcc::new(d));
                }
                let Some(acc) = self.metrics.get_mut(name) else {
                    continue;
                };
                match acc.bin_hist.get_mut(&k) {
                    Some(b) => b.merge(h),
                    None => {
                        acc.bin_hist.insert(k, h.clone());
                    }
                }
                match mine.get_mut(idx) {
                    Some(m) => m.merge(h),
                    None => {
                        mine.insert(*idx, h.clone());
                    }
                }
            }
        }
        for (idx, h) in mine {
            let name = &inst.observation_names[idx as usize];
            if let Some(acc) = self.metrics.get_mut(name) {
                acc.merged.merge(&h);
                acc.per_instance.push((inst.id, h.stats()));
            }
        }
        csv
    }

    /// Adds what another accumulator folded (of other instances).
    pub fn merge(&mut self, other: MetricsAcc) {
        for (name, acc) in other.metrics {
            match self.metrics.get_mut(&name) {
                Some(mine) => mine.merge(acc, &name),
                None => {
                    self.metrics.insert(name, acc);
                }
            }
        }
        self.rows.extend(other.rows);
    }

    /// The range of base bins holding a sample, if any.
    pub fn bin_range(&self) -> Option<(i64, i64)> {
        let mut r: Option<(i64, i64)> = None;
        let mut see = |a: i64, b: i64| {
            r = Some(r.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        };
        for m in self.metrics.values() {
            if let Some((a, b)) = m.bins.range() {
                see(a, b);
            }
            if let (Some(a), Some(b)) = (m.bin_hist.keys().next(), m.bin_hist.keys().last()) {
                see(*a, *b);
            }
        }
        r
    }

    /// The per-run results. `duration_s` is the scenario seconds counter
    /// rates are per; `grid` the time points of the plots.
    pub fn finish(mut self, duration_s: Option<f64>, grid: Option<&Grid>) -> Metrics {
        let mut out = Vec::new();
        for (name, mut acc) in std::mem::take(&mut self.metrics) {
            let decl = &self.decls[acc.decl];
            acc.finals.sort_by_key(|f| f.0);
            acc.series.sort_by_key(|s| s.0);
            acc.per_instance.sort_by_key(|p| p.0);
            let kind = decl.kind.unwrap_or(MetricKind::Gauge);
            let mut summary = MetricSummary {
                kind: Some(kind),
                unit: decl.unit.clone(),
                module: decl.module.clone(),
                headline: decl.headline,
                ..MetricSummary::default()
            };
            let mut reduced = Reduced::default();
            if kind == MetricKind::Observation {
                summary.instances = acc.per_instance.len() as u32;
                summary.distribution = Some(round_stats(acc.merged.stats()));
                if let Some(g) = grid {
                    reduced.observation = observation_points(g, &acc.bin_hist);
                }
            } else {
                let values: Vec<f64> = acc.finals.iter().map(|f| f.1).collect();
                summary.instances = values.len() as u32;
                if !values.is_empty() {
                    let total: f64 = values.iter().sum();
                    summary.total = tidy(total);
                    summary.mean = tidy(total / values.len() as f64);
                    summary.min = values.iter().copied().fold(f64::INFINITY, f64::min);
                    summary.max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                }
                if kind == MetricKind::Counter {
                    summary.rate_per_s = duration_s
                        .filter(|d| *d > 0.0)
                        .map(|d| tidy(summary.total / d));
                }
                if let Some(g) = grid {
                    reduced.spread = g.gauge(&acc.bins);
                    reduced.times = g.times();
                }
            }
            out.push(MetricData {
                name,
                decl: decl.clone(),
                summary,
                finals: acc.finals,
                series: acc.series,
                merged: acc.merged,
                per_instance: acc.per_instance,
                reduced,
            });
        }
        // Headline metrics first, then by module and name.
        out.sort_by(|a, b| {
            b.decl
                .headline
                .cmp(&a.decl.headline)
                .then_with(|| a.decl.module.cmp(&b.decl.module))
                .then_with(|| a.name.cmp(&b.name))
        });
        self.rows.sort_by_key(|r| r.0);
        let mut timeseries = String::from(TIMESERIES_HEADER);
        for (_, rows) in &self.rows {
            timeseries.push_str(rows);
        }
        let mut observations = String::from("run,instance,metric,count,min,p50,p90,p99,max,mean\n");
        for m in out
            .iter()
            .filter(|m| m.summary.kind == Some(MetricKind::Observation))
        {
            let name = csv_field(&m.name);
            for (id, stats) in &m.per_instance {
                push_obs_row(&mut observations, &self.run, &id.to_string(), &name, stats);
            }
            push_obs_row(
                &mut observations,
                &self.run,
                "all",
                &name,
                &m.merged.stats(),
            );
        }
        Metrics {
            metrics: out,
            timeseries_csv: timeseries,
            observations_csv: observations,
        }
    }
}

fn push_obs_row(out: &mut String, run: &str, instance: &str, name: &str, s: &ObservationStats) {
    let _ = writeln!(
        out,
        "{run},{instance},{name},{},{},{},{},{},{},{}",
        s.count, s.min, s.p50, s.p90, s.p99, s.max, s.mean
    );
}

/// Statistics as summary.json states them (the mean to 4 decimals; the
/// rest are histogram values already).
fn round_stats(s: ObservationStats) -> ObservationStats {
    ObservationStats {
        mean: tidy(s.mean),
        ..s
    }
}

/// Per grid point: (t, min, p50, p90, max, count) of the samples in it.
fn observation_points(g: &Grid, bins: &BTreeMap<i64, Histogram>) -> Vec<ObsPoint> {
    let mut out = Vec::new();
    for i in 0..g.points() {
        let mut h: Option<Histogram> = None;
        for k in g.span(i) {
            if let Some(b) = bins.get(&k) {
                match &mut h {
                    Some(h) => h.merge(b),
                    None => h = Some(b.clone()),
                }
            }
        }
        if let Some(h) = h.filter(|h| !h.is_empty()) {
            out.push(ObsPoint {
                t: g.time(i),
                min: h.min(),
                p50: h.quantile(0.5),
                p90: h.quantile(0.9),
                max: h.max(),
                count: h.count(),
            });
        }
    }
    out
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One grid point of an observation's time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObsPoint {
    pub t: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
    pub count: u64,
}

/// What the plots need beyond the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reduced {
    /// Counters and gauges: the grid's times and, per point, (min, mean,
    /// max) over the instances' values.
    pub times: Vec<f64>,
    pub spread: Vec<Option<(f64, f64, f64)>>,
    /// Observations: points holding samples.
    pub observation: Vec<ObsPoint>,
}

/// One metric over the run.
#[derive(Debug, Clone)]
pub struct MetricData {
    /// Full name (`benaloh.time_to_total`, or a family's member).
    pub name: String,
    /// The declaration it matched.
    pub decl: MetricDecl,
    pub summary: MetricSummary,
    /// Counters and gauges: (instance, last value), by instance.
    pub finals: Vec<(u32, f64)>,
    /// Counters and gauges: (instance, (t, value) per line), by instance,
    /// when at most [`SERIES_KEPT`] instances recorded the metric (every
    /// one of them); beyond, empty, except for the `online` gauge, whose
    /// series are then cut to the points where the value changed and the
    /// last point.
    pub series: Vec<(u32, Vec<(f64, f64)>)>,
    /// Observations: all samples.
    pub merged: Histogram,
    /// Observations: (instance, the statistics of its samples), by instance.
    pub per_instance: Vec<(u32, ObservationStats)>,
    pub reduced: Reduced,
}

/// Every declared metric of the run, headline ones first, and the CSVs.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub metrics: Vec<MetricData>,
    /// `timeseries.csv`, header included, with the rows of the instances
    /// [`MetricsAcc::add_instance`] kept (the pipeline streams the rows of
    /// [`MetricsAcc::fold_instance`] to the file instead).
    pub timeseries_csv: String,
    /// `observations.csv`, header included.
    pub observations_csv: String,
}

impl Metrics {
    /// `aggregates.metrics`.
    pub fn summaries(&self) -> BTreeMap<String, MetricSummary> {
        self.metrics
            .iter()
            .map(|m| (m.name.clone(), m.summary.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StatsSample;

    fn decl(name: &str, kind: MetricKind) -> MetricDecl {
        MetricDecl {
            name: name.into(),
            module: "m".into(),
            kind: Some(kind),
            unit: "x".into(),
            ..MetricDecl::default()
        }
    }

    fn hist(v: &[f64]) -> Histogram {
        let mut h = Histogram::new();
        v.iter().for_each(|x| h.record(*x).unwrap());
        h
    }

    fn inst(id: u32, lines: &[(f64, bool, f64, f64, &[f64])]) -> InstanceData {
        InstanceData {
            id,
            counter_names: vec!["m.c".into(), "m.g".into()],
            observation_names: vec!["m.o".into()],
            stats: lines
                .iter()
                .map(|(t, reset, c, g, o)| StatsSample {
                    t: *t,
                    reset: *reset,
                    values: vec![(0, *c), (1, *g)],
                    observations: if o.is_empty() {
                        vec![]
                    } else {
                        vec![(0, hist(o))]
                    },
                })
                .collect(),
            ..InstanceData::default()
        }
    }

    #[test]
    fn counters_survive_resets_gauges_keep_their_last_and_observations_merge() {
        let decls = vec![
            decl("m.c", MetricKind::Counter),
            decl("m.g", MetricKind::Gauge),
            decl("m.o", MetricKind::Observation),
        ];
        let a = inst(
            1,
            &[
                (1.0, false, 2.0, 5.0, &[1.0]),
                (2.0, true, 1.0, 3.0, &[2.0, 3.0]),
            ],
        );
        let b = inst(
            2,
            &[(1.0, false, 4.0, 1.0, &[]), (2.0, false, 6.0, 7.0, &[10.0])],
        );
        let mut one = MetricsAcc::new(1.0, decls.clone(), "r");
        one.add_instance(&b);
        let mut two = MetricsAcc::new(1.0, decls, "r");
        two.add_instance(&a);
        two.merge(one);
        let grid = Grid::new(0, 1, 1.0, 300);
        let m = two.finish(Some(2.0), Some(&grid));
        let s = m.summaries();
        // Instance 1: 2, then a reset and 1 more: 3; instance 2: 6.
        assert_eq!(s["m.c"].total, 9.0);
        assert_eq!(s["m.c"].rate_per_s, Some(4.5));
        assert_eq!((s["m.c"].min, s["m.c"].max), (3.0, 6.0));
        assert_eq!(s["m.g"].total, 10.0);
        assert_eq!(s["m.g"].instances, 2);
        let d = s["m.o"].distribution.unwrap();
        // The histogram's max is the top of its bucket: within 0.1%.
        assert_eq!((d.count, d.min), (4, 1.0));
        assert!((d.max - 10.0).abs() <= 0.01, "{}", d.max);
        assert_eq!(s["m.o"].instances, 2);
        assert!(
            m.timeseries_csv
                .starts_with("run,instance,t,metric,value\nr,1,1,m.c,2\n")
        );
        assert!(
            m.timeseries_csv.contains("r,1,2,m.c,3\n"),
            "{}",
            m.timeseries_csv
        );
        assert!(
            m.observations_csv.contains("r,all,m.o,4,1,"),
            "{}",
            m.observations_csv
        );
        let c = m.metrics.iter().find(|x| x.name == "m.c").unwrap();
        assert_eq!(
            c.reduced.spread,
            vec![Some((2.0, 3.0, 4.0)), Some((3.0, 4.5, 6.0))]
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
