//! The arithmetic of one bench measurement, over what a run folder holds:
//! the protocol window from the instances' events (the first start command
//! to the last done annotation of the [`BenchWorkload`]), the messages and
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
    /// Peers each subset sum was sent to directly.
    pub fanout: u32,
    /// First local share sent until the last instance had its total (`None`: some never had it).
    pub protocol_wall_s: Option<f64>,
    /// local-share and broadcast-share datagrams sent by all instances.
    pub messages: u64,
    pub msgs_per_s: Option<f64>,
    /// User + system CPU of the instance processes within the protocol window.
    pub cpu_s: Option<f64>,
    /// Peak resident memory, summed over the instance processes.
    pub peak_rss_mb: f64,
    pub kib_per_instance: f64,
    /// Instances that recorded their total.
    pub totals_known: u32,
    /// CPU cores other processes of this machine used on average during the
    /// run (`None` where /proc/stat cannot be read): above zero, the figures
    /// are slower than on an idle machine.
    pub other_load: Option<f64>,
    /// Every instance finished, knew its total, and every verdict passed.
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
    let window = protocol_window(input.workload, input.instances);
    let wall = window.wall();
    let messages = messages_sent(input.aggregates, input.workload.message_types);
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

/// The protocol's window over all instances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The earliest start command.
    pub start: Option<f64>,
    /// The latest done annotation, once every instance has one.
    pub end: Option<f64>,
    /// Instances with a done annotation.
    pub known: usize,
}

impl Window {
    pub fn wall(&self) -> Option<f64> {
        Some(self.end? - self.start?)
    }
}

/// First start command to last done annotation (each instance's first);
/// `end` only when every instance recorded it.
pub fn protocol_window(workload: &BenchWorkload, instances: &[InstanceData]) -> Window {
    let mut start: Option<f64> = None;
    let mut end: Option<f64> = None;
    let mut known = 0;
    for inst in instances {
        let shared = inst
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Command && e.text == workload.start_command)
            .map(|e| e.t)
            .reduce(f64::min);
        if let Some(t) = shared {
            start = Some(start.map_or(t, |s| s.min(t)));
        }
        let total = inst
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Annotation && e.text == workload.done_annotation)
            .map(|e| e.t)
            .reduce(f64::min);
        if let Some(t) = total {
            known += 1;
            end = Some(end.map_or(t, |e| e.max(t)));
        }
    }
    Window {
        start,
        end: end.filter(|_| known == instances.len() && known > 0),
        known,
    }
}

/// Messages of the given types sent by all instances (the report's totals:
/// counters restarted by a reset are added up across the reset).
pub fn messages_sent(aggregates: &Aggregates, types: &[&str]) -> u64 {
    types
        .iter()
        .filter_map(|t| aggregates.messages.sent.by_type.get(*t))
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
mod tests {
    use super::*;
    use crate::bench::workload::BENALOH;
    use peerlab_report::model::{Event, StatsSample};

    fn ev(t: f64, kind: EventKind, text: &str) -> Event {
        Event {
            t,
            kind,
            text: text.into(),
        }
    }

    fn instance(
        id: u32,
        share: f64,
        total: Option<f64>,
        msgs: &[(f64, bool, f64, f64)],
    ) -> InstanceData {
        let mut events = vec![
            ev(0.0, EventKind::Command, "start_session"),
            ev(share, EventKind::Command, "share_local"),
        ];
        if let Some(t) = total {
            events.push(ev(t, EventKind::Annotation, BENALOH.done_annotation));
        }
        events.push(ev(9.0, EventKind::Annotation, "something else"));
        InstanceData {
            id,
            counter_names: vec![
                "msg_in/local-share".into(),
                "msg_out/local-share".into(),
                "msg_out/broadcast-share".into(),
            ],
            stats: msgs
                .iter()
                .map(|&(t, reset, local, bcast)| StatsSample {
                    t,
                    reset,
                    values: vec![(0, 1000.0), (1, local), (2, bcast)],
                    observations: Vec::new(),
                })
                .collect(),
            events,
            warnings: Vec::new(),
            observation_names: Vec::new(),
        }
    }

    fn res(t: f64, cpu: f64, rss: f64) -> ResourceSample {
        ResourceSample {
            t,
            pid: Some(1),
            cpu_user_s: cpu * 0.75,
            cpu_system_s: cpu * 0.25,
            rss_kb: rss,
            read_bytes: 0.0,
            write_bytes: 0.0,
        }
    }

    fn process(samples: Vec<ResourceSample>) -> ProcessData {
        ProcessData {
            samples,
            ..Default::default()
        }
    }

    #[test]
    fn the_window_runs_from_the_first_share_to_the_last_total() {
        let insts = [
            instance(1, 1.002, Some(1.5), &[]),
            instance(2, 1.001, Some(1.75), &[]),
            instance(3, 1.010, Some(1.25), &[]),
        ];
        let w = protocol_window(&BENALOH, &insts);
        assert_eq!(w.start, Some(1.001));
        assert_eq!(w.end, Some(1.75));
        assert_eq!(w.known, 3);
        assert!((w.wall().unwrap() - 0.749).abs() < 1e-9);
        // One instance never knew its total: no end, and it is counted.
        let insts = [
            instance(1, 1.0, Some(1.5), &[]),
            instance(2, 1.0, None, &[]),
        ];
        let w = protocol_window(&BENALOH, &insts);
        assert_eq!((w.end, w.known, w.wall()), (None, 1, None));
    }

    #[test]
    fn messages_add_the_last_sample_of_every_counter_segment() {
        let insts = [
            instance(
                1,
                1.0,
                None,
                &[(1.0, false, 5.0, 10.0), (2.0, false, 9.0, 20.0)],
            ),
            // Reset at t=2: 4+8 before it, 1+2 after.
            instance(
                2,
                1.0,
                None,
                &[
                    (1.0, false, 4.0, 8.0),
                    (2.0, true, 0.0, 0.0),
                    (3.0, false, 1.0, 2.0),
                ],
            ),
            instance(3, 1.0, None, &[]),
        ];
        let agg = aggregate(&insts, &[]);
        assert_eq!(messages_sent(&agg, BENALOH.message_types), 29 + 12 + 3);
    }

    #[test]
    fn cpu_is_interpolated_between_samples() {
        let s = [
            res(0.0, 1.0, 100.0),
            res(1.0, 2.0, 300.0),
            res(2.0, 4.0, 200.0),
        ];
        assert!((cpu_between(&s, 0.5, 1.5) - 1.5).abs() < 1e-9);
        assert!((cpu_between(&s, -1.0, 9.0) - 3.0).abs() < 1e-9);
        assert_eq!(cpu_between(&[], 0.0, 1.0), 0.0);
        assert_eq!(peak_rss_kb(&aggregate(&[], &[process(s.to_vec())])), 300.0);
    }

    #[test]
    fn a_measurement_sums_processes_and_judges_correctness() {
        let insts = [
            instance(1, 1.0, Some(2.0), &[(3.0, false, 1.0, 10.0)]),
            instance(2, 1.0, Some(3.0), &[(3.0, false, 1.0, 10.0)]),
        ];
        let procs = [
            process(vec![res(0.0, 0.0, 1024.0), res(4.0, 4.0, 2048.0)]),
            process(vec![res(0.0, 0.0, 1024.0), res(4.0, 2.0, 1024.0)]),
        ];
        let aggregates = aggregate(&insts, &procs);
        let input = MeasureInput {
            workload: &BENALOH,
            peers: 2,
            processes: 2,
            shared_verification: false,
            fanout: 1,
            passed: true,
            instances: &insts,
            processes_data: &procs,
            aggregates: &aggregates,
            run_dir: Path::new("/tmp/run"),
        };
        let m = measure(&input);
        assert_eq!(m.protocol_wall_s, Some(2.0));
        assert_eq!(m.messages, 22);
        assert_eq!(m.msgs_per_s, Some(11.0));
        assert_eq!(m.cpu_s, Some(3.0));
        assert_eq!(m.peak_rss_mb, 3.0);
        assert_eq!(m.kib_per_instance, 1536.0);
        assert!(m.correct);
        let json: serde_json::Value = serde_json::to_value(&m).unwrap();
        for field in [
            "peers",
            "protocol_wall_s",
            "messages",
            "msgs_per_s",
            "cpu_s",
            "peak_rss_mb",
            "correct",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        // Failed verdicts or a missing total make it incorrect.
        assert!(
            !measure(&MeasureInput {
                passed: false,
                ..input
            })
            .correct
        );
        let one_short = [insts[0].clone(), instance(2, 1.0, None, &[])];
        let aggregates = aggregate(&one_short, &procs);
        let m = measure(&MeasureInput {
            instances: &one_short,
            aggregates: &aggregates,
            ..input
        });
        assert!(!m.correct);
        assert_eq!(
            (m.protocol_wall_s, m.cpu_s, m.totals_known),
            (None, None, 1)
        );
    }
}
