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

/// A base port unlikely to be taken: `n` free consecutive UDP ports (each
/// call of this test process searches from a different place: tests run
/// in parallel, and a port found free is not bound until the run starts).
fn free_port_base(n: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 20000 + (std::process::id() % 20000) as u16 + call * 2000 % 20000;
    (start..start + 2000)
        .step_by(usize::from(n))
        .find(|&b| (b..b + n).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()))
        .expect("free consecutive UDP ports")
}

#[test]
fn peers_json_and_each_instances_events_record_its_address_on_the_fixed_ports() {
    let dir = Dir::new("open-addresses");
    let base = free_port_base(3);
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

/// A summary's status and error of instance `id`.
fn status(summary: &Value, id: u64) -> (String, String) {
    let s = summary["instance_status"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no status for {id}: {summary:#}"));
    (
        s["status"].as_str().unwrap_or_default().to_string(),
        s["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// A config running one peerlab instance and one external instance with
/// `cmd`, and a scenario where instance 1 stops at `stop`.
fn one_and_one(dir: &Dir, cmd: &str, stop: &str) {
    dir.write(
        "x.scenario",
        format!("@0 echo peerlab up {{1}}\n@{stop} stop {{1}}\n"),
    );
    dir.write(
        "x.conf",
        format!(
            "scenario_file = x.scenario\ninstances_to_run = 2\nexternal_instances = 1\nexternal_cmd = {cmd}\nexperiment_time = 4\n"
        ),
    );
}

#[test]
fn an_external_instance_that_crashes_is_reported_like_a_peerlab_instance() {
    let dir = Dir::new("open-external-crash");
    one_and_one(&dir, "echo external up; echo it broke >&2; exit 3", "1");
    let run = dir.peerlab().args(["run", "x.conf", "--no-plots"]).run();
    run.expect_code(1);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    let (st, why) = status(&summary, 2);
    assert_eq!(st, "crashed", "{summary:#}");
    assert_eq!(why, "its process ended: exit code 3", "{summary:#}");
    // Its outputs are in the instance layout, like any instance's.
    assert_eq!(
        dir.read(&format!(
            "{}/localhost/node001/00002.out",
            rel(&dir, &run_dir)
        )),
        "external up\n"
    );
    let err = std::fs::read_to_string(run_dir.join("localhost/node001/00002.err")).unwrap();
    assert!(err.starts_with("it broke\n"), "{err}");
    assert!(
        err.contains("peerlab: instance 2 ended abnormally: its process ended: exit code 3"),
        "{err}"
    );
    // It ended before the start: the run could not begin, and says why.
    // (instance 1 is stopped whether or not it registered in time)
    let (st1, why1) = status(&summary, 1);
    assert!(st1 == "never_started" || st1 == "timed_out", "{summary:#}");
    assert_eq!(
        why1,
        "instances 2 ended before the start, so the run cannot begin"
    );
}

/// `run_dir` relative to the test's folder.
fn rel(dir: &Dir, run_dir: &Path) -> String {
    run_dir
        .strip_prefix(dir.path())
        .unwrap_or(run_dir)
        .display()
        .to_string()
}

/// A Python external instance that registers, says ready, waits for the
/// start and then hangs (docs/sync-protocol.md's client, without its end).
const HANGS_AFTER_THE_START: &str = r#"
import json, os, socket, time
s = socket.create_connection(tuple(os.environ["PEERLAB_SYNC"].rsplit(":", 1)))
f = s.makefile("r")
me = int(os.environ["PEERLAB_INSTANCE_ID"])
def send(m): s.sendall((json.dumps(m) + "\n").encode())
send({"type": "hello", "token": os.environ["PEERLAB_RUN_TOKEN"], "host": os.environ["PEERLAB_HOST"], "node": 1, "pid": os.getpid(), "ids": [me], "count": 1})
assert json.loads(f.readline())["type"] == "welcome"
send({"type": "ready", "id": me, "addr": "127.0.0.1:9", "public_key": "4c69624e61434c504b3a" + "00" * 64})
assert json.loads(f.readline())["type"] == "start"
print("started", flush=True)
time.sleep(600)
"#;

#[test]
fn an_external_instance_that_hangs_is_stopped_by_the_run_timeout() {
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("skipped: PEERLAB_SKIP_IPV8=1 (the hanging instance is Python)");
        return;
    }
    let dir = Dir::new("open-external-hang");
    dir.write("hang.py", HANGS_AFTER_THE_START);
    one_and_one(&dir, "exec python3 hang.py", "1");
    let run = dir.peerlab().args(["run", "x.conf", "--no-plots"]).run();
    run.expect_code(1);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "timed_out", "{summary:#}");
    assert_eq!(status(&summary, 1).0, "finished", "{summary:#}");
    let (st, why) = status(&summary, 2);
    assert_eq!(st, "timed_out", "{summary:#}");
    assert!(
        why.starts_with("the run timed out after")
            && why.ends_with("with instances 2 still running"),
        "{why}"
    );
    let out = std::fs::read_to_string(run_dir.join("localhost/node001/00002.out")).unwrap();
    assert_eq!(out, "started\n");
    // It was in the peer table like any instance, marked external.
    let peers = json(&run_dir.join("peers.json"));
    assert_eq!(peers["peers"][1]["kind"], "external", "{peers:#}");
    assert_eq!(peers["peers"][0]["kind"], "peerlab", "{peers:#}");
}

#[test]
fn an_external_instance_that_never_registers_times_the_registration_out() {
    let dir = Dir::new("open-external-silent");
    one_and_one(&dir, "exec sleep 600", "1");
    // The configured registration timeout, not the default 30 s.
    let conf = dir.read("x.conf");
    dir.write("x.conf", format!("{conf}registration_timeout = 2\n"));
    let began = std::time::Instant::now();
    let run = dir.peerlab().args(["run", "x.conf", "--no-plots"]).run();
    run.expect_code(1);
    let took = began.elapsed();
    let summary = json(&dir.latest_run().join("summary.json"));
    assert_eq!(summary["outcome"], "timed_out", "{summary:#}");
    let (st, why) = status(&summary, 2);
    assert_eq!(st, "never_started", "{summary:#}");
    assert_eq!(
        why, "instances 2 never registered within 2.0 s",
        "{summary:#}"
    );
    // (a bound, not a speed figure: with the default it would take 30 s)
    assert!(took < std::time::Duration::from_secs(25), "{took:?}");
}

#[test]
fn check_refuses_a_bad_registration_timeout_and_external_instances_on_a_virtual_clock() {
    let dir = Dir::new("open-external-refused");
    one_and_one(&dir, "exec python3 peer.py", "1");
    let conf = dir.read("x.conf");
    dir.write("x.conf", format!("{conf}registration_timeout = 0\n"));
    dir.peerlab()
        .args(["check", "x.conf"])
        .run()
        .expect_code(1)
        .stdout_has("x.conf:6:")
        .stdout_has("bad value for `registration_timeout`: expected a duration from 1ms to 24h");
    dir.write("x.conf", format!("{conf}registration_timeout = 2m\n"));
    dir.peerlab().args(["check", "x.conf"]).run().expect_code(0);
    // Simulated: refused at the external_instances line, saying why.
    dir.peerlab()
        .args(["check", "x.conf", "--simulate"])
        .run()
        .expect_code(1)
        .stdout_has("x.conf:3:")
        .stdout_has("external instances cannot run on the simulated network")
        .stdout_has("a simulated run's instances live on a virtual clock");
    // Under SLURM they are accepted like any instance.
    dir.peerlab()
        .args(["check", "x.conf", "--runner", "slurm"])
        .run()
        .expect_code(0);
}

#[test]
fn check_resolves_external_callbacks_from_the_manifest_and_refuses_a_misspelled_one() {
    let dir = Dir::new("open-external-check");
    dir.write(
        "cb.json",
        r#"{"callbacks": {"publish": {"params": [{"name": "count", "type": "int", "default": "1"}]}, "report": {}}}"#,
    );
    let conf = "scenario_file = x.scenario\ninstances_to_run = 3\nexternal_instances = 1\n\
                external_cmd = python3 peer.py\nexternal_callbacks = cb.json\n";
    dir.write("x.conf", conf);
    // `publish` and `report` run only on the external instance 3: its
    // manifest answers for them, peerlab's modules are not asked.
    dir.write(
        "x.scenario",
        "@0 echo hi {1-2}\n@1 publish count=2 {3}\n@2 report {3}\n@3 stop\n",
    );
    dir.peerlab().args(["check", "x.conf"]).run().expect_code(0);
    dir.write(
        "x.scenario",
        "@0 echo hi\n@1 publsh {3}\n@2 publish count=many {3}\n@3 stop\n",
    );
    let run = dir.peerlab().args(["check", "x.conf"]).run();
    run.expect_code(1)
        .stdout_has("x.scenario:2:4")
        .stdout_has("the external instances have no callback `publsh`")
        .stdout_has("did you mean `publish`?")
        .stdout_has("x.scenario:3:12")
        .stdout_has("external `publish`: `count`: expected int, found `many`");
    // `echo` runs on every instance: the external one's manifest lacks it
    // (`stop` every client answers: docs/sync-protocol.md).
    run.stdout_has("x.scenario:1:4")
        .stdout_has("no callback `echo`");
    assert!(!run.stdout.contains("`stop`"), "{run}");
}

/// A Python experiment module on peerlab's Python client (python/peerlab).
const PYTHON_PEER: &str = r#"
from peerlab import ExperimentModule, experiment_callback, run

class Greeter(ExperimentModule):
    @experiment_callback
    def greet(self, name: str, times: int = 1):
        for _ in range(times):
            self.print(f"hello {name} from {self.instance_id} of {self.instances}")
        self.stat("greetings", times)

    @experiment_callback
    async def census(self):
        self.annotate("census")
        self.print("peers: " + ",".join(str(p.id) for p in self.peers))

if __name__ == "__main__":
    run(Greeter)
"#;

#[test]
fn a_python_client_instance_runs_its_callbacks_and_writes_an_instances_files() {
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("skipped: PEERLAB_SKIP_IPV8=1 (the Python client's tests)");
        return;
    }
    let dir = Dir::new("open-python-client");
    let python = peerlab_e2e::workspace_root().join("python");
    dir.write("peer.py", PYTHON_PEER);
    // The manifest comes from the module's @experiment_callbacks.
    let manifest = std::process::Command::new("python3")
        .args(["-m", "peerlab", "manifest", "peer.py"])
        .env("PYTHONPATH", &python)
        .current_dir(dir.path())
        .output()
        .expect("python3 runs");
    assert!(manifest.status.success(), "{manifest:?}");
    dir.write("cb.json", &manifest.stdout);
    let cb = json(&dir.path().join("cb.json"));
    assert_eq!(
        cb["callbacks"]["greet"]["params"][1],
        serde_json::json!({"name": "times", "type": "int", "default": "1"})
    );
    dir.write(
        "x.scenario",
        "@@ greet setup {3}\n@0 echo up {1-2}\n@1 greet world times=2 {3}\n@2 census {3}\n@3 stop\n",
    );
    dir.write(
        "x.conf",
        format!(
            "scenario_file = x.scenario\ninstances_to_run = 3\nexternal_instances = 1\n\
             external_cmd = PYTHONPATH={} exec python3 peer.py\nexternal_callbacks = cb.json\n",
            python.display()
        ),
    );
    dir.peerlab().args(["check", "x.conf"]).run().expect_code(0);
    let run = dir
        .peerlab()
        .args(["run", "x.conf", "--time-scale", "0.5", "--no-plots"])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(
        status(&summary, 3),
        ("finished".into(), String::new()),
        "{summary:#}"
    );
    let node = run_dir.join("localhost/node001");
    let out = std::fs::read_to_string(node.join("00003.out")).unwrap();
    assert_eq!(
        out,
        "hello setup from 3 of 3\nhello world from 3 of 3\nhello world from 3 of 3\npeers: 1,2,3\n"
    );
    let events = json_lines(&node.join("00003.events.jsonl"));
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "command",
            "address",
            "command",
            "command",
            "annotation",
            "command",
            "end"
        ],
        "{events:#?}"
    );
    assert_eq!(events[2]["line"], 3, "{events:#?}");
    assert_eq!(events.last().unwrap()["status"], "finished");
    let stats = json_lines(&node.join("00003.stats.jsonl"));
    assert_eq!(
        stats.last().unwrap()["counters"]["stat/greetings"],
        2.0,
        "{stats:#?}"
    );
}

/// A gossip run of `n` instances on fixed ports whose scenario has no
/// `introduce_peers`: peers meet only as `discovery` lets them.
fn discovery_run(dir: &Dir, n: u16, discovery: &str) -> peerlab_e2e::Run {
    discovery_run_with(dir, n, discovery, "")
}

/// As [`discovery_run`], with more config lines.
fn discovery_run_with(dir: &Dir, n: u16, discovery: &str, conf: &str) -> peerlab_e2e::Run {
    let base = free_port_base(n);
    dir.write(
        "d.scenario",
        format!(
            "&module dispersy\n&module gossip\n@@ isolate_community Discovery\n{discovery}\
             @0 start_session\n@3 publish\n@12 report\n@13 stop\n"
        ),
    );
    dir.write(
        "d.conf",
        format!(
            "scenario_file = d.scenario\ninstances_to_run = {n}\ninstance_port_base = {base}\n{conf}"
        ),
    );
    dir.peerlab()
        .args(["run", "d.conf", "--time-scale", "0.5", "--no-plots"])
        .run()
}

#[test]
fn instances_bootstrap_to_an_address_given_in_the_scenario() {
    let dir = Dir::new("open-bootstrap");
    // Instance 1 listens on the base port; the others know only that.
    discovery_run(
        &dir,
        4,
        "@0 set_bootstrap 127.0.0.1:$INSTANCE_PORT_BASE {2-4}\n",
    )
    .expect_code(0)
    .stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 4 instances hold all 4 rumors",
    );
    // The control: without it nobody meets anybody.
    let dir = Dir::new("open-bootstrap-control");
    discovery_run(&dir, 4, "")
        .expect_code(1)
        .stderr_has("4 of 4 instances miss rumors");
}

#[test]
fn walk_to_introduces_an_instance_to_an_address_given_in_the_scenario() {
    let dir = Dir::new("open-walk-to");
    // No walker at all: the one introduction request is the only contact.
    discovery_run(
        &dir,
        2,
        "@0 set_walker enabled=false\n@1 walk_to 127.0.0.1:$INSTANCE_PORT_BASE {2}\n",
    )
    .expect_code(0)
    .stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 2 instances hold all 2 rumors",
    );
}

#[test]
fn peers_find_each_other_only_through_the_built_in_tracker() {
    let dir = Dir::new("open-tracker");
    // No introduce_peers, no set_bootstrap: Gumby's tracker keys alone.
    discovery_run_with(
        &dir,
        4,
        "",
        "tracker_cmd = run_tracker.sh\ntracker_port = __unique_port__\n",
    )
    .expect_code(0)
    .stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 4 instances hold all 4 rumors",
    );
    let run_dir = dir.latest_run();
    let peers = json(&run_dir.join("peers.json"));
    let tracker = &peers["peers"][0];
    assert_eq!(tracker["id"], 0, "{peers:#}");
    assert_eq!(tracker["kind"], "tracker", "{peers:#}");
    // The resolved port is the run's tracker_port, as the instances read it.
    let run = json(&run_dir.join("run.json"));
    let port = run["config"]["tracker_port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(tracker["addr"], format!("127.0.0.1:{port}"), "{run:#}");
    // Every instance learnt its peers from the tracker's introductions:
    // each one's walker talked to it.
    for id in 1..=4u64 {
        let stats = json_lines(&run_dir.join(format!("localhost/node001/{id:05}.stats.jsonl")));
        let last = &stats.last().unwrap()["counters"];
        assert_eq!(last["drop/unknown_author"], 0.0, "instance {id}: {last:#}");
    }
    // (Without the tracker nobody meets: see the bootstrap test's control run.)
}
