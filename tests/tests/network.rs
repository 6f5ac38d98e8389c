//! End-to-end tests of the network model (docs/network.md): one scenario
//! with a 3-region topology and bandwidth limits, run simulated and over
//! real UDP. The `netprobe` plugin measures one-way latency per pair of
//! regions (unsigned probes stamped with their send time) and the time a
//! burst of datagrams takes through a 1 Mbit/s upload or download link;
//! both must agree with the configured model (simulated: exactly; UDP:
//! latency within 1 ms, transfer time within 10%). And `peerlab check`
//! refuses bad network values at their file:line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use peerlab_e2e::Dir;
use serde_json::Value;

/// The UDP test measures real latency to 1 ms: it runs alone (the write
/// side), the other tests of this file beside each other (the read side),
/// however many test threads there are.
static TIMING: RwLock<()> = RwLock::new(());

fn beside_others() -> RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    TIMING.write().unwrap_or_else(|e| e.into_inner())
}

/// One-way latency in ms, row = from, column = to (asymmetric on purpose:
/// b to c is 40, c to b is 35).
const MATRIX: &str = "\
# one-way latency in milliseconds
from\\to,a,b,c
a,5,20,30
b,20,8,40
c,30,35,12
";

fn configured_ms(from: usize, to: usize) -> f64 {
    [[5.0, 20.0, 30.0], [20.0, 8.0, 40.0], [30.0, 35.0, 12.0]][from][to]
}

/// Instances 1..6 round robin: 1 a, 2 b, 3 c, 4 a, 5 b, 6 c.
fn region(id: u64) -> usize {
    ((id - 1) % 3) as usize
}

const SCENARIO: &str = "\
&module dispersy
&module netprobe
@@ isolate_community NetProbe
@0 start_session
@1 ping
@2 ping
@3 ping
@3.5 ping
@4 set_network up=1Mbit {1}
@4 set_network down=1Mbit {5}
@5 burst 4 count=50 size=1000 {1}
@5 burst 5 count=50 size=1000 {2}
@8 stop
";

const BURST: f64 = 50.0;
const RATE: f64 = 1e6;

fn write_experiment(dir: &Dir, extra: &str) {
    dir.write("regions.csv", MATRIX);
    dir.write("n.scenario", SCENARIO);
    dir.write(
        "n.conf",
        format!(
            "experiment_name = net\nscenario_file = n.scenario\ninstances_to_run = 6\n\
             topology = regions.csv\nseed = 3\n{extra}"
        ),
    );
}

/// (from, seq, sent, at) of every probe instance `id` received.
fn probes(run: &Path, host: &str, id: u64) -> Vec<(u64, u64, f64, f64)> {
    let out = std::fs::read_to_string(run.join(format!("{host}/node001/{id:05}.out"))).unwrap();
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l
                .strip_prefix("netprobe: probe from ")?
                .split(' ')
                .collect();
            // A seq K sent T1 at T2 bytes B
            Some((
                w[0].parse().ok()?,
                w[2].parse().ok()?,
                w[4].parse().ok()?,
                w[6].parse().ok()?,
            ))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measured one-way latencies (ms) per (from region, to region): each
/// ping's receive time minus its send time.
fn latencies(run: &Path, host: &str) -> BTreeMap<(usize, usize), Vec<f64>> {
    let mut by_pair: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for to in 1..=6u64 {
        for (from, _, sent, at) in probes(run, host, to) {
            if sent < 4.0 {
                by_pair
                    .entry((region(from), region(to)))
                    .or_default()
                    .push((at - sent) * 1000.0);
            }
        }
    }
    by_pair
}

/// Datagram bytes of one burst probe: what instance `id` sent as probes
/// after t = 4 (its last statistics line minus the one at t = 4), per probe.
fn burst_datagram_bytes(run: &Path, host: &str, id: u64) -> f64 {
    let text =
        std::fs::read_to_string(run.join(format!("{host}/node001/{id:05}.stats.jsonl"))).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |pred: &dyn Fn(f64) -> bool| {
        lines
            .iter()
            .rfind(|l| pred(l["t"].as_f64().unwrap()))
            .map(|l| {
                let c = &l["counters"];
                (
                    c["bytes_out/probe"].as_f64().unwrap_or(0.0),
                    c["msg_out/probe"].as_f64().unwrap_or(0.0),
                )
            })
            .unwrap()
    };
    let (b0, m0) = at(&|t| t <= 4.5);
    let (b1, m1) = at(&|_| true);
    assert_eq!(m1 - m0, BURST, "instance {id} sent the burst: {text}");
    (b1 - b0) / (m1 - m0)
}

/// Time (ms) from the burst's send to the last probe's arrival, less the
/// link's latency: the time the 1 Mbit/s link took.
fn transfer_ms(run: &Path, host: &str, from: u64, to: u64) -> f64 {
    let burst: Vec<_> = probes(run, host, to)
        .into_iter()
        .filter(|p| p.0 == from && p.2 >= 4.0)
        .collect();
    assert_eq!(
        burst.len(),
        BURST as usize,
        "every probe of the burst arrived"
    );
    let sent = burst[0].2;
    let last = burst.iter().map(|p| p.3).fold(f64::MIN, f64::max);
    (last - sent) * 1000.0 - configured_ms(region(from), region(to))
}

fn check_run(run: &Path, host: &str, latency_tolerance_ms: f64, rate_tolerance: f64) {
    let by_pair = latencies(run, host);
    assert_eq!(
        by_pair.len(),
        9,
        "every pair of regions measured: {by_pair:?}"
    );
    for (&(a, b), samples) in &by_pair {
        // The smallest sample: the machine's scheduler only ever adds
        // delay (a loaded machine wakes a process late), the model's
        // latency is the floor under every sample. In simulation every
        // sample is the same.
        let m = samples.iter().copied().fold(f64::MAX, f64::min);
        let want = configured_ms(a, b);
        eprintln!(
            "{host}: region {a} to {b}: configured {want} ms, smallest {m:.4} ms, median {:.4} ms of {}",
            median(samples.clone()),
            samples.len()
        );
        assert!(
            (m - want).abs() <= latency_tolerance_ms,
            "{host}: region {a} to {b}: measured {m:.4} ms (median {:.4}, samples {samples:?}), configured {want} ms",
            median(samples.clone())
        );
    }
    // Upload: 1 to 4 through 1's 1 Mbit/s upload link; download: 2 to 5
    // through 5's 1 Mbit/s download link.
    for (from, to) in [(1, 4), (2, 5)] {
        let bytes = burst_datagram_bytes(run, host, from);
        let want = BURST * bytes * 8.0 / RATE * 1000.0;
        let got = transfer_ms(run, host, from, to);
        eprintln!(
            "{host}: {from} to {to}: {BURST} x {bytes} bytes through 1 Mbit/s: {got:.3} ms, size/rate {want:.3} ms"
        );
        assert!(
            (got - want).abs() <= want * rate_tolerance,
            "{host}: {BURST} datagrams of {bytes} bytes from {from} to {to} took {got:.3} ms through 1 Mbit/s; size/rate is {want:.3} ms"
        );
    }
    let events =
        std::fs::read_to_string(run.join(format!("{host}/node001/00001.events.jsonl"))).unwrap();
    assert!(
        events.contains(r#""kind":"network","text":"group=a up=unlimited down=unlimited""#),
        "the start records the instance's group: {events}"
    );
    assert!(
        events.contains(r#""kind":"network","text":"group=a up=1Mbit down=unlimited""#),
        "set_network up= is recorded: {events}"
    );
}

#[test]
fn a_three_region_topology_with_bandwidth_limits_is_exact_in_simulation() {
    let _timing = beside_others();
    let dir = Dir::new("net-topology-sim");
    write_experiment(&dir, "network = simulated\n");
    dir.peerlab()
        .args(["run", "n.conf", "--no-plots"])
        .run()
        .expect_code(0);
    // Virtual time: exact (to the microsecond; the outputs print nanoseconds).
    check_run(&dir.latest_run(), "simulated", 1e-3, 1e-6);
}

#[test]
fn a_three_region_topology_with_bandwidth_limits_holds_over_udp() {
    let _timing = alone();
    let dir = Dir::new("net-topology-udp");
    // One process: every instance reads the same clock.
    write_experiment(&dir, "instances_per_process = 6\n");
    dir.peerlab()
        .args(["run", "n.conf", "--no-plots"])
        .run()
        .expect_code(0);
    check_run(&dir.latest_run(), "localhost", 1.0, 0.10);
}

#[test]
fn check_refuses_bad_network_values_at_their_line() {
    let _timing = beside_others();
    let dir = Dir::new("net-check");
    dir.write("regions.csv", "from\\to,a,b\na,5,20\nb,20,\n");
    dir.write(
        "n.scenario",
        "&module dispersy\n@0 start_session\n@1 set_network up=-1Mbit\n@2 set_network down=fast\n@3 stop\n",
    );
    dir.write(
        "n.conf",
        "scenario_file = n.scenario\ninstances_to_run = 2\ntopology = regions.csv\nnetwork_up = -5Mbit\n",
    );
    let run = dir.peerlab().args(["check", "n.conf"]).run();
    run.expect_code(1)
        .stdout_has("regions.csv:3")
        .stdout_has("no latency from `b` to `b`")
        .stdout_has("n.conf:4")
        .stdout_has("a bandwidth cannot be negative")
        .stdout_has("n.scenario:3")
        .stdout_has("n.scenario:4");

    dir.write(
        "w.conf",
        "scenario_file = s.scenario\ninstances_to_run = 2\ntopology = world\ntopology_assign = europe:0.5, mars:0.5\n",
    );
    dir.write("s.scenario", "@0 echo hi\n");
    dir.peerlab()
        .args(["check", "w.conf"])
        .run()
        .expect_code(1)
        .stdout_has("w.conf:4")
        .stdout_has("group `mars`");
}

#[test]
fn a_full_upload_queue_drops_and_counts_what_does_not_fit() {
    let _timing = beside_others();
    let dir = Dir::new("net-queue");
    dir.write(
        "q.scenario",
        "&module dispersy\n&module netprobe\n@@ isolate_community NetQueue\n@0 start_session\n\
         @1 burst 2 count=50 size=1000 {1}\n@3 stop\n",
    );
    // 1 Mbit/s up, 5 kB of queue: datagrams of 1043 bytes handed over at
    // once fit while the bytes waiting and the next stay within 5000: four
    // (the first goes on an idle link), and the other 46 are dropped.
    dir.write(
        "q.conf",
        "scenario_file = q.scenario\ninstances_to_run = 2\nnetwork = simulated\nseed = 1\n\
         network_up = 1Mbit\nnetwork_queue = 5kB\n",
    );
    dir.peerlab()
        .args(["run", "q.conf", "--no-plots"])
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    let got = probes(&run, "simulated", 2).len();
    let stats = std::fs::read_to_string(run.join("simulated/node001/00001.stats.jsonl")).unwrap();
    let last: Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    let dropped = last["counters"]["drop/queue_full"].as_f64().unwrap();
    let bytes = last["counters"]["bytes_out/probe"].as_f64().unwrap()
        / last["counters"]["msg_out/probe"].as_f64().unwrap();
    let fit = 1 + ((5000.0 - bytes) / bytes).floor() as usize;
    assert_eq!(got, fit, "probes of {bytes} bytes through a 5 kB queue");
    assert_eq!(
        dropped as usize,
        50 - got,
        "the rest counted as drop/queue_full"
    );
}
