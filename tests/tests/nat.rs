//! End-to-end tests of NATs (the config keys `nat` and `nat_timeout`,
//! docs/network.md, NAT): over real UDP an instance behind a restricted
//! NAT drops an unsolicited datagram and counts it, and takes one from a
//! peer it punctured towards; in simulation, members introduced by the
//! walker meet through a puncture behind cone NATs and not behind
//! symmetric ones; `peerlab check` refuses an unknown NAT type at its line.

use std::path::Path;

use peerlab_e2e::Dir;
use serde_json::Value;

/// The last statistics line's counters of instance `id`.
fn counters(run: &Path, host: &str, id: u32) -> Value {
    let path = run.join(format!("{host}/node001/{id:05}.stats.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let last = text.lines().last().expect("a statistics line");
    let line: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{last}: {e}"));
    line["counters"].clone()
}

fn count(c: &Value, name: &str) -> u64 {
    c[name].as_f64().unwrap_or(0.0) as u64
}

fn events(run: &Path, host: &str, id: u32) -> String {
    std::fs::read_to_string(run.join(format!("{host}/node001/{id:05}.events.jsonl"))).unwrap()
}

/// Two free consecutive UDP ports on 127.0.0.1 (searched from a place of
/// this process's own: tests run in parallel).
fn free_port_pair() -> u16 {
    let start = 30000 + (std::process::id() % 15000) as u16 * 2;
    (start..start.saturating_add(4000))
        .step_by(2)
        .find(|&b| (b..b + 2).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()))
        .expect("two free consecutive UDP ports")
}

#[test]
fn over_udp_a_restricted_nat_drops_an_unsolicited_datagram_and_takes_a_punctured_one() {
    let dir = Dir::new("nat-udp");
    let base = free_port_pair();
    let (one, two) = (base, base + 1);
    // Instance 1 is public; instance 2 sits behind a port-restricted cone.
    // 1 walks to 2 before 2 ever sent to 1: filtered. 2 walks to 1 (its
    // NAT now lets 1 in), then 1 walks to 2 again: answered.
    dir.write(
        "n.scenario",
        format!(
            "&module dispersy\n@@ isolate_community NatUdp\n@0 start_session\n\
             @0 set_walker enabled=false\n\
             @1 walk_to 127.0.0.1:{two} {{1}}\n\
             @3 walk_to 127.0.0.1:{one} {{2}}\n\
             @5 walk_to 127.0.0.1:{two} {{1}}\n\
             @7 stop\n"
        ),
    );
    dir.write(
        "n.conf",
        format!(
            "scenario_file = n.scenario\ninstances_to_run = 2\ninstance_port_base = {base}\n\
             nat = port_restricted_cone {{2}}\n"
        ),
    );
    dir.peerlab()
        .args(["run", "n.conf", "--time-scale", "0.2", "--no-plots"])
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    let c2 = counters(&run, "localhost", 2);
    assert_eq!(count(&c2, "drop/nat_filtered"), 1, "{c2:#}");
    assert_eq!(
        count(&c2, "msg_in/introduction-request"),
        1,
        "only the request after the puncture reached instance 2: {c2:#}"
    );
    let c1 = counters(&run, "localhost", 1);
    assert_eq!(count(&c1, "msg_out/introduction-request"), 2, "{c1:#}");
    assert_eq!(
        count(&c1, "msg_in/introduction-response"),
        1,
        "instance 2 answered the request after the puncture: {c1:#}"
    );
    assert_eq!(count(&c1, "drop/nat_filtered"), 0, "instance 1 has no NAT");
    assert!(
        events(&run, "localhost", 2).contains(
            r#""kind":"network","text":"nat=port_restricted_cone mapping=endpoint_independent filtering=address_and_port_dependent timeout=120s""#
        ),
        "{}",
        events(&run, "localhost", 2)
    );
    assert!(!events(&run, "localhost", 1).contains(r#""kind":"network""#));
}

/// A simulated run of 3 instances: 1 is public and the others' bootstrap;
/// 2 and 3 sit behind `nat` and learn of each other only from 1's
/// introductions. Returns each one's counters.
fn walk_behind(nat: &str) -> Vec<Value> {
    let dir = Dir::new("nat-sim");
    dir.write(
        "w.scenario",
        "&module dispersy\n@@ isolate_community NatSim\n\
         @0 set_bootstrap 10.0.0.1:7000 {2-3}\n@0 start_session\n@20 stop\n",
    );
    dir.write(
        "w.conf",
        format!("scenario_file = w.scenario\ninstances_to_run = 3\nnat = {nat} {{2-3}}\n"),
    );
    dir.peerlab()
        .args(["run", "w.conf", "--simulate", "--seed", "4", "--no-plots"])
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    (1..=3).map(|id| counters(&run, "simulated", id)).collect()
}

#[test]
fn in_simulation_the_walker_punctures_cone_nats_and_not_symmetric_ones() {
    let cone = walk_behind("port_restricted_cone");
    for (i, c) in cone.iter().enumerate().skip(1) {
        assert_eq!(
            count(c, "peers"),
            2,
            "instance {} knows 1 and, through the puncture, the other: {c:#}",
            i + 1
        );
        assert!(count(c, "msg_in/puncture") > 0, "{c:#}");
    }
    let symmetric = walk_behind("symmetric");
    for (i, c) in symmetric.iter().enumerate().skip(1) {
        assert_eq!(
            count(c, "peers"),
            1,
            "instance {} knows only 1: symmetric NATs need a relay: {c:#}",
            i + 1
        );
        assert!(count(c, "drop/nat_filtered") > 0, "{c:#}");
        assert_eq!(count(c, "drop/wrong_address"), 0, "{c:#}");
    }
}

#[test]
fn peerlab_check_refuses_an_unknown_nat_type_at_its_line() {
    let dir = Dir::new("nat-check");
    dir.write("s.scenario", "@1 stop\n");
    dir.write(
        "s.conf",
        "scenario_file = s.scenario\ninstances_to_run = 4\nnat = symetric {2-3}, full_cone\n",
    );
    dir.peerlab()
        .args(["check", "s.conf", "--format", "short"])
        .run()
        .expect_code(1)
        .stdout_has("s.conf:3:")
        .stdout_has("unknown NAT type `symetric` (did you mean `symmetric`?)");
    dir.write(
        "s.conf",
        "scenario_file = s.scenario\ninstances_to_run = 4\nnat = symmetric {2-3}, full_cone\nnat_timeout = 30s\n",
    );
    let ok = dir
        .peerlab()
        .args(["check", "s.conf", "--format", "short"])
        .run();
    ok.expect_code(0);
    assert!(!ok.stdout.contains("nat"), "{}", ok.stdout);
    dir.write(
        "s.conf",
        "scenario_file = s.scenario\ninstances_to_run = 4\nnat = symmetric {2-9}\n",
    );
    dir.peerlab()
        .args(["check", "s.conf", "--format", "short"])
        .run()
        .expect_code(0)
        .stdout_has("s.conf:3:")
        .stdout_has(
            "`nat` puts instance 9 behind a symmetric NAT, but the experiment runs 4 instances",
        );
}
