//! Tests of [`super`]: the window, messages, CPU and memory of a bench
//! measurement, over instances built in memory and over a synthetic run
//! folder read through the report's loader, where the window from the
//! workload's declared `done` observation is compared with the window the
//! bench measured before workloads were declared (from a done annotation).
//! A made-up ring protocol stands in for a real plugin.

use super::*;
use crate::bench::workload::tests::ring;
use peerlab_report::model::{Event, StatsSample};
use peerlab_run::metrics::Histogram;

fn ev(t: f64, kind: EventKind, text: &str) -> Event {
    Event {
        t,
        kind,
        text: text.into(),
    }
}

fn hist(v: f64) -> Histogram {
    let mut h = Histogram::new();
    h.record(v).unwrap();
    h
}

/// An instance that ran the start command at `start` and was done at
/// `done` (its `ring.ring_time` observation recorded in the statistics line
/// of the next whole second), with message counters `msgs`: (t, reset,
/// pings sent, pongs sent).
fn instance(
    id: u32,
    start: f64,
    done: Option<f64>,
    msgs: &[(f64, bool, f64, f64)],
) -> InstanceData {
    let events = vec![
        ev(0.0, EventKind::Command, "start_session"),
        ev(start, EventKind::Command, "ping_all"),
        ev(9.0, EventKind::Annotation, "something else"),
    ];
    let mut stats: Vec<StatsSample> = msgs
        .iter()
        .map(|&(t, reset, ping, pong)| StatsSample {
            t,
            reset,
            values: vec![(0, 1000.0), (1, ping), (2, pong)],
            observations: Vec::new(),
        })
        .collect();
    if let Some(d) = done {
        stats.push(StatsSample {
            t: d.ceil(),
            reset: false,
            values: Vec::new(),
            observations: vec![(0, hist(d - start))],
        });
        stats.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
    InstanceData {
        id,
        counter_names: vec![
            "msg_in/ping".into(),
            "msg_out/ping".into(),
            "msg_out/pong".into(),
        ],
        stats,
        events,
        warnings: Vec::new(),
        observation_names: vec!["ring.ring_time".into()],
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
fn the_window_runs_from_the_first_start_to_the_last_done() {
    let insts = [
        instance(1, 1.002, Some(1.5), &[]),
        instance(2, 1.001, Some(1.75), &[]),
        instance(3, 1.010, Some(1.25), &[]),
    ];
    let w = protocol_window(&ring(), &insts, 1.0);
    assert_eq!(w.start, Some(1.001));
    assert!((w.end.unwrap() - 1.75).abs() < 1e-9, "{w:?}");
    assert_eq!(w.known, 3);
    assert!((w.wall().unwrap() - 0.749).abs() < 1e-9);
    // One instance was never done: no end, and it is counted.
    let insts = [
        instance(1, 1.0, Some(1.5), &[]),
        instance(2, 1.0, None, &[]),
    ];
    let w = protocol_window(&ring(), &insts, 1.0);
    assert_eq!((w.end, w.known, w.wall()), (None, 1, None));
    // Observations are scenario seconds; events are wall seconds.
    let insts = [instance(1, 1.0, Some(1.5), &[])];
    let w = protocol_window(&ring(), &insts, 2.0);
    assert_eq!(w.end, Some(2.0));
    // Another module's observation of the same name is not this one's.
    let mut other = instance(1, 1.0, Some(1.5), &[]);
    other.observation_names = vec!["other.ring_time".into()];
    assert_eq!(protocol_window(&ring(), &[other], 1.0).known, 0);
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
    assert_eq!(messages_sent(&agg, &ring().message_types), 29 + 12 + 3);
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
    let workload = ring();
    let input = MeasureInput {
        workload: &workload,
        peers: 2,
        processes: 2,
        shared_verification: false,
        fanout: 1,
        time_scale: 1.0,
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
    // Failed verdicts or an instance never done make it incorrect.
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

/// The window as `peerlab bench` measured it before workloads were
/// declared by plugins (host/src/bench/measure.rs up to b66143a): the
/// earliest start command to the latest first done annotation; kept here
/// as the reference the declared-metric window is compared with.
fn window_before(instances: &[InstanceData], start: &str, annotation: &str) -> Window {
    let mut s: Option<f64> = None;
    let mut e: Option<f64> = None;
    let mut known = 0;
    for inst in instances {
        let first = |kind: EventKind, text: &str| {
            inst.events
                .iter()
                .filter(|ev| ev.kind == kind && ev.text == text)
                .map(|ev| ev.t)
                .reduce(f64::min)
        };
        if let Some(t) = first(EventKind::Command, start) {
            s = Some(s.map_or(t, |x| x.min(t)));
        }
        if let Some(t) = first(EventKind::Annotation, annotation) {
            known += 1;
            e = Some(e.map_or(t, |x| x.max(t)));
        }
    }
    Window {
        start: s,
        end: e.filter(|_| known == instances.len() && known > 0),
        known,
    }
}

/// A run folder as the instance runtime writes it for a plugin that, like
/// the first declared workload, both annotates and observes the moment it
/// is done: each instance's events (the start command, a resend of it, the
/// done annotation) and statistics (message counters every second, the
/// observation in the line after it was recorded, a final line).
fn write_folder(dir: &Path, n: u32) {
    use peerlab_run::layout::InstanceFile;
    use peerlab_run::{EventLine, StatsLine};
    use std::collections::BTreeMap;
    for id in 1..=n {
        let f = f64::from(id);
        let start = 1.0 + 0.0003 * f;
        // Up to 2.4 s after the start: beyond 2.048 s the histogram keeps 2 ms steps.
        let done = start + 0.4 + 0.0137 * f * f / 7.0 + 0.0001234 * f;
        let mut events = String::new();
        let mut line = |t: f64, kind: &'static str, text: Option<&str>, callback: Option<&str>| {
            let mut e = EventLine::new(t, kind);
            e.text = text.map(Into::into);
            e.callback = callback.map(Into::into);
            events.push_str(&serde_json::to_string(&e).unwrap());
            events.push('\n');
        };
        line(0.0, "command", None, Some("start_session"));
        line(start, "command", None, Some("ping_all"));
        line(done, "annotation", Some("ring: done"), None);
        line(start + 3.0, "command", None, Some("ping_all"));
        let mut stats = String::new();
        for t in 1..=6 {
            let t = f64::from(t);
            let sent = (t * 3.0 * f).floor();
            let counters: BTreeMap<String, f64> = [
                ("msg_out/ping".to_string(), sent),
                ("msg_out/pong".to_string(), sent * 2.0),
                ("msg_out/other".to_string(), 1000.0),
            ]
            .into();
            let mut observations = BTreeMap::new();
            if done > t - 1.0 && done <= t {
                let mut h = Histogram::new();
                h.record(done - start).unwrap();
                observations.insert("ring.ring_time".to_string(), h);
            }
            let l = StatsLine {
                t,
                reset: false,
                counters: &counters,
                observations,
            };
            stats.push_str(&serde_json::to_string(&l).unwrap());
            stats.push('\n');
        }
        let write = |kind: InstanceFile, text: &str| {
            let path = dir.join(kind.rel("localhost", 1, id));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(InstanceFile::Events, &events);
        write(InstanceFile::Stats, &stats);
    }
}

#[test]
fn the_declared_window_is_the_window_bench_measured_before() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    write_folder(dir.path(), n);
    let (instances, processes) = crate::bench::load_run(dir.path()).unwrap();
    assert_eq!(instances.len(), n as usize);
    let before = window_before(&instances, "ping_all", "ring: done");
    let now = protocol_window(&ring(), &instances, 1.0);
    assert_eq!(now.start, before.start, "the same start");
    assert_eq!((now.known, before.known), (n as usize, n as usize));
    let (a, b) = (now.end.unwrap(), before.end.unwrap());
    // The observation is kept to 3 significant digits of milliseconds.
    assert!(
        (a - b).abs() <= 0.001 + 0.001 * (b - now.start.unwrap()),
        "end {a} now, {b} before"
    );
    let (wa, wb) = (now.wall().unwrap(), before.wall().unwrap());
    assert!((wa - wb).abs() / wb < 0.002, "wall {wa} now, {wb} before");
    // The message count reads the same counters as before: ping + pong.
    let agg = aggregate(&instances, &processes);
    let expected: u64 = (1..=n).map(|f| 18 * u64::from(f) * 3).sum();
    assert_eq!(messages_sent(&agg, &ring().message_types), expected);
    // One instance that never recorded its observation: no end, as before.
    let mut short = instances.clone();
    short[3]
        .stats
        .iter_mut()
        .for_each(|s| s.observations.clear());
    short[3].events.retain(|e| e.kind != EventKind::Annotation);
    let (now, before) = (
        protocol_window(&ring(), &short, 1.0),
        window_before(&short, "ping_all", "ring: done"),
    );
    assert_eq!((now.end, now.known), (before.end, before.known));
    assert_eq!(now.known, n as usize - 1);
}
