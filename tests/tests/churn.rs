//! End-to-end tests of churn (#19): the gossip experiment under a churn
//! model reaches every instance online at the end (the gossip verdict
//! judges only those) and the report draws "peers online"; `leave` then
//! `restart` keeps an instance's identity (the same public key in its
//! events) in simulation and over real UDP; `peerlab check` refuses bad
//! churn arguments at the word at fault.

use std::path::Path;

use peerlab_e2e::Dir;
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn events(run: &Path, host: &str, id: u32) -> Vec<Value> {
    let path = run.join(format!("{host}/node001/{id:05}.events.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn faults(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "fault")
        .map(|e| {
            (
                e["text"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `scenarios/churn/gossip.scenario`: instances 3-16 churn (exponential
/// sessions, short downtimes, back with an empty store and fresh modules)
/// until 40; instances 17-20 leave once, between 7 and 32 s, and stay away
/// (ten-minute downtimes).
fn churn_scenario() -> String {
    let path = peerlab_e2e::workspace_root().join("scenarios/churn/gossip.scenario");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gossip_under_churn_reaches_every_instance_online_at_the_end() {
    let dir = Dir::new("churn-gossip");
    dir.write("c.scenario", churn_scenario());
    let args = ["run", "c.scenario", "--instances", "20", "--simulate"];
    let run = dir.peerlab().args(args).args(["--seed", "4"]).run();
    run.expect_code(0).stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 16 instances online at the end hold all 20 rumors (4 away at the end, not judged: 17, 18, 19, 20)",
    );
    let run_dir = dir.latest_run();

    // Churn really happened: instances 3-16 left and came back, each with
    // an empty store and fresh modules, and caught up again.
    let mut departures = 0;
    for id in 3..=16 {
        let f = faults(&events(&run_dir, "simulated", id));
        departures += f.iter().filter(|(t, _)| t == "leave (churn)").count();
        let backs = f
            .iter()
            .filter(|(t, _)| t == "restart store=empty (churn)")
            .count();
        let leaves = f.iter().filter(|(t, _)| t == "leave (churn)").count();
        assert_eq!(leaves, backs, "instance {id} came back every time: {f:?}");
    }
    assert!(departures >= 14, "only {departures} departures");
    for id in 17..=20 {
        let ev = events(&run_dir, "simulated", id);
        let f = faults(&ev);
        assert_eq!(
            f.iter().filter(|(t, _)| t == "leave (churn)").count(),
            1,
            "{f:?}"
        );
        let end = ev.iter().find(|e| e["kind"] == "end").unwrap();
        assert_eq!(end["online"], false, "{end}");
        let skipped = ev
            .iter()
            .find(|e| e["kind"] == "command" && e["callback"] == "report")
            .unwrap();
        assert_eq!(skipped["text"], "skipped: the instance is away");
    }

    // "Peers online", sampled on scenario time: everyone at the start,
    // fewer while churning, the 16 at the end; in the run folder and drawn.
    let csv = std::fs::read_to_string(run_dir.join("peers_online.csv")).unwrap();
    let points: Vec<(f64, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let (t, c) = l.split_once(',').unwrap();
            (t.parse().unwrap(), c.parse().unwrap())
        })
        .collect();
    assert_eq!(points.first(), Some(&(0.0, 20.0)), "{csv}");
    assert_eq!(points.last().map(|p| p.1), Some(16.0), "{csv}");
    let least = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    assert!(least <= 14.0, "at least a few away at once: {csv}");
    assert!(run_dir.join("plots/peers_online.png").is_file());
    let page = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(page.contains("peers_online.png"), "the page shows the plot");
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(
        summary["aggregates"]["metrics"]["online"]["total"], 16.0,
        "{:#}",
        summary["aggregates"]["metrics"]["online"]
    );

    // The draws come from the run seed: the same seed, the same churn.
    dir.peerlab()
        .args(args)
        .args(["--seed", "4", "--no-plots"])
        .run()
        .expect_code(0);
    let again = dir.latest_run();
    assert_ne!(again, run_dir);
    for id in [3, 10, 17] {
        assert_eq!(
            faults(&events(&run_dir, "simulated", id)),
            faults(&events(&again, "simulated", id)),
            "instance {id}"
        );
    }
}

/// Seeds on which instances back with an empty store never caught up
/// again (they kept their sync back-off of before and backed off further
/// while their requests went to peers away; about a third of all seeds
/// failed, seed 4 above among them): every instance online at the end holds
/// every rumor (netsim/tests/restart.rs tests the cause on bare cores).
#[test]
fn gossip_under_churn_passes_on_seeds_that_left_restarted_instances_empty() {
    let dir = Dir::new("churn-gossip-seeds");
    dir.write("c.scenario", churn_scenario());
    for seed in ["5", "7", "9", "14", "20"] {
        dir.peerlab()
            .args(["run", "c.scenario", "--instances", "20", "--simulate"])
            .args(["--seed", seed, "--no-plots"])
            .run()
            .expect_code(0)
            .stderr_has("verdict gossip/everyone holds every rumor: PASS — all 16 instances online at the end hold all 20 rumors");
    }
}

/// Instance 2 leaves, misses a rumor, and restarts with an empty store.
const RESTART: &str = "\
&module dispersy
&module gossip
@@ isolate_community RestartTest
@0 start_session
@0 introduce_peers
@1 publish
@3 leave {2}
@4 publish {1}
@6 restart store=empty {2}
@20 report
@21 stop
";

fn check_restart(run_dir: &Path, host: &str) {
    let ev = events(run_dir, host, 2);
    let f = faults(&ev);
    let texts: Vec<&str> = f.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["leave", "restart store=empty"], "{f:?}");
    let key = &f[0].1;
    assert_eq!(key.len(), 2 * 74, "a py-ipv8 LibNaCLPK key in hex: {key}");
    assert_eq!(&f[1].1, key, "the same key after the restart");
    if let Some(address) = ev.iter().find(|e| e["kind"] == "address") {
        assert_eq!(address["key"].as_str(), Some(key.as_str()), "{address}");
    }
    let other = faults(&events(run_dir, host, 1));
    assert!(other.is_empty(), "{other:?}");
    // The fresh gossip module caught up from scratch: its own rumor and the
    // three of the others.
    let out = std::fs::read_to_string(run_dir.join(format!("{host}/node001/00002.out"))).unwrap();
    assert_eq!(
        out, "gossip: published 1\ngossip: holding 4 rumors\n",
        "{host}"
    );
}

#[test]
fn a_restarted_instance_keeps_its_identity_in_simulation() {
    let dir = Dir::new("churn-restart-sim");
    dir.write("r.scenario", RESTART);
    dir.peerlab()
        .args(["run", "r.scenario", "--instances", "3", "--simulate"])
        .args(["--seed", "6", "--no-plots"])
        .run()
        .expect_code(0)
        .stderr_has("all 3 instances hold all 4 rumors");
    check_restart(&dir.latest_run(), "simulated");
}

#[test]
fn a_restarted_instance_keeps_its_identity_over_udp() {
    let dir = Dir::new("churn-restart-udp");
    dir.write("r.scenario", RESTART);
    dir.peerlab()
        .args([
            "run",
            "r.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.2",
        ])
        .args(["--no-plots"])
        .run()
        .expect_code(0)
        .stderr_has("all 3 instances hold all 4 rumors");
    check_restart(&dir.latest_run(), "localhost");
}

#[test]
fn peerlab_check_refuses_bad_churn_arguments_at_the_word() {
    let dir = Dir::new("churn-check");
    dir.write(
        "c.scenario",
        "&module dispersy\n@0 start_session\n\
         @2 churn session=exp(-1m) downtime=exp(2m) {3-10}\n\
         @3 churn session=exp(10m) downtime=uniform(5m,1m) {3-10}\n\
         @4 restart store=full {2}\n\
         @5 churn session=expo(1m) downtime=1m {3-100}\n\
         @6 churn sometimes\n\
         @7 churn session=exp(1m)\n",
    );
    dir.write(
        "c.conf",
        "experiment_name = c\nscenario_file = c.scenario\ninstances_to_run = 10\n",
    );
    let run = dir
        .peerlab()
        .args(["check", "c.conf", "--format", "short"])
        .run();
    run.expect_code(1)
        .stdout_has("c.scenario:3:10: error[bad-argument]: core.churn: session=exp(-1m): the mean `-1m` is not a duration")
        .stdout_has("c.scenario:4:27: error[bad-argument]: core.churn: downtime=uniform(5m,1m): the low end `5m` is above the high end `1m`")
        .stdout_has("c.scenario:5:12: error[bad-argument]: core.restart: store=`full`: give store=kept or store=empty")
        .stdout_has("c.scenario:6:10: error[bad-argument]: core.churn: session=expo(1m): unknown distribution `expo` (did you mean `exp`?)")
        .stdout_has("c.scenario:7:10: error[bad-argument]: core.churn: `sometimes`: churn takes `off` or session=DIST downtime=DIST")
        .stdout_has("c.scenario:8:4: error[bad-argument]: core.churn: churn needs downtime=DIST");
    // `{3-100}` with 10 instances is pointed out as for any command.
    run.stdout_has("c.scenario:6:39: warning[peer-out-of-range]: peer selector `{3-100}` names instances up to 100");
}
