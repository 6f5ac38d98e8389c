//! Open experiments (issue #20): addresses are outputs (`peers.json`,
//! each instance's `address` event, `instance_port_base`), and instances
//! that are other programs (`external_instances`) are started, supervised
//! and judged like peerlab's own.

use std::path::Path;

use peerlab_e2e::Dir;
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A base port unlikely to be taken: three free consecutive UDP ports.
fn free_port_base() -> u16 {
    let start = 20000 + (std::process::id() % 20000) as u16;
    (start..start + 2000)
        .step_by(3)
        .find(|&b| (b..b + 3).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()))
        .expect("three free consecutive UDP ports")
}

#[test]
fn peers_json_and_each_instances_events_record_its_address_on_the_fixed_ports() {
    let dir = Dir::new("open-addresses");
    let base = free_port_base();
    dir.write(
        "a.scenario",
        "&module dispersy\n@0 start_session\n@0 introduce_peers\n@1 stop\n",
    );
    dir.write(
        "a.conf",
        format!("scenario_file = a.scenario\ninstances_to_run = 3\ninstance_port_base = {base}\n"),
    );
    let run = dir
        .peerlab()
        .args(["run", "a.conf", "--time-scale", "0.2", "--no-plots"])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    let peers = json(&run_dir.join("peers.json"));
    let list = peers["peers"].as_array().expect("a peer list");
    assert_eq!(list.len(), 3, "{peers:#}");
    assert!(
        peers["start_unix_ms"].as_u64().unwrap_or(0) > 0,
        "{peers:#}"
    );
    for (i, p) in list.iter().enumerate() {
        let id = i as u64 + 1;
        assert_eq!(p["id"], id, "{peers:#}");
        assert_eq!(p["addr"], format!("127.0.0.1:{}", base as u64 + id - 1));
        assert_eq!(p["kind"], "peerlab");
        assert_eq!(p["public_key"].as_str().map(str::len), Some(148), "{p}");
        let events = json_lines(&run_dir.join(format!("localhost/node001/{id:05}.events.jsonl")));
        let address = events
            .iter()
            .find(|e| e["kind"] == "address")
            .unwrap_or_else(|| panic!("no address event for {id}: {events:#?}"));
        assert_eq!(address["text"], p["addr"]);
        assert_eq!(address["key"], p["public_key"]);
    }
}
