//! End-to-end tests of packet capture (docs/network.md, Packet capture):
//! Debian's `tcpdump -r` reads an instance's `<ID>.pcap` and counts as
//! many datagrams, each way, as the instance's own statistics, in a
//! simulated run (config key `capture`) and over real UDP (the scenario's
//! `capture {2}`), with a fault model dropping some of what is sent; a
//! capture stops whole at `capture_limit` and says so; `peerlab check`
//! refuses bad capture settings and warns about huge ones.
//!
//! Needs tcpdump (`apt-get install tcpdump`; .ci/run installs it), or
//! PEERLAB_SKIP_TCPDUMP=1 to skip these tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use peerlab_e2e::Dir;
use serde_json::Value;

fn skipped() -> bool {
    if std::env::var("PEERLAB_SKIP_TCPDUMP").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PEERLAB_SKIP_TCPDUMP=1): the packet capture tests");
        return true;
    }
    false
}

/// The datagrams `tcpdump -r` reads from `pcap`, as (source, destination)
/// in tcpdump's `a.b.c.d.port` notation.
fn tcpdump(pcap: &Path) -> Vec<(String, String)> {
    let out = Command::new("tcpdump")
        .args(["-n", "-q", "-r"])
        .arg(pcap)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run tcpdump ({e}): install it (`apt-get install tcpdump`), \
                 or set PEERLAB_SKIP_TCPDUMP=1 to skip this test"
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tcpdump -r {} failed: {stderr}",
        pcap.display()
    );
    assert!(
        !stderr.contains("truncated"),
        "tcpdump found {} cut short: {stderr}",
        pcap.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            // `12:00:01.000000 IP 10.0.0.1.7000 > 10.0.0.2.7000: UDP, length 93`
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(
                words.len() >= 5 && words[1] == "IP" && words[3] == ">" && line.contains("UDP"),
                "not an IPv4 UDP datagram: {line}"
            );
            (
                words[2].to_string(),
                words[4].trim_end_matches(':').to_string(),
            )
        })
        .collect()
}

/// The instance's last statistics line's counters.
fn last_counters(run: &Path, host: &str, id: u32) -> Value {
    let path = run.join(format!("{host}/node001/{id:05}.stats.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let last = text.lines().last().expect("a statistics line");
    serde_json::from_str::<Value>(last).expect("JSON")["counters"].clone()
}

/// Datagrams sent and received as the statistics define them: sent is
/// every `msg_out/*` less what the fault model dropped before the wire
/// (`drop/network_fault`); received is every datagram the overlay took in,
/// accepted (`msg_in/*`) or dropped for a reason of its own (`drop/*` but
/// `network_fault`).
fn counted(counters: &Value) -> (u64, u64) {
    let mut sent = 0.0;
    let mut received = 0.0;
    let mut faults = 0.0;
    for (name, value) in counters.as_object().expect("counters") {
        let v = value.as_f64().unwrap_or(0.0);
        if name.starts_with("msg_out/") {
            sent += v;
        } else if name.starts_with("msg_in/") {
            received += v;
        } else if name == "drop/network_fault" {
            faults += v;
        } else if name.starts_with("drop/") {
            received += v;
        }
    }
    ((sent - faults) as u64, received as u64)
}

/// The instance's address as tcpdump writes it (`10.0.0.2.7000`): a
/// simulated instance's (docs/network.md), or a real one's `address` event.
fn tcpdump_address(run: &Path, host: &str, id: u32) -> String {
    if host == "simulated" {
        return format!("10.0.0.{id}.7000");
    }
    let path = run.join(format!("{host}/node001/{id:05}.events.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let event = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .find(|e| e["kind"] == "address")
        .expect("an address event");
    let addr = event["text"].as_str().expect("address text");
    let (ip, port) = addr.rsplit_once(':').expect("host:port");
    format!("{ip}.{port}")
}

/// Check one instance's capture against its statistics; returns (sent, received).
fn check_instance(run: &Path, host: &str, id: u32) -> (u64, u64) {
    let pcap = run.join(format!("{host}/node001/{id:05}.pcap"));
    assert!(pcap.is_file(), "no capture {}", pcap.display());
    let me = tcpdump_address(run, host, id);
    let packets = tcpdump(&pcap);
    let sent = packets.iter().filter(|(src, _)| *src == me).count() as u64;
    let received = packets.iter().filter(|(_, dst)| *dst == me).count() as u64;
    assert_eq!(
        sent + received,
        packets.len() as u64,
        "every datagram of {id}'s capture is from or to {me}"
    );
    let counters = last_counters(run, host, id);
    assert_eq!(
        (sent, received),
        counted(&counters),
        "instance {id}: (sent, received) in its capture vs its statistics {counters:#}"
    );
    (sent, received)
}

fn gossip(community: &str, capture: &str) -> String {
    format!(
        "&module dispersy\n&module gossip\n@@ isolate_community {community}\n@@ start_session\n{capture}\
         @0 introduce_peers\n@1 set_network loss=0.25 {{2}}\n@2 publish count=3\n@8 report\n@9 stop\n"
    )
}

#[test]
fn a_simulated_capture_counts_what_the_statistics_count_and_repeats_from_its_seed() {
    if skipped() {
        return;
    }
    let dir = Dir::new("capture-sim");
    // A delay and jitter too: datagrams leave later than they are queued.
    dir.write(
        "c.scenario",
        gossip("CaptureSim", "").replace(
            "set_network loss=0.25 {2}",
            "set_network loss=0.25 delay=20ms jitter=10ms {2}",
        ),
    );
    dir.write(
        "c.conf",
        "scenario_file = c.scenario\ninstances_to_run = 5\ncapture = true\n",
    );
    let mut captures: Vec<Vec<u8>> = Vec::new();
    for _ in 0..2 {
        dir.peerlab()
            .args(["run", "c.conf", "--simulate", "--seed", "7", "--no-plots"])
            .run()
            .expect_code(0);
        let run = dir.latest_run();
        let mut total = 0;
        for id in 1..=5 {
            let (sent, received) = check_instance(&run, "simulated", id);
            assert!(sent > 0 && received > 0, "instance {id} sent and received");
            total += sent;
        }
        assert!(total > 50, "a gossip run sends more than {total} datagrams");
        captures.push(std::fs::read(run.join("simulated/node001/00002.pcap")).unwrap());
    }
    assert!(
        captures[0] == captures[1],
        "a simulated capture (virtual timestamps) repeats byte for byte from its seed"
    );
}

#[test]
fn a_real_udp_capture_of_one_instance_counts_what_its_statistics_count() {
    if skipped() {
        return;
    }
    let dir = Dir::new("capture-udp");
    dir.write("c.scenario", gossip("CaptureUdp", "@@ capture {2}\n"));
    dir.peerlab()
        .args([
            "run",
            "c.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.25",
            "--seed",
            "7",
            "--no-plots",
        ])
        .run()
        .expect_code(0);
    let run: PathBuf = dir.latest_run();
    let (sent, received) = check_instance(&run, "localhost", 2);
    assert!(sent > 0 && received > 0, "{sent} sent, {received} received");
    for id in [1, 3] {
        assert!(
            !run.join(format!("localhost/node001/{id:05}.pcap")).exists(),
            "only instance 2 was captured"
        );
    }
}

#[test]
fn peerlab_check_refuses_bad_capture_settings_at_their_line() {
    let dir = Dir::new("capture-check");
    dir.write(
        "c.scenario",
        "&module dispersy\n@@ capture now {2}\n@1 stop\n",
    );
    dir.write(
        "c.conf",
        "scenario_file = c.scenario\ninstances_to_run = 3\ncapture_limit = 10\n",
    );
    dir.peerlab()
        .args(["check", "c.conf"])
        .run()
        .expect_code(1)
        .stdout_has("bad value for `capture_limit`: expected at least 64KiB")
        .stdout_has("c.conf:3:17")
        .stdout_has("`capture` takes 0 positional arguments")
        .stdout_has("c.scenario:2:12");
}

#[test]
fn peerlab_check_warns_when_capturing_every_instance_may_fill_a_disk() {
    let dir = Dir::new("capture-size");
    dir.write("c.scenario", "&module dispersy\n@1 stop\n");
    dir.write(
        "c.conf",
        "scenario_file = c.scenario\ninstances_to_run = 2000\ncapture = true\n",
    );
    dir.peerlab()
        .args(["check", "c.conf"])
        .run()
        .expect_code(0)
        .stdout_has("`capture = true` on 2000 instances may write up to 128 GB")
        .stdout_has("c.conf:3");
    dir.write(
        "small.conf",
        "scenario_file = c.scenario\ninstances_to_run = 2000\ncapture = true\ncapture_limit = 1MB\n",
    );
    let run = dir.peerlab().args(["check", "small.conf"]).run();
    run.expect_code(0);
    assert!(!run.stdout.contains("capture-size"), "{}", run.stdout);
}

#[test]
fn a_capture_stops_at_its_limit_whole_and_says_so_and_the_run_goes_on() {
    if skipped() {
        return;
    }
    let dir = Dir::new("capture-limit");
    dir.write(
        "c.scenario",
        gossip("CaptureLimit", "").replace("@8 report\n@9 stop\n", "@40 report\n@41 stop\n"),
    );
    dir.write(
        "c.conf",
        "scenario_file = c.scenario\ninstances_to_run = 5\ncapture = true\ncapture_limit = 64KiB\n",
    );
    dir.peerlab()
        .args(["run", "c.conf", "--simulate", "--seed", "7", "--no-plots"])
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    let pcap = run.join("simulated/node001/00001.pcap");
    let size = std::fs::metadata(&pcap).unwrap().len();
    assert!(size <= 64 * 1024, "{size} bytes");
    let captured = tcpdump(&pcap).len();
    let err = std::fs::read_to_string(run.join("simulated/node001/00001.err")).unwrap();
    let (sent, received) = counted(&last_counters(&run, "simulated", 1));
    let missing = sent + received - captured as u64;
    assert!(missing > 0, "the run outgrew the limit: {err}");
    assert!(
        err.contains(&format!(
            "it reached capture_limit (65536 bytes) after {captured} datagrams: {missing} more were not written"
        )),
        "{err}"
    );
}
