//! The arithmetic of one bench measurement, over what a run folder holds:
//! the protocol window from the instances' events and statistics (the first
//! start command of the [`BenchWorkload`] to the moment the last instance
//! was done: its own first start command plus its `done` observation), the
//! messages of the workload's types and
//! peak memory from the report's aggregation (its reset-aware counter
//! totals and per-process peaks, [`peerlab_report::analyse`]), and the CPU
//! within the window from the processes' resources samples.
//!
//! Must not: read files or run anything ([`super`] reads the folder), or
//! total counters itself (that is the report's).

use std::path::Path;

use peerlab_report::analyse::{Aggregates, Aggregator};
use peerlab_report::model::{EventKind, InstanceData, ProcessData, ResourceSample};
use serde::Serialize;

use super::workload::BenchWorkload;

/// One measured run: the fields of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub peers: u32,
    /// OS processes the instances ran in.
    pub processes: u32,
    /// Whether the processes shared signature verifications (the pool).
    pub shared_verification: bool,
    /// Peers each broadcast was sent to directly (the workload's fanout
    /// config key; 0 when it has none).
    pub fanout: u32,
    /// First start command until the last instance was done (`None`: some never were).
    pub protocol_wall_s: Option<f64>,
    /// Datagrams of the workload's message types sent by all instances.
    pub messages: u64,
    pub msgs_per_s: Option<f64>,
    /// User + system CPU of the instance processes within the protocol window.
    pub cpu_s: Option<f64>,
    /// Peak resident memory, summed over the instance processes.
    pub peak_rss_mb: f64,
    pub kib_per_instance: f64,
    /// Instances that were done (recorded the workload's `done` observation;
    /// the JSON field keeps the name users know).
    pub totals_known: u32,
    /// CPU cores other processes of this machine used on average during the
    /// run (`None` where /proc/stat cannot be read): above zero, the figures
    /// are slower than on an idle machine.
    pub other_load: Option<f64>,
    /// Every instance finished, was done, and every verdict passed.
    pub correct: bool,
    /// Where the run's files are (deleted unless kept).
    pub run_dir: String,
}

/// The report's aggregates of a run's instances and processes (no time
/// series are kept beyond what the aggregates hold).
pub fn aggregate(instances: &[InstanceData], processes: &[ProcessData]) -> Aggregates {
    let mut agg = Aggregator::new(1.0);
    for inst in instances {
        agg.add_instance(inst);
    }
    agg.finish(None, None, processes, Vec::new(), 300)
        .aggregates
}

/// What [`measure`] reads.
pub struct MeasureInput<'a> {
    pub workload: &'a BenchWorkload,
    pub peers: u32,
    pub processes: u32,
    pub shared_verification: bool,
    pub fanout: u32,
    /// The run's `--time-scale` (events are in wall seconds, observations
    /// in scenario seconds).
    pub time_scale: f64,
    /// Every instance finished and every verdict passed.
    pub passed: bool,
    pub instances: &'a [InstanceData],
    pub processes_data: &'a [ProcessData],
    /// [`aggregate`] of `instances` and `processes_data`.
    pub aggregates: &'a Aggregates,
    pub run_dir: &'a Path,
}

/// The figures of one run, from its files.
pub fn measure(input: &MeasureInput<'_>) -> Measurement {
    let window = protocol_window(input.workload, input.instances, input.time_scale);
    let wall = window.wall();
    let messages = messages_sent(input.aggregates, &input.workload.message_types);
    let cpu = match (window.start, window.end) {
        (Some(a), Some(b)) => Some(
            input
                .processes_data
                .iter()
                .map(|p| cpu_between(&p.samples, a, b))
                .sum(),
        ),
        _ => None,
    };
    let peak_kb = peak_rss_kb(input.aggregates);
    let known = window.known as u32;
    Measurement {
        peers: input.peers,
        processes: input.processes,
        shared_verification: input.shared_verification,
        fanout: input.fanout,
        protocol_wall_s: wall.map(round3),
        messages,
        msgs_per_s: wall
            .filter(|w| *w > 0.0)
            .map(|w| (messages as f64 / w).round()),
        cpu_s: cpu.map(round3),
        peak_rss_mb: round3(peak_kb / 1024.0),
        kib_per_instance: round3(peak_kb / f64::from(input.peers.max(1))),
        totals_known: known,
        other_load: None,
        correct: input.passed && known == input.peers,
        run_dir: input.run_dir.display().to_string(),
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The protocol's window over all instances (times as the events file
/// has them: seconds since the start of the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The earliest start command.
    pub start: Option<f64>,
    /// The moment the last instance was done, once every instance was.
    pub end: Option<f64>,
    /// Instances that were done.
    pub known: usize,
}

impl Window {
    pub fn wall(&self) -> Option<f64> {
        Some(self.end? - self.start?)
    }
}

/// First start command to the moment the last instance was done; `end`
/// only when every instance was. An instance was done at its own first
/// start command plus the first `done` observation it recorded (scenario
/// seconds, times `time_scale` in the events' seconds); one that recorded
/// none, or never ran the start command, was not done.
///
/// The observation is kept to the millisecond (peerlab-run's histograms:
/// 3 significant digits of milliseconds), so `end` is within 1 ms (or 0.1%)
/// of the moment the instance recorded it.
pub fn protocol_window(
    workload: &BenchWorkload,
    instances: &[InstanceData],
    time_scale: f64,
) -> Window {
    let done = workload.done_metric();
    let mut start: Option<f64> = None;
    let mut end: Option<f64> = None;
    let mut known = 0;
    for inst in instances {
        let started = inst
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Command && e.text == workload.start_command())
            .map(|e| e.t)
            .reduce(f64::min);
        if let Some(t) = started {
            start = Some(start.map_or(t, |s| s.min(t)));
        }
        if let (Some(s), Some(took)) = (started, first_observation(inst, &done)) {
            known += 1;
            let t = s + took * time_scale;
            end = Some(end.map_or(t, |e| e.max(t)));
        }
    }
    Window {
        start,
        end: end.filter(|_| known == instances.len() && known > 0),
        known,
    }
}

/// The first sample of observation `name` an instance recorded (the
/// smallest of the first statistics line that has any).
pub fn first_observation(inst: &InstanceData, name: &str) -> Option<f64> {
    let index = inst.observation_names.iter().position(|n| n == name)? as u32;
    inst.stats.iter().find_map(|s| {
        s.observations
            .iter()
            .find(|(i, h)| *i == index && !h.is_empty())
            .map(|(_, h)| h.min())
    })
}

/// Messages of the given types sent by all instances (the report's totals:
/// counters restarted by a reset are added up across the reset).
pub fn messages_sent(aggregates: &Aggregates, types: &[String]) -> u64 {
    types
        .iter()
        .filter_map(|t| aggregates.messages.sent.by_type.get(t.as_str()))
        .map(|c| c.messages)
        .sum()
}

/// Peak resident memory in KiB, summed over the processes (each one's highest sample).
pub fn peak_rss_kb(aggregates: &Aggregates) -> f64 {
    aggregates
        .resources
        .processes
        .iter()
        .map(|p| p.peak_rss_kb as f64)
        .sum()
}

/// CPU seconds (user + system) a process used between `t0` and `t1`,
/// interpolating linearly between its samples.
pub fn cpu_between(samples: &[ResourceSample], t0: f64, t1: f64) -> f64 {
    let cpu = |t: f64| -> Option<f64> {
        let total = |s: &ResourceSample| s.cpu_user_s + s.cpu_system_s;
        let first = samples.first()?;
        if t <= first.t {
            return Some(total(first));
        }
        for w in samples.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if t <= b.t {
                let f = if b.t > a.t {
                    (t - a.t) / (b.t - a.t)
                } else {
                    1.0
                };
                return Some(total(a) + f * (total(b) - total(a)));
            }
        }
        samples.last().map(total)
    };
    match (cpu(t0), cpu(t1)) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    }
}

#[cfg(test)]
#[path = "measure_tests.rs"]
mod tests;
