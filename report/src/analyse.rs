//! The maths: folds the plain data of each instance and process into
//! totals, per-instance rows and time bins, then reduces the bins to at most
//! a few hundred points. No I/O: it sees only [`crate::model`] values.
//!
//! [`Aggregator`] is fed one instance at a time (so memory holds one
//! instance's samples, not the run's) and two aggregators merge, so the
//! loader can fill several in parallel. [`Aggregator::finish`] adds the
//! processes and the runner's summary and returns the [`Aggregates`]
//! written to `summary.json`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::Warning;
use crate::metrics::{Metrics, MetricsAcc};
use crate::model::{EventKind, InstanceData, ProcessData};
use crate::series::{Bins, GaugeBins, Grid, bin_of, tidy};
use peerlab_run::metrics::{MetricDecl, MetricSummary};
use peerlab_run::{RunRecord, Summary};

/// At most this many warnings are listed in `summary.json` (all are counted).
const LISTED_WARNINGS: usize = 100;

/// What kind of counter a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    MsgOut,
    BytesOut,
    MsgIn,
    BytesIn,
    Drop,
    Peers,
    Stat,
    Other,
}

/// Splits `msg_out/local-share` into its category and type.
pub fn classify(name: &str) -> (Category, &str) {
    match name.split_once('/') {
        Some(("msg_out", t)) => (Category::MsgOut, t),
        Some(("bytes_out", t)) => (Category::BytesOut, t),
        Some(("msg_in", t)) => (Category::MsgIn, t),
        Some(("bytes_in", t)) => (Category::BytesIn, t),
        Some(("drop", r)) => (Category::Drop, r),
        Some(("stat", s)) => (Category::Stat, s),
        None if name == "peers" => (Category::Peers, ""),
        _ => (Category::Other, name),
    }
}

impl Category {
    fn is_counter(self) -> bool {
        matches!(
            self,
            Category::MsgOut
                | Category::BytesOut
                | Category::MsgIn
                | Category::BytesIn
                | Category::Drop
        )
    }
}

/// Totals of one instance, before they become an [`InstanceRow`].
#[derive(Debug, Clone, Default)]
struct InstanceTotals {
    id: u32,
    counters: BTreeMap<(Category, String), f64>,
    stats: BTreeMap<String, f64>,
    peers_last: Option<f64>,
    samples: usize,
    resets: usize,
    last_t: Option<f64>,
    end_status: Option<String>,
}

/// Occurrences of one annotation, fault or command across instances.
#[derive(Debug, Clone)]
struct EventAcc {
    instances: u64,
    occurrences: u64,
    first_t: f64,
    last_t: f64,
    sum_t: f64,
    last_instance: Option<u32>,
}

/// Folds instances one by one; see the module docs.
#[derive(Debug, Clone)]
pub struct Aggregator {
    width: f64,
    keys: HashMap<(Category, String), usize>,
    series: Vec<((Category, String), Bins)>,
    peers: GaugeBins,
    instances: Vec<InstanceTotals>,
    events: HashMap<(EventKind, String), EventAcc>,
    t_range: Option<(f64, f64)>,
    /// The latest statistics line of any instance.
    last_stats_t: Option<f64>,
    metrics: MetricsAcc,
    /// Multiplies the wall-clock `t` of events and resources to put them
    /// on the statistics' time base (1 / time_scale when the statistics
    /// are in scenario seconds, else 1).
    wall_to_stats: f64,
    warnings: Vec<Warning>,
}

impl Aggregator {
    /// An empty aggregator with base time bins of `width` seconds.
    pub fn new(width: f64) -> Self {
        Self::with_metrics(width, Vec::new(), "")
    }

    /// The aggregator of a run: folds the metrics `plan` declares and, when
    /// it declares any (its statistics lines are then in scenario seconds,
    /// its events and resources still wall-clock), plots events and
    /// resources in scenario seconds too. `run` names the run in the CSVs.
    pub fn for_run(width: f64, plan: Option<&RunRecord>, run: &str) -> Self {
        let decls = plan.map(|p| p.metrics.clone()).unwrap_or_default();
        let scale = plan.map_or(1.0, |p| p.time_scale);
        let mut agg = Self::with_metrics(width, decls, run);
        if !agg.metrics.is_empty() && scale > 0.0 && scale.is_finite() {
            agg.wall_to_stats = 1.0 / scale;
        }
        agg
    }

    /// An aggregator that also folds the declared `metrics` (run.json's),
    /// naming the run `run` in the CSVs.
    pub fn with_metrics(width: f64, metrics: Vec<MetricDecl>, run: &str) -> Self {
        Aggregator {
            last_stats_t: None,
            wall_to_stats: 1.0,
            metrics: MetricsAcc::new(width, metrics, run),
            width,
            keys: HashMap::new(),
            series: Vec::new(),
            peers: GaugeBins::default(),
            instances: Vec::new(),
            events: HashMap::new(),
            t_range: None,
            warnings: Vec::new(),
        }
    }

    fn series_index(&mut self, cat: Category, name: &str) -> usize {
        if let Some(&i) = self.keys.get(&(cat, name.to_string())) {
            return i;
        }
        let i = self.series.len();
        self.keys.insert((cat, name.to_string()), i);
        self.series.push(((cat, name.to_string()), Bins::default()));
        i
    }

    fn see_t(&mut self, t: f64) {
        self.t_range = Some(match self.t_range {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    /// Folds one instance's statistics and events, keeping its
    /// `timeseries.csv` rows (see [`MetricsAcc::add_instance`]).
    pub fn add_instance(&mut self, inst: &InstanceData) {
        self.metrics.add_instance(inst);
        self.fold_rest(inst);
    }

    /// Folds one instance's statistics and events and returns its
    /// `timeseries.csv` rows, for the caller to write in instance order
    /// (see [`MetricsAcc::fold_instance`]).
    pub fn fold_instance(&mut self, inst: &InstanceData) -> String {
        let rows = self.metrics.fold_instance(inst);
        self.fold_rest(inst);
        rows
    }

    fn fold_rest(&mut self, inst: &InstanceData) {
        self.warnings.extend(inst.warnings.iter().cloned());
        if let Some(t) = inst.stats.iter().map(|s| s.t).reduce(f64::max) {
            self.last_stats_t = Some(self.last_stats_t.map_or(t, |l| l.max(t)));
        }
        let mut totals = InstanceTotals {
            id: inst.id,
            samples: inst.stats.len(),
            ..Default::default()
        };

        // Per counter of this instance: its category, type and series.
        let kinds: Vec<(Category, String, Option<usize>)> = inst
            .counter_names
            .iter()
            .map(|n| {
                let (cat, ty) = classify(n);
                let idx = cat.is_counter().then(|| self.series_index(cat, ty));
                (cat, ty.to_string(), idx)
            })
            .collect();
        let n = kinds.len();
        let mut prev = vec![0.0f64; n];
        let mut sum = vec![0.0f64; n];
        let mut seen = vec![usize::MAX; n];
        let mut went_back: Option<String> = None;

        for (si, s) in inst.stats.iter().enumerate() {
            self.see_t(s.t);
            totals.last_t = Some(s.t);
            let k = bin_of(s.t, self.width);
            if s.reset {
                totals.resets += 1;
                prev.iter_mut().for_each(|p| *p = 0.0);
            }
            for &(idx, v) in &s.values {
                let idx = idx as usize;
                seen[idx] = si;
                let (cat, ty, series) = &kinds[idx];
                match cat {
                    Category::Peers => {
                        self.peers.observe(k, v);
                        totals.peers_last = Some(v);
                    }
                    Category::Stat => {
                        totals.stats.insert(ty.clone(), v);
                    }
                    Category::Other => {}
                    _ => {
                        let mut delta = v - prev[idx];
                        if delta < 0.0 {
                            // Restarted without a reset mark: count from zero.
                            went_back.get_or_insert_with(|| inst.counter_names[idx].clone());
                            delta = v;
                        }
                        prev[idx] = v;
                        sum[idx] += delta;
                        if let Some(series) = series {
                            self.series[*series].1.add(k, delta);
                        }
                    }
                }
            }
            if s.values.len() < n {
                // A name absent from a line counts as 0.
                for idx in 0..n {
                    if seen[idx] != si && prev[idx] != 0.0 && kinds[idx].0.is_counter() {
                        went_back.get_or_insert_with(|| inst.counter_names[idx].clone());
                        prev[idx] = 0.0;
                    }
                }
            }
        }
        if let Some(name) = went_back {
            self.warnings.push(Warning::file(
                format!("instance {}", inst.id),
                format!(
                    "counter {name} went down without a reset mark; later values counted from zero"
                ),
            ));
        }
        for (idx, (cat, ty, _)) in kinds.iter().enumerate() {
            if cat.is_counter() {
                *totals.counters.entry((*cat, ty.clone())).or_insert(0.0) += sum[idx];
            }
        }

        for e in &inst.events {
            self.see_t(e.t * self.wall_to_stats);
            if e.kind == EventKind::End {
                totals.end_status = Some(e.text.clone());
                continue;
            }
            let acc = self
                .events
                .entry((e.kind.clone(), e.text.clone()))
                .or_insert(EventAcc {
                    instances: 0,
                    occurrences: 0,
                    first_t: e.t,
                    last_t: e.t,
                    sum_t: 0.0,
                    last_instance: None,
                });
            acc.occurrences += 1;
            acc.sum_t += e.t;
            acc.first_t = acc.first_t.min(e.t);
            acc.last_t = acc.last_t.max(e.t);
            if acc.last_instance != Some(inst.id) {
                acc.instances += 1;
                acc.last_instance = Some(inst.id);
            }
        }
        self.instances.push(totals);
    }

    /// Adds everything another aggregator folded (of other instances).
    pub fn merge(&mut self, other: Aggregator) {
        self.metrics.merge(other.metrics);
        if let Some(t) = other.last_stats_t {
            self.last_stats_t = Some(self.last_stats_t.map_or(t, |l| l.max(t)));
        }
        for ((cat, name), bins) in other.series {
            let i = self.series_index(cat, &name);
            self.series[i].1.merge(&bins);
        }
        self.peers.merge(&other.peers);
        self.instances.extend(other.instances);
        for (key, acc) in other.events {
            match self.events.get_mut(&key) {
                None => {
                    self.events.insert(key, acc);
                }
                Some(mine) => {
                    mine.instances += acc.instances;
                    mine.occurrences += acc.occurrences;
                    mine.sum_t += acc.sum_t;
                    mine.first_t = mine.first_t.min(acc.first_t);
                    mine.last_t = mine.last_t.max(acc.last_t);
                }
            }
        }
        if let Some((a, b)) = other.t_range {
            self.see_t(a);
            self.see_t(b);
        }
        self.warnings.extend(other.warnings);
    }

    /// Adds the processes and the runner's view and reduces the time series.
    pub fn finish(
        mut self,
        plan: Option<&RunRecord>,
        summary: Option<&Summary>,
        processes: &[ProcessData],
        mut warnings: Vec<Warning>,
        max_points: usize,
    ) -> Analysis {
        self.instances.sort_by_key(|i| i.id);
        // Instances were folded in whatever order the threads took them:
        // list their warnings by file and line so reports are repeatable.
        self.warnings
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        warnings.append(&mut self.warnings);
        for p in processes {
            warnings.extend(p.warnings.iter().cloned());
            for s in &p.samples {
                self.see_t(s.t * self.wall_to_stats);
            }
        }
        // A scale of 0 is none written (a field older folders may lack).
        let time_scale = plan
            .map(|p| p.time_scale)
            .filter(|&f| f > 0.0)
            .or(summary.map(|s| s.time_scale).filter(|&f| f > 0.0));

        // The grid: every base bin that holds anything, including the
        // resources and events.
        let mut range: Option<(i64, i64)> = self
            .t_range
            .map(|(a, b)| (bin_of(a, self.width), bin_of(b, self.width)));
        for (_, bins) in &self.series {
            if let Some((a, b)) = bins.range() {
                range = Some(range.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            }
        }
        if let Some((a, b)) = self.metrics.bin_range() {
            range = Some(range.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        }
        let grid = range.map(|(a, b)| Grid::new(a, b, self.width, max_points));

        // Per-type totals.
        let mut sent: BTreeMap<String, TypeCount> = BTreeMap::new();
        let mut received: BTreeMap<String, TypeCount> = BTreeMap::new();
        let mut drops: BTreeMap<String, u64> = BTreeMap::new();
        for inst in &self.instances {
            for ((cat, ty), &v) in &inst.counters {
                let v = count(v);
                match cat {
                    Category::MsgOut => sent.entry(ty.clone()).or_default().messages += v,
                    Category::BytesOut => sent.entry(ty.clone()).or_default().bytes += v,
                    Category::MsgIn => received.entry(ty.clone()).or_default().messages += v,
                    Category::BytesIn => received.entry(ty.clone()).or_default().bytes += v,
                    Category::Drop => *drops.entry(ty.clone()).or_default() += v,
                    _ => {}
                }
            }
        }

        // Processes: totals, and the share each instance gets.
        let mut procs = Vec::new();
        let mut instance_res: HashMap<u32, (f64, f64, String, usize)> = HashMap::new();
        for p in processes {
            let last = |f: fn(&crate::model::ResourceSample) -> f64| {
                p.samples.iter().map(f).fold(0.0f64, f64::max)
            };
            let cpu_user = last(|s| s.cpu_user_s);
            let cpu_system = last(|s| s.cpu_system_s);
            let peak = last(|s| s.rss_kb);
            let name = p.path.trim_end_matches(".resources.jsonl").to_string();
            let n = p.instances.len().max(1);
            for &id in &p.instances {
                instance_res.insert(
                    id,
                    ((cpu_user + cpu_system) / n as f64, peak, name.clone(), n),
                );
            }
            procs.push(ProcessRow {
                process: name,
                pid: p.samples.iter().rev().find_map(|s| s.pid),
                instances: p.instances.clone(),
                cpu_user_s: tidy(cpu_user),
                cpu_system_s: tidy(cpu_system),
                cpu_s: tidy(cpu_user + cpu_system),
                peak_rss_kb: count(peak),
                read_bytes: count(last(|s| s.read_bytes)),
                write_bytes: count(last(|s| s.write_bytes)),
                samples: p.samples.len(),
            });
        }

        // Per-instance rows.
        let status_of: HashMap<u32, &str> = summary
            .map(|s| {
                s.instance_status
                    .iter()
                    .map(|i| (i.id, i.status.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let mut rows = Vec::with_capacity(self.instances.len());
        let mut stats: BTreeMap<String, StatAgg> = BTreeMap::new();
        for inst in &self.instances {
            let mut by_type: BTreeMap<String, TypeRow> = BTreeMap::new();
            let mut drops_by_reason = BTreeMap::new();
            for ((cat, ty), &v) in &inst.counters {
                let v = count(v);
                match cat {
                    Category::Drop => {
                        drops_by_reason.insert(ty.clone(), v);
                    }
                    Category::MsgOut => by_type.entry(ty.clone()).or_default().messages_sent += v,
                    Category::BytesOut => by_type.entry(ty.clone()).or_default().bytes_sent += v,
                    Category::MsgIn => {
                        by_type.entry(ty.clone()).or_default().messages_received += v
                    }
                    Category::BytesIn => by_type.entry(ty.clone()).or_default().bytes_received += v,
                    _ => {}
                }
            }
            for (name, &v) in &inst.stats {
                let s = stats.entry(name.clone()).or_insert(StatAgg {
                    instances: 0,
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                });
                s.instances += 1;
                s.sum += v;
                s.min = s.min.min(v);
                s.max = s.max.max(v);
            }
            let res = instance_res.get(&inst.id);
            rows.push(InstanceRow {
                id: inst.id,
                status: status_of
                    .get(&inst.id)
                    .map(|s| s.to_string())
                    .or_else(|| inst.end_status.clone()),
                messages_sent: by_type.values().map(|t| t.messages_sent).sum(),
                bytes_sent: by_type.values().map(|t| t.bytes_sent).sum(),
                messages_received: by_type.values().map(|t| t.messages_received).sum(),
                bytes_received: by_type.values().map(|t| t.bytes_received).sum(),
                drops: drops_by_reason.values().sum(),
                peers: inst.peers_last,
                cpu_s: res.map(|r| tidy(r.0)),
                peak_rss_kb: res.map(|r| count(r.1)),
                process: res.map(|r| r.2.clone()),
                instances_in_process: res.map(|r| r.3),
                samples: inst.samples,
                resets: inst.resets,
                last_t: inst.last_t,
                by_type,
                drops_by_reason,
            });
        }
        for s in stats.values_mut() {
            s.sum = tidy(s.sum);
        }

        // Events: annotations, faults, commands.
        let mut events: Vec<EventRow> = self
            .events
            .iter()
            .map(|((kind, text), a)| EventRow {
                kind: kind.as_str().to_string(),
                text: text.clone(),
                instances: a.instances,
                occurrences: a.occurrences,
                first_t: tidy(a.first_t),
                last_t: tidy(a.last_t),
                mean_t: tidy(a.sum_t / a.occurrences.max(1) as f64),
            })
            .collect();
        events.sort_by(|a, b| {
            a.first_t
                .total_cmp(&b.first_t)
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.text.cmp(&b.text))
        });
        let start = self
            .events
            .get(&(EventKind::Annotation, "start-experiment".to_string()))
            .map(|a| a.first_t);
        let last_command = self
            .events
            .iter()
            .filter(|((k, _), _)| *k == EventKind::Command)
            .map(|(_, a)| a.last_t)
            .reduce(f64::max);
        let duration = match (start, last_command) {
            (Some(a), Some(b)) => Some(tidy(b - a)),
            _ => None,
        };
        let experiment = ExperimentTime {
            start_experiment_t: start,
            last_command_t: last_command,
            duration_s: duration,
            duration_scenario_s: duration
                .zip(time_scale)
                .filter(|(_, s)| *s > 0.0)
                .map(|(d, s)| tidy(d / s)),
        };

        // Statuses: the runner's word, else the instances' own end events.
        let mut instance_status: BTreeMap<String, u64> = BTreeMap::new();
        match summary.filter(|s| !s.instance_status.is_empty()) {
            Some(s) => s
                .instance_status
                .iter()
                .for_each(|i| *instance_status.entry(i.status.to_string()).or_default() += 1),
            None => self.instances.iter().for_each(|i| {
                let st = i
                    .end_status
                    .clone()
                    .unwrap_or_else(|| "no end event".into());
                *instance_status.entry(st).or_default() += 1
            }),
        }
        let verdicts = summary
            .map(|s| VerdictCounts {
                total: s.verdicts.iter().filter(|v| !v.skipped).count(),
                passed: s.verdicts.iter().filter(|v| v.passed && !v.skipped).count(),
                failed: s.verdicts.iter().filter(|v| !v.passed).count(),
                failed_names: s
                    .verdicts
                    .iter()
                    .filter(|v| !v.passed)
                    .map(|v| v.name.clone())
                    .collect(),
            })
            .unwrap_or_default();

        // Declared metrics: counter rates are per scenario second from the
        // common start (scenario time 0) to the last statistics line.
        let scenario_t = plan.is_some_and(|p| !p.metrics.is_empty()) && !self.metrics.is_empty();
        let metrics = std::mem::replace(&mut self.metrics, MetricsAcc::new(1.0, vec![], ""))
            .finish(self.last_stats_t.map(|t| t.max(0.0)), grid.as_ref());

        // Time series.
        let over_time = grid.map(|g| self.over_time(&g));
        let resources = grid
            .map(|g| resource_series(&g, processes, self.wall_to_stats))
            .unwrap_or_default();

        let skipped_lines = crate::load::skipped_lines(&warnings);
        let aggregates = Aggregates {
            generator: format!("peerlab-report {}", env!("CARGO_PKG_VERSION")),
            instances_seen: self.instances.len(),
            time: self.t_range.map(|(a, b)| TimeRange {
                first_t: tidy(a),
                last_t: tidy(b),
            }),
            experiment,
            messages: Messages {
                sent: Direction {
                    messages: sent.values().map(|c| c.messages).sum(),
                    bytes: sent.values().map(|c| c.bytes).sum(),
                    by_type: sent,
                },
                received: Direction {
                    messages: received.values().map(|c| c.messages).sum(),
                    bytes: received.values().map(|c| c.bytes).sum(),
                    by_type: received,
                },
            },
            drops: Drops {
                total: drops.values().sum(),
                by_reason: drops,
            },
            stats,
            resources: Resources {
                cpu_s: tidy(procs.iter().map(|p| p.cpu_s).sum()),
                peak_rss_kb: procs.iter().map(|p| p.peak_rss_kb).max(),
                processes: procs,
            },
            instance_status,
            verdicts,
            events,
            per_instance: rows,
            over_time,
            metrics: metrics.summaries(),
            warnings: Warnings {
                total: warnings.len(),
                skipped_lines,
                listed: warnings.iter().take(LISTED_WARNINGS).cloned().collect(),
            },
        };
        Analysis {
            aggregates,
            resources,
            peers: grid.map(|g| g.gauge(&self.peers)),
            grid,
            time_scale,
            scenario_t,
            wall_to_plot: self.wall_to_stats,
            metrics,
            warnings,
        }
    }

    fn over_time(&self, g: &Grid) -> OverTime {
        let mut ot = OverTime {
            step_s: g.step(),
            t: g.times().into_iter().map(tidy).collect(),
            ..OverTime::default()
        };
        for ((cat, name), bins) in &self.series {
            let rates: Vec<f64> = g.rates(bins).into_iter().map(tidy).collect();
            let map = match cat {
                Category::MsgOut => &mut ot.messages_sent_per_s,
                Category::MsgIn => &mut ot.messages_received_per_s,
                Category::BytesOut => &mut ot.bytes_sent_per_s,
                Category::BytesIn => &mut ot.bytes_received_per_s,
                Category::Drop => &mut ot.drops_per_s,
                _ => continue,
            };
            map.insert(name.clone(), rates);
        }
        ot
    }
}

/// Per-process CPU (cores) and RSS (KiB) per grid point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSeries {
    /// One per process: (label, instances in it, cpu per point, rss per point).
    pub processes: Vec<ProcessSeries>,
}

/// One process's reduced resource series; `None` where it has no samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSeries {
    pub label: String,
    pub instances: usize,
    pub cpu_cores: Vec<Option<f64>>,
    pub rss_kb: Vec<Option<f64>>,
}

/// `k` puts the samples' wall-clock `t` on the grid's time base; CPU stays
/// in cores (CPU seconds per wall second).
fn resource_series(g: &Grid, processes: &[ProcessData], k: f64) -> ResourceSeries {
    let width = g.width;
    let mut out = Vec::new();
    for p in processes {
        if p.samples.is_empty() {
            continue;
        }
        let mut cpu = Bins::default();
        let mut rss = GaugeBins::default();
        let mut prev = 0.0;
        for s in &p.samples {
            let c = s.cpu_user_s + s.cpu_system_s;
            let bin = bin_of(s.t * k, width);
            cpu.add(bin, (c - prev).max(0.0));
            prev = c;
            rss.observe(bin, s.rss_kb);
        }
        let (first, last) = cpu.range().unwrap_or((0, 0));
        let (pa, pb) = (
            g.point_of(first as f64 * width + width / 2.0),
            g.point_of(last as f64 * width + width / 2.0),
        );
        let rates: Vec<f64> = g.rates(&cpu).into_iter().map(|r| r * k).collect();
        let gauge = g.gauge(&rss);
        let label = match p.instances.as_slice() {
            [] => format!("process {}", p.process),
            [one] => format!("instance {one}"),
            [a, .., b] => format!("instances {a}-{b}"),
        };
        out.push(ProcessSeries {
            label,
            instances: p.instances.len(),
            cpu_cores: rates
                .iter()
                .enumerate()
                .map(|(i, &r)| (i >= pa && i <= pb).then_some(r))
                .collect(),
            rss_kb: gauge.iter().map(|g| g.map(|(_, _, max)| max)).collect(),
        });
    }
    ResourceSeries { processes: out }
}

fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// The result of the analysis: the `aggregates` object and the reduced
/// series the plots need beyond it.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub aggregates: Aggregates,
    pub grid: Option<Grid>,
    pub resources: ResourceSeries,
    /// Peers known per instance: (min, mean, max) per grid point.
    pub peers: Option<Vec<Option<(f64, f64, f64)>>>,
    pub time_scale: Option<f64>,
    /// Whether `t` is in scenario seconds (a run that declares metrics was
    /// sampled on scenario time); older folders have wall-clock `t`.
    pub scenario_t: bool,
    /// Multiplies a wall-clock `t` (events: `aggregates.events`) to put it
    /// on the plots' time axis.
    pub wall_to_plot: f64,
    /// Every declared metric, headline ones first, and the CSVs.
    pub metrics: Metrics,
    /// Every warning (the aggregates list only the first few).
    pub warnings: Vec<Warning>,
}

/// `summary.json`'s `aggregates`: see docs/outputs.md.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Aggregates {
    pub generator: String,
    pub instances_seen: usize,
    pub time: Option<TimeRange>,
    pub experiment: ExperimentTime,
    pub messages: Messages,
    pub drops: Drops,
    pub stats: BTreeMap<String, StatAgg>,
    pub resources: Resources,
    pub instance_status: BTreeMap<String, u64>,
    pub verdicts: VerdictCounts,
    pub events: Vec<EventRow>,
    pub per_instance: Vec<InstanceRow>,
    pub over_time: Option<OverTime>,
    /// Every declared metric (and family member) recorded: see
    /// docs/outputs.md. Absent when the run declares none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricSummary>,
    pub warnings: Warnings,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct TimeRange {
    pub first_t: f64,
    pub last_t: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExperimentTime {
    /// Earliest `annotate start-experiment` over all instances.
    pub start_experiment_t: Option<f64>,
    /// Latest scenario command over all instances.
    pub last_command_t: Option<f64>,
    pub duration_s: Option<f64>,
    pub duration_scenario_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Messages {
    pub sent: Direction,
    pub received: Direction,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Direction {
    pub messages: u64,
    pub bytes: u64,
    pub by_type: BTreeMap<String, TypeCount>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct TypeCount {
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drops {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
}

/// A `stat/<name>`: its last value per instance, summed and bounded.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct StatAgg {
    pub instances: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resources {
    pub cpu_s: f64,
    pub peak_rss_kb: Option<u64>,
    pub processes: Vec<ProcessRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessRow {
    /// `<host>/node<NNN>/process<PPP>`.
    pub process: String,
    pub pid: Option<u32>,
    pub instances: Vec<u32>,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub samples: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VerdictCounts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub failed_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRow {
    pub kind: String,
    pub text: String,
    pub instances: u64,
    pub occurrences: u64,
    pub first_t: f64,
    pub last_t: f64,
    pub mean_t: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstanceRow {
    pub id: u32,
    pub status: Option<String>,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub drops: u64,
    /// The last `peers` gauge.
    pub peers: Option<f64>,
    /// This instance's share of its process's CPU seconds.
    pub cpu_s: Option<f64>,
    /// Its process's peak resident set (shared by `instances_in_process`).
    pub peak_rss_kb: Option<u64>,
    pub process: Option<String>,
    pub instances_in_process: Option<usize>,
    pub samples: usize,
    pub resets: usize,
    pub last_t: Option<f64>,
    pub by_type: BTreeMap<String, TypeRow>,
    pub drops_by_reason: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct TypeRow {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
}

/// Rates per second, summed over instances, at the grid's points.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OverTime {
    /// Seconds each point covers.
    pub step_s: f64,
    /// Centre time of each point.
    pub t: Vec<f64>,
    pub messages_sent_per_s: BTreeMap<String, Vec<f64>>,
    pub messages_received_per_s: BTreeMap<String, Vec<f64>>,
    pub bytes_sent_per_s: BTreeMap<String, Vec<f64>>,
    pub bytes_received_per_s: BTreeMap<String, Vec<f64>>,
    pub drops_per_s: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Warnings {
    pub total: usize,
    /// Malformed or truncated lines skipped in all files.
    pub skipped_lines: usize,
    pub listed: Vec<Warning>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, StatsSample};

    type Line<'a> = (f64, bool, &'a [(u32, f64)]);

    fn inst(id: u32, names: &[&str], lines: &[Line<'_>]) -> InstanceData {
        InstanceData {
            id,
            counter_names: names.iter().map(|s| s.to_string()).collect(),
            stats: lines
                .iter()
                .map(|(t, r, v)| StatsSample {
                    t: *t,
                    reset: *r,
                    values: v.to_vec(),
                    observations: vec![],
                })
                .collect(),
            events: vec![],
            warnings: vec![],
            observation_names: vec![],
        }
    }

    #[test]
    fn classify_names() {
        assert_eq!(classify("msg_out/a/b"), (Category::MsgOut, "a/b"));
        assert_eq!(classify("drop/duplicate"), (Category::Drop, "duplicate"));
        assert_eq!(classify("peers"), (Category::Peers, ""));
        assert_eq!(classify("stat/x"), (Category::Stat, "x"));
        assert_eq!(classify("weird"), (Category::Other, "weird"));
    }

    #[test]
    fn increments_survive_resets_and_restarts() {
        let i = inst(
            1,
            &["msg_out/a", "bytes_out/a"],
            &[
                (1.0, false, &[(0, 2.0), (1, 20.0)]),
                (2.0, false, &[(0, 5.0), (1, 50.0)]),
                (3.0, true, &[(0, 1.0), (1, 10.0)]),
                (4.0, false, &[(0, 3.0), (1, 30.0)]),
                (5.0, false, &[(0, 1.0), (1, 31.0)]),
            ],
        );
        let mut a = Aggregator::new(1.0);
        a.add_instance(&i);
        let an = a.finish(None, None, &[], vec![], 300);
        // 2 + 3, reset, 1 + 2, restart (went down): 1  => 9
        assert_eq!(
            an.aggregates.messages.sent.by_type["a"],
            TypeCount {
                messages: 9,
                bytes: 81
            }
        );
        assert_eq!(an.aggregates.per_instance[0].resets, 1);
        assert_eq!(an.aggregates.warnings.total, 1);
        assert!(
            an.aggregates.warnings.listed[0]
                .message
                .contains("msg_out/a went down")
        );
        let ot = an.aggregates.over_time.unwrap();
        assert_eq!(ot.t, vec![0.5, 1.5, 2.5, 3.5, 4.5]);
        assert_eq!(ot.messages_sent_per_s["a"], vec![2.0, 3.0, 1.0, 2.0, 1.0]);
    }

    #[test]
    fn merged_aggregators_equal_one() {
        let a1 = inst(
            1,
            &["msg_in/x", "peers"],
            &[(1.0, false, &[(0, 1.0), (1, 2.0)])],
        );
        let mut a2 = inst(
            2,
            &["msg_in/x", "drop/duplicate"],
            &[(2.0, false, &[(0, 4.0), (1, 1.0)])],
        );
        a2.events.push(Event {
            t: 0.5,
            kind: EventKind::Annotation,
            text: "start-experiment".into(),
        });
        a2.events.push(Event {
            t: 3.0,
            kind: EventKind::Command,
            text: "go".into(),
        });
        let mut one = Aggregator::new(1.0);
        one.add_instance(&a1);
        one.add_instance(&a2);
        let mut left = Aggregator::new(1.0);
        left.add_instance(&a2);
        let mut right = Aggregator::new(1.0);
        right.add_instance(&a1);
        left.merge(right);
        let x = one.finish(None, None, &[], vec![], 300).aggregates;
        let y = left.finish(None, None, &[], vec![], 300).aggregates;
        assert_eq!(x, y);
        assert_eq!(x.messages.received.messages, 5);
        assert_eq!(x.drops.total, 1);
        assert_eq!(x.experiment.duration_s, Some(2.5));
    }
}
