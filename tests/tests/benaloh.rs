//! End-to-end tests of the Benaloh plugin with the real runner: the
//! tutorial's scenario and confs from `scenarios/benaloh/` run time-scaled
//! through `peerlab run`, loading `target/debug/libbenaloh.so`; the outputs
//! are checked independently of the plugin's own verdict (the total is
//! recomputed from the printed secrets), and the verdict must agree. Races
//! are forced by scenario timing and by the runtime's network faults
//! (`set_network` delay and loss on chosen instances).
//!
//! Needs `cargo build --workspace` first (scripts/test does it).

use std::path::{Path, PathBuf};

use peerlab_e2e::{Dir, Run, debug_dir, workspace_plugin, workspace_root};
use serde_json::Value;

const DEFAULT_MODULUS: u64 = (1 << 31) - 1;

fn scenarios() -> PathBuf {
    workspace_root().join("scenarios/benaloh")
}

/// `peerlab run CONF --time-scale SCALE --seed 7 -o DIR/output`, loading the
/// workspace's libbenaloh.so.
fn run(dir: &Dir, conf: &Path, scale: &str, extra: &[&str]) -> Run {
    workspace_plugin("benaloh");
    dir.peerlab()
        .arg("run")
        .arg(conf)
        .args([
            "--time-scale",
            scale,
            "--seed",
            "7",
            "--no-plots",
            "--output",
        ])
        .arg(dir.path().join("output"))
        .arg("--plugin-path")
        .arg(debug_dir())
        .args(extra)
        .run()
}

fn summary(dir: &Dir) -> Value {
    let p = dir.latest_run().join("summary.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// The `.out` lines of every instance (local runs: localhost/node001).
fn outputs(dir: &Dir, n: u64) -> Vec<Vec<String>> {
    let run = dir.latest_run();
    (1..=n)
        .map(|id| {
            let p = run.join(format!("localhost/node001/{id:05}.out"));
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .lines()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn number_after(lines: &[String], prefix: &str) -> Option<u64> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|r| r.trim().parse().ok())
}

/// Check a finished run from its files: every instance printed its secret
/// and the same total, which is Σ secrets mod `m`; the summary says passed
/// with both benaloh verdicts passing; junit.xml lists them.
fn assert_passed(dir: &Dir, r: &Run, n: u64, m: u64) {
    r.expect_code(0)
        .stderr_has("verdict benaloh/same-total: PASS")
        .stderr_has("verdict benaloh/sum-of-secrets: PASS");
    let outs = outputs(dir, n);
    let mut sum: u128 = 0;
    let mut totals = Vec::new();
    for (i, lines) in outs.iter().enumerate() {
        let s = number_after(lines, "My secret value is ")
            .unwrap_or_else(|| panic!("instance {} printed no secret: {lines:?}\n{r}", i + 1));
        assert!(s < m, "secret {s} of instance {} is not below {m}", i + 1);
        sum += s as u128;
        totals.push(
            number_after(lines, "My computed sum is ")
                .unwrap_or_else(|| panic!("instance {} printed no total: {lines:?}\n{r}", i + 1)),
        );
    }
    let want = (sum % m as u128) as u64;
    assert!(
        totals.iter().all(|&t| t == want),
        "totals {totals:?}, expected {want} everywhere\n{r}"
    );
    let s = summary(dir);
    assert_eq!(s["outcome"], "passed", "{s:#}");
    assert_eq!(s["instances"], n, "{s:#}");
    let verdicts = s["verdicts"].as_array().expect("verdicts");
    let names: Vec<&str> = verdicts.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names, ["benaloh/same-total", "benaloh/sum-of-secrets"]);
    assert!(verdicts.iter().all(|v| v["passed"] == true), "{s:#}");
    assert_eq!(
        verdicts[0]["message"],
        format!("all {n} instances printed {want}")
    );
    let junit = std::fs::read_to_string(dir.latest_run().join("junit.xml")).expect("junit.xml");
    assert!(junit.contains("name=\"benaloh/same-total\""), "{junit}");
    assert!(junit.contains("name=\"benaloh/sum-of-secrets\""), "{junit}");
}

#[test]
fn the_tutorial_scenario_with_5_instances_passes_the_verdict() {
    let dir = Dir::new("benaloh-5");
    let r = run(&dir, &scenarios().join("benaloh.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 5, DEFAULT_MODULUS);
    // the tutorial's lines, and nothing else, on every instance
    for lines in outputs(&dir, 5) {
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("My secret value is "));
        assert!(lines[1].starts_with("My computed sum is "));
    }
}

#[test]
fn six_instances_need_only_the_instance_count_changed() {
    // the tutorial's own conf, with one line changed
    let dir = Dir::new("benaloh-6");
    let conf = std::fs::read_to_string(scenarios().join("benaloh.conf")).unwrap();
    assert!(conf.contains("sync_subscribers_amount = 5"));
    dir.write(
        "benaloh.conf",
        conf.replace("sync_subscribers_amount = 5", "sync_subscribers_amount = 6"),
    );
    dir.write(
        "benaloh.scenario",
        std::fs::read(scenarios().join("benaloh.scenario")).unwrap(),
    );
    let r = run(&dir, &dir.path().join("benaloh.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 6, DEFAULT_MODULUS);
}

#[test]
fn the_committed_six_instance_conf_passes() {
    let dir = Dir::new("benaloh-6-conf");
    let r = run(&dir, &scenarios().join("benaloh_6.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 6, DEFAULT_MODULUS);
}

#[test]
fn automatic_mode_passes() {
    let dir = Dir::new("benaloh-auto");
    let r = run(&dir, &scenarios().join("benaloh_auto.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 5, DEFAULT_MODULUS);
    let scenario = std::fs::read_to_string(scenarios().join("benaloh_auto.scenario")).unwrap();
    assert!(
        scenario
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| !l.contains("share_subset_sum")),
        "automatic mode needs no share_subset_sum line"
    );
}

#[test]
fn fifty_instances_pass() {
    let dir = Dir::new("benaloh-50");
    let r = run(&dir, &scenarios().join("benaloh_50.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 50, DEFAULT_MODULUS);
}

#[test]
fn every_race_forced_by_timing_still_gives_the_right_total() {
    // instance 1 shares last: see the scenario's comments for the races
    let dir = Dir::new("benaloh-races");
    let r = run(&dir, &scenarios().join("benaloh_races.conf"), "0.05", &[]);
    assert_passed(&dir, &r, 5, DEFAULT_MODULUS);
    let err =
        std::fs::read_to_string(dir.latest_run().join("localhost/node001/00002.err")).unwrap();
    assert!(
        err.contains(
            "the subset sum is broadcast once complete (missing local shares from instance 1)"
        ),
        "instance 2 should have waited for instance 1's share:\n{err}"
    );
}

#[test]
fn the_local_conf_uses_its_modulus() {
    let dir = Dir::new("benaloh-local");
    let r = run(&dir, &scenarios().join("benaloh_local.conf"), "0.25", &[]);
    assert_passed(&dir, &r, 5, 1000);
}

#[test]
fn a_missing_share_fails_the_verdict_naming_who_and_what() {
    // instance 5 never shares: nobody can finish, and everybody says why
    let dir = Dir::new("benaloh-lost");
    let scenario = std::fs::read_to_string(scenarios().join("benaloh.scenario")).unwrap();
    assert!(scenario.contains("@30 share_local\n"));
    dir.write(
        "lost.scenario",
        scenario.replace("@30 share_local\n", "@30 share_local {1-4}\n"),
    );
    dir.write(
        "lost.conf",
        "experiment_name = \"lost\"\nscenario_file = lost.scenario\ninstances_to_run = 5\nexperiment_time = 165\n",
    );
    let r = run(&dir, &dir.path().join("lost.conf"), "0.05", &[]);
    assert_ne!(r.code, Some(0), "a failed verdict must fail the run\n{r}");
    let outs = outputs(&dir, 5);
    assert_eq!(
        outs[0].last().unwrap(),
        "My computed sum is unknown: missing local shares from instance 5; missing subset sums from instances 2,3,4"
    );
    assert_eq!(
        outs[4].last().unwrap(),
        "My computed sum is unknown: missing subset sums from instances 1,2,3,4"
    );
    let s = summary(&dir);
    assert_eq!(s["outcome"], "failed", "{s:#}");
    let v = &s["verdicts"][0];
    assert_eq!(v["passed"], false);
    let msg = v["message"].as_str().unwrap();
    assert_eq!(
        msg,
        "instances 1-5 could not compute it: instances 1-4 lack local shares from instance 5; \
         instances 1-5 lack subset sums from instances 1-4"
    );
}

/// Run the tutorial's scenario with `before_share` inserted before
/// `@30 share_local` and `prints` in place of its two print lines, from a
/// temporary directory.
fn faulty_run(dir: &Dir, before_share: &str, prints: &str) -> Run {
    let scenario = std::fs::read_to_string(scenarios().join("benaloh.scenario")).unwrap();
    let print_lines = "@1:30 print_local_value\n@1:30 print_total_sum\n";
    assert!(scenario.contains("@30 share_local\n") && scenario.contains(print_lines));
    let scenario = scenario
        .replace(
            "@30 share_local\n",
            &format!("{before_share}@30 share_local\n"),
        )
        .replace(print_lines, prints);
    dir.write("faulty.scenario", scenario);
    dir.write(
        "faulty.conf",
        "experiment_name = \"faulty\"\nscenario_file = faulty.scenario\ninstances_to_run = 5\nexperiment_time = 165\n",
    );
    run(dir, &dir.path().join("faulty.conf"), "0.05", &[])
}

#[test]
fn packets_delayed_by_the_overlay_still_give_the_right_total() {
    // Instance 1's outgoing datagrams take 20 s: its local shares reach the
    // others at 0:50, after their share_subset_sum (0:45), so they wait and
    // broadcast on arrival; its own subset sum arrives at 1:05.
    let dir = Dir::new("benaloh-delay");
    let r = faulty_run(
        &dir,
        "@25 set_network delay=20 {1}\n",
        "@1:30 print_local_value\n@1:30 print_total_sum\n",
    );
    assert_passed(&dir, &r, 5, DEFAULT_MODULUS);
    for id in 2..=5 {
        let err = std::fs::read_to_string(
            dir.latest_run()
                .join(format!("localhost/node001/{id:05}.err")),
        )
        .unwrap();
        assert!(
            err.contains("broadcast once complete (missing local shares from instance 1)"),
            "instance {id} should have waited for instance 1's delayed share:\n{err}"
        );
    }
}

#[test]
fn lost_local_shares_are_detected_and_a_resend_recovers() {
    // Instance 5 loses everything it sends around share_local: the others
    // never get its local shares (direct messages are not synchronised).
    // At 1:00 everyone says what is missing; instance 5 resends at 1:05 and
    // at 1:30 everyone has the right total.
    let dir = Dir::new("benaloh-loss");
    let r = faulty_run(
        &dir,
        "@25 set_network loss=1 {5}\n@35 set_network loss=0 {5}\n",
        "@1:00 print_total_sum\n@1:05 share_local {5}\n\
         @1:30 print_local_value\n@1:30 print_total_sum\n",
    );
    assert_passed(&dir, &r, 5, DEFAULT_MODULUS);
    let outs = outputs(&dir, 5);
    for (i, lines) in outs.iter().enumerate().take(4) {
        assert!(
            lines[0].starts_with(
                "My computed sum is unknown: missing local shares from instance 5; missing subset sums from instances "
            ),
            "instance {}: {lines:?}",
            i + 1
        );
    }
    assert_eq!(
        outs[4][0],
        "My computed sum is unknown: missing subset sums from instances 1,2,3,4"
    );
}
