//! End-to-end tests of the `dispersy` module's settings that the other
//! tests do not reach: walker settings and catch-up sync tuning.

use peerlab_e2e::Dir;
use serde_json::Value;

/// Counter `name` of every instance's last statistics line.
fn final_counters(dir: &Dir, instances: u32, name: &str) -> Vec<f64> {
    let run = std::fs::canonicalize(dir.path().join("output/latest")).unwrap();
    (1..=instances)
        .map(|id| {
            let text =
                std::fs::read_to_string(run.join(format!("simulated/node001/{id:05}.stats.jsonl")))
                    .unwrap();
            let last = text.lines().rev().find(|l| !l.is_empty()).unwrap();
            let v: Value = serde_json::from_str(last).unwrap();
            v["counters"][name].as_f64().unwrap_or(0.0)
        })
        .collect()
}

/// The `peers` gauge of every instance's last statistics line.
fn final_peer_counts(dir: &Dir, instances: u32) -> Vec<f64> {
    final_counters(dir, instances, "peers")
}

fn walk_scenario(setting: &str) -> String {
    format!(
        "&module dispersy\n@@ isolate_community Walk\n@@ set_walker {setting}\n\
         @0 start_session\n@0 introduce_peers max_peers=1\n@20 stop\n"
    )
}

#[test]
fn the_walker_finds_peers_up_to_its_target_and_stays_put_when_disabled() {
    let dir = Dir::new("walker");
    dir.write("walk.scenario", walk_scenario("interval=200ms targets=6"));
    dir.write("still.scenario", walk_scenario("enabled=false"));
    let args = [
        "--instances",
        "12",
        "--simulate",
        "--seed",
        "2",
        "--no-plots",
    ];
    dir.peerlab()
        .args(["run", "walk.scenario"])
        .args(args)
        .run()
        .expect_code(0);
    let walking = final_peer_counts(&dir, 12);
    let steps = final_counters(&dir, 12, "msg_out/introduction-request");
    // Every instance walked from one peer to its target. Then it stayed
    // put: a walker that kept stepping would send one request per 200 ms,
    // ~100 in 20 s. (Peers that others walk to may know more than 6: the
    // target stops the walker, it does not refuse visitors.)
    assert!(
        walking.iter().all(|&p| p >= 6.0),
        "each instance started knowing one peer and walked to 6: {walking:?}"
    );
    assert!(
        steps.iter().all(|&n| (1.0..=20.0).contains(&n)),
        "each walker stopped once it knew 6 peers: requests sent {steps:?}"
    );
    dir.peerlab()
        .args(["run", "still.scenario"])
        .args(args)
        .run()
        .expect_code(0);
    assert_eq!(
        final_peer_counts(&dir, 12),
        vec![1.0; 12],
        "no walking: one peer each"
    );
}

#[test]
fn an_unknown_walker_setting_is_refused_before_the_run() {
    let dir = Dir::new("walker-bad");
    dir.write("w.scenario", walk_scenario("speed=3"));
    dir.peerlab()
        .args(["run", "w.scenario", "--instances", "2", "--simulate"])
        .run()
        .expect_code(2)
        .stderr_has("w.scenario:3");
}

#[test]
fn sync_interval_and_response_limit_come_from_the_config() {
    let dir = Dir::new("sync-tuning");
    // Each rumor goes to one peer first, so catch-up sync carries the rest.
    dir.write(
        "g.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community Tune\n@0 start_session\n\
         @0 introduce_peers max_peers=3\n@1 publish count=20\n@12 report\n@13 stop\n",
    );
    dir.write(
        "default.conf",
        "scenario_file = g.scenario\ngossip_fanout = 1\n",
    );
    dir.write(
        "tuned.conf",
        "scenario_file = g.scenario\ngossip_fanout = 1\nsync_interval = 250ms\nsync_response_limit = 2\n",
    );
    let n = 10;
    let args = [
        "--instances",
        "10",
        "--simulate",
        "--seed",
        "5",
        "--no-plots",
    ];
    let sum = |v: Vec<f64>| v.iter().sum::<f64>();

    dir.peerlab()
        .args(["run", "default.conf"])
        .args(args)
        .run()
        .expect_code(0)
        .stderr_has("hold all 200 rumors");
    let default_requests = sum(final_counters(&dir, n, "msg_out/sync-request"));
    let default_sent = final_counters(&dir, n, "msg_out/rumor");
    let default_asked = final_counters(&dir, n, "msg_in/sync-request");
    // With the default limit (32), some answer carries more than 2 rumors.
    assert!(
        default_sent
            .iter()
            .zip(&default_asked)
            .any(|(sent, asked)| *sent > 20.0 + 2.0 * asked),
        "sent {default_sent:?} asked {default_asked:?}"
    );

    // Not every rumor arrives at 2 per answer: the verdict may fail, but
    // only for missing rumors; every instance must finish and report.
    let tuned = dir.peerlab().args(["run", "tuned.conf"]).args(args).run();
    assert!(tuned.stderr.contains("10/10 instances finished"), "{tuned}");
    match tuned.code {
        Some(0) => {}
        Some(1) => assert!(
            tuned
                .stderr
                .contains("verdict gossip/everyone holds every rumor: FAIL — ")
                && tuned.stderr.contains("instances miss rumors (of 200): ")
                && !tuned.stderr.contains("did not report"),
            "the run failed for another reason than missing rumors:\n{tuned}"
        ),
        _ => panic!("the run failed:\n{tuned}"),
    }
    let tuned_requests = sum(final_counters(&dir, n, "msg_out/sync-request"));
    let sent = final_counters(&dir, n, "msg_out/rumor");
    let asked = final_counters(&dir, n, "msg_in/sync-request");
    for (id, (sent, asked)) in sent.iter().zip(&asked).enumerate() {
        // Its own 20 rumors pushed once each, then at most 2 per answer.
        assert!(
            *sent <= 20.0 + 2.0 * asked,
            "instance {}: {sent} rumors sent for {asked} sync requests",
            id + 1
        );
    }
    assert!(
        tuned_requests > 2.0 * default_requests,
        "a quarter of the interval sends more requests: {tuned_requests} vs {default_requests}"
    );
}
