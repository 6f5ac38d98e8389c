//! End-to-end tests of the `dispersy` module's scenario callbacks that the
//! other tests do not reach: walker settings.

use peerlab_e2e::Dir;
use serde_json::Value;

/// The `peers` gauge of every instance's last statistics line.
fn final_peer_counts(dir: &Dir, instances: u32) -> Vec<f64> {
    let run = std::fs::canonicalize(dir.path().join("output/latest")).unwrap();
    (1..=instances)
        .map(|id| {
            let text =
                std::fs::read_to_string(run.join(format!("simulated/node001/{id:05}.stats.jsonl")))
                    .unwrap();
            let last = text.lines().rev().find(|l| !l.is_empty()).unwrap();
            let v: Value = serde_json::from_str(last).unwrap();
            v["counters"]["peers"].as_f64().unwrap()
        })
        .collect()
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
    assert!(
        walking.iter().all(|&p| p >= 2.0) && walking.contains(&6.0),
        "each instance started knowing one peer and walked towards 6: {walking:?}"
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
