//! End-to-end tests of network conditions, faults and the simulated
//! network: partitions heal, loss is recovered by catch-up, crashes are
//! reported, and a simulated run repeats byte for byte from its seed.

use std::path::{Path, PathBuf};

use peerlab_e2e::Dir;
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn status(summary: &Value, id: u64) -> (String, String) {
    let s = summary["instance_status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no instance {id} in {summary:#}"));
    (
        s["status"].as_str().unwrap().to_string(),
        s["error"].as_str().unwrap_or_default().to_string(),
    )
}

const PARTITION: &str = "\
&module dispersy
&module gossip
@@ isolate_community PartitionTest
@0 start_session
@0 introduce_peers
@1 partition {1-3} {4-6}
@2 publish
@10 report
@11 heal
@30 report
@31 stop
";

fn check_partition(run: &Path, host: &str) {
    for id in 1..=6u32 {
        let out = lines(&run.join(format!("{host}/node001/{id:05}.out")));
        assert_eq!(
            out,
            [
                "gossip: published 1",
                "gossip: holding 3 rumors",
                "gossip: holding 6 rumors"
            ],
            "instance {id}: its side's 3 rumors during the partition, all 6 after `heal`"
        );
    }
    let events =
        std::fs::read_to_string(run.join(format!("{host}/node001/00001.events.jsonl"))).unwrap();
    assert!(
        events.contains(r#""kind":"fault","text":"partition {1-3} {4-6}""#),
        "{events}"
    );
    assert!(
        events.contains(r#""kind":"fault","text":"heal""#),
        "{events}"
    );
}

#[test]
fn fullsync_messages_cross_a_partition_after_heal_in_simulation() {
    let dir = Dir::new("partition-sim");
    dir.write("p.scenario", PARTITION);
    dir.peerlab()
        .args([
            "run",
            "p.scenario",
            "--instances",
            "6",
            "--simulate",
            "--seed",
            "5",
            "--no-plots",
        ])
        .run()
        .expect_code(0);
    check_partition(&dir.latest_run(), "simulated");
}

#[test]
fn fullsync_messages_cross_a_partition_after_heal_over_udp() {
    let dir = Dir::new("partition-udp");
    dir.write("p.scenario", PARTITION);
    dir.peerlab()
        .args([
            "run",
            "p.scenario",
            "--instances",
            "6",
            "--time-scale",
            "0.2",
            "--no-plots",
        ])
        .run()
        .expect_code(0);
    check_partition(&dir.latest_run(), "localhost");
}

#[test]
fn lossy_delayed_links_still_deliver_every_rumor_through_catch_up() {
    let dir = Dir::new("loss");
    dir.write(
        "l.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community LossTest\n@0 start_session\n@0 introduce_peers\n\
         @1 set_network loss=0.3 delay=20ms jitter=10ms\n@2 publish count=5\n@60 report\n@61 stop\n",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "l.scenario",
            "--instances",
            "8",
            "--time-scale",
            "0.2",
            "--seed",
            "3",
            "--no-plots",
        ])
        .run();
    run.expect_code(0).stderr_has("hold all 40 rumors");
    let summary = json(&dir.latest_run().join("summary.json"));
    // The loss really happened: fewer rumors arrived than were sent, and
    // catch-up filled the gaps.
    let messages = &summary["aggregates"]["messages"];
    let sent = messages["sent"]["by_type"]["rumor"]["messages"]
        .as_u64()
        .unwrap();
    let received = messages["received"]["by_type"]["rumor"]["messages"]
        .as_u64()
        .unwrap();
    assert!(
        received < sent,
        "no rumor was lost ({sent} sent, {received} received)"
    );
    let syncs = messages["sent"]["by_type"]["sync-request"]["messages"]
        .as_u64()
        .unwrap();
    assert!(syncs > 0, "{messages:#}");
    let drops = &summary["aggregates"]["drops"];
    let faults = drops["by_reason"]["network_fault"].as_u64().unwrap_or(0);
    assert!(faults > 0, "injected losses are counted: {drops:#}");
}

#[test]
fn the_gossip_verdict_fails_naming_an_instance_whose_report_is_withheld() {
    let dir = Dir::new("gossip-silent");
    dir.write(
        "g.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community SilentTest\n@0 start_session\n\
         @0 introduce_peers\n@1 publish\n@20 report {1-3}\n@21 stop\n",
    );
    let run = dir
        .peerlab()
        .args(["run", "g.scenario", "--instances", "4", "--simulate"])
        .args(["--seed", "2", "--no-plots"])
        .run();
    run.expect_code(1).stderr_has(
        "verdict gossip/everyone holds every rumor: FAIL — 1 of 4 instances did not report: 4 (no `report` line)",
    );
    let summary = json(&dir.latest_run().join("summary.json"));
    assert_eq!(summary["outcome"], "failed", "{summary:#}");
    for id in 1..=3u64 {
        assert_eq!(
            lines(
                &dir.latest_run()
                    .join(format!("simulated/node001/{id:05}.out"))
            ),
            ["gossip: published 1", "gossip: holding 4 rumors"],
            "the others did get everything"
        );
    }
}

#[test]
fn a_crashed_instance_process_dies_without_a_goodbye() {
    let dir = Dir::new("crash-process");
    dir.write(
        "c.scenario",
        "@0 echo up\n@1 crash {2}\n@1 echo still here\n@2 stop\n",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "c.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.5",
        ])
        .run();
    run.expect_code(1);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    let (st, err) = status(&summary, 2);
    assert_eq!(st, "crashed", "{summary:#}");
    assert!(err.contains("signal 9"), "{err}");
    assert_eq!(status(&summary, 1).0, "finished");
    assert_eq!(lines(&run_dir.join("localhost/node001/00002.out")), ["up"]);
    assert_eq!(
        lines(&run_dir.join("localhost/node001/00001.out")),
        ["up", "still here"]
    );
    let events =
        std::fs::read_to_string(run_dir.join("localhost/node001/00002.events.jsonl")).unwrap();
    assert!(
        events.contains(r#""kind":"fault","text":"crash""#),
        "{events}"
    );
}

#[test]
fn a_crashed_instance_sharing_a_process_is_dropped_and_reported() {
    for (flags, host) in [
        (
            &["--instances-per-process", "3", "--time-scale", "0.5"][..],
            "localhost",
        ),
        (&["--simulate"][..], "simulated"),
    ] {
        let dir = Dir::new("crash-task");
        dir.write(
            "c.scenario",
            "@0 echo up\n@1 crash {2}\n@1 echo still here\n@2 stop\n",
        );
        let run = dir
            .peerlab()
            .args(["run", "c.scenario", "--instances", "3"])
            .args(flags)
            .run();
        run.expect_code(1);
        let run_dir = dir.latest_run();
        let summary = json(&run_dir.join("summary.json"));
        let (st, err) = status(&summary, 2);
        assert_eq!(st, "crashed", "{flags:?}: {summary:#}");
        assert!(err.contains("`crash`"), "{err}");
        assert_eq!(status(&summary, 3).0, "finished", "{flags:?}");
        assert_eq!(
            lines(&run_dir.join(format!("{host}/node001/00002.out"))),
            ["up"]
        );
        assert_eq!(
            lines(&run_dir.join(format!("{host}/node001/00003.out"))),
            ["up", "still here"]
        );
    }
}

/// Every file an instance wrote, by relative path (resources are
/// measurements of this machine, not outputs of the experiment).
fn instance_files(run: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = run.join("simulated/node001");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains("resources"))
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_simulated_run_repeats_byte_for_byte_from_its_seed() {
    let dir = Dir::new("determinism");
    dir.write(
        "d.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community D\n@0 start_session\n@0 introduce_peers max_peers=5\n\
         @1 set_network loss=0.2 jitter=30ms\n@2 publish count=3\n@20 report\n@21 stop\n",
    );
    let args = [
        "run",
        "d.scenario",
        "--instances",
        "20",
        "--simulate",
        "--no-plots",
    ];
    let mut runs = Vec::new();
    // The same seed on one thread and on two: the same outputs.
    for (seed, threads) in [("11", "1"), ("11", "2"), ("12", "2")] {
        dir.peerlab()
            .args(args)
            .args(["--seed", seed, "--threads", threads])
            .run()
            .expect_code(0);
        let run = dir.latest_run();
        let summary = json(&run.join("summary.json"));
        runs.push((instance_files(&run), summary));
    }
    let (a, b, c) = (&runs[0], &runs[1], &runs[2]);
    assert_eq!(
        a.0.len(),
        20 * 4,
        "out, err, stats and events of 20 instances"
    );
    for ((name_a, bytes_a), (name_b, bytes_b)) in a.0.iter().zip(&b.0) {
        assert_eq!(name_a, name_b);
        assert!(
            bytes_a == bytes_b,
            "{name_a} differs between two runs with seed 11 (--threads 1 and 2)"
        );
    }
    assert_eq!(a.1["verdicts"], b.1["verdicts"]);
    assert_eq!(
        a.1["aggregates"]["messages"], b.1["aggregates"]["messages"],
        "message counts are identical"
    );
    assert_ne!(
        a.1["aggregates"]["messages"], c.1["aggregates"]["messages"],
        "another seed takes other random choices"
    );
}

fn benaloh_with(dir: &Dir, extra: &str) -> PathBuf {
    let root = peerlab_e2e::workspace_root().join("scenarios/benaloh");
    let scenario = std::fs::read_to_string(root.join("benaloh.scenario")).unwrap();
    dir.write("lossy.scenario", format!("{scenario}{extra}"));
    dir.write(
        "lossy.conf",
        "experiment_name = \"lossy\"\nscenario_file = lossy.scenario\ninstances_to_run = 8\nexperiment_time = 200\n",
    )
}

#[test]
fn benaloh_under_five_percent_loss_finishes_correctly_when_shares_are_resent() {
    // Every datagram of every instance is lost with p = 0.05. Broadcasts
    // are repaired by catch-up sync; direct local shares are not, so the
    // scenario resends them (share_local is idempotent) before printing.
    let dir = Dir::new("benaloh-loss-ok");
    let conf = benaloh_with(
        &dir,
        "@20 set_network loss=0.05\n@50 share_local\n@60 share_local\n@70 share_local\n",
    );
    let run = dir
        .peerlab()
        .arg("run")
        .arg(&conf)
        .args(["--simulate", "--seed", "21", "--no-plots"])
        .run();
    run.expect_code(0)
        .stderr_has("verdict benaloh/same-total: PASS")
        .stderr_has("verdict benaloh/sum-of-secrets: PASS");
    let summary = json(&dir.latest_run().join("summary.json"));
    let drops = &summary["aggregates"]["messages"];
    let sent = drops["sent"]["messages"].as_u64().unwrap();
    let received = drops["received"]["messages"].as_u64().unwrap();
    assert!(
        received < sent,
        "the loss was real: {sent} sent, {received} received"
    );
}

#[test]
fn benaloh_that_cannot_recover_names_the_missing_shares_in_its_verdict() {
    // Under the same 5% loss, instance 5 loses everything while sharing and
    // nobody resends: its local shares are gone for good.
    let dir = Dir::new("benaloh-loss-missing");
    let conf = benaloh_with(
        &dir,
        "@20 set_network loss=0.05\n@25 set_network loss=1 {5}\n@35 set_network loss=0.05 {5}\n",
    );
    let run = dir
        .peerlab()
        .arg("run")
        .arg(&conf)
        .args(["--simulate", "--seed", "21", "--no-plots"])
        .run();
    run.expect_code(1);
    let summary = json(&dir.latest_run().join("summary.json"));
    let verdicts = summary["verdicts"].as_array().unwrap();
    assert!(
        verdicts.iter().all(|v| v["passed"] == false),
        "{verdicts:#?}"
    );
    let message = verdicts[0]["message"].as_str().unwrap();
    let named = ids_after(message, "lack local shares from ");
    assert!(
        named.contains(&5),
        "the verdict names instance 5's missing shares: {message}"
    );
    let out = lines(&dir.latest_run().join("simulated/node001/00001.out"));
    let last = out.last().unwrap();
    assert!(
        last.starts_with("My computed sum is unknown: missing local shares from"),
        "{out:?}"
    );
    assert!(
        ids_after(last, "missing local shares from ").contains(&5),
        "{last}"
    );
}

/// The ids listed after `prefix` ("instance 5", "instances 1-3,5"), up to `;`.
fn ids_after(text: &str, prefix: &str) -> Vec<u32> {
    let Some(at) = text.find(prefix) else {
        return Vec::new();
    };
    let rest = &text[at + prefix.len()..];
    let list = rest.split(';').next().unwrap_or("");
    let list = list
        .trim_start_matches("instances ")
        .trim_start_matches("instance ");
    let mut ids = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    ids.extend(a..=b);
                }
            }
            None => ids.extend(part.parse::<u32>().ok()),
        }
    }
    ids
}

/// A run of `d.conf` with `--threads threads` that exits with `code`: its
/// instance files and its `run.json`, and what it printed on stderr.
fn threaded(
    dir: &Dir,
    (seed, threads): (&str, &str),
    code: i32,
) -> (Vec<(String, Vec<u8>)>, Value, String) {
    let run = dir
        .peerlab()
        .args(["run", "d.conf", "--simulate", "--no-plots", "--no-verdicts"])
        .args(["--seed", seed, "--threads", threads])
        .run();
    run.expect_code(code);
    let dir = dir.latest_run();
    (
        instance_files(&dir),
        json(&dir.join("run.json")),
        run.stderr.clone(),
    )
}

#[test]
fn a_simulated_run_gives_the_same_bytes_on_one_two_and_three_threads() {
    // The network's own loss and jitter (drawn per sender), the fault
    // model's, a crash and a departure: every instance's files are
    // identical whatever the number of threads.
    let dir = Dir::new("threads-same");
    dir.write(
        "d.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community T\n@0 start_session\n@0 introduce_peers max_peers=4\n\
         @1 set_network loss=0.1 jitter=20ms {1-6}\n@2 publish count=2\n@6 crash {7}\n@8 stop {9}\n@15 report\n@16 stop\n",
    );
    dir.write(
        "d.conf",
        "experiment_name = \"threads\"\nscenario_file = d.scenario\ninstances_to_run = 17\n\
         network_delay = 3ms\nnetwork_jitter = 4ms\nnetwork_loss = 0.15\n",
    );
    // Exit code 1: the crash.
    let (one, record, _) = threaded(&dir, ("5", "1"), 1);
    assert_eq!(
        one.len(),
        17 * 4,
        "out, err, stats and events of 17 instances"
    );
    assert_eq!(record["simulation"]["threads"], 1, "{record:#}");
    for threads in ["2", "3"] {
        let (other, record, stderr) = threaded(&dir, ("5", threads), 1);
        assert_eq!(
            record["simulation"]["threads"].to_string(),
            threads,
            "{record:#}"
        );
        assert!(!stderr.contains("one thread"), "{stderr}");
        assert_eq!(one.len(), other.len());
        for ((name_a, bytes_a), (name_b, bytes_b)) in one.iter().zip(&other) {
            assert_eq!(name_a, name_b);
            assert!(
                bytes_a == bytes_b,
                "{name_a} differs between --threads 1 and --threads {threads}"
            );
        }
    }
    // The network's loss did lose datagrams (the draws were exercised).
    let stats = &one
        .iter()
        .find(|(n, _)| n == "00001.stats.jsonl")
        .unwrap()
        .1;
    assert!(
        String::from_utf8_lossy(stats).contains("drop/network_fault"),
        "instance 1's statistics count lost datagrams"
    );
}

#[test]
fn a_run_over_a_topology_with_bandwidth_limits_is_the_same_on_two_threads() {
    // No link delay of its own: the topology's smallest latency (10 ms
    // inside a region) is the lookahead; upload and download queues only
    // add to it.
    let dir = Dir::new("threads-topology");
    dir.write(
        "d.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community W\n@0 start_session\n@0 introduce_peers max_peers=4\n\
         @1 publish count=3\n@12 report\n@13 stop\n",
    );
    dir.write(
        "d.conf",
        "experiment_name = \"world\"\nscenario_file = d.scenario\ninstances_to_run = 12\n\
         topology = world\nnetwork_up = 200kbit\nnetwork_down = 300kbit\n",
    );
    let (one, _, _) = threaded(&dir, ("8", "1"), 0);
    let (two, record, stderr) = threaded(&dir, ("8", "2"), 0);
    assert_eq!(record["simulation"]["threads"], 2, "{record:#}\n{stderr}");
    assert_eq!(one.len(), 12 * 4);
    for ((name_a, bytes_a), (name_b, bytes_b)) in one.iter().zip(&two) {
        assert_eq!(name_a, name_b);
        assert!(
            bytes_a == bytes_b,
            "{name_a} differs between --threads 1 and --threads 2"
        );
    }
}

#[test]
fn a_simulation_with_nats_runs_on_one_thread_and_says_why() {
    let dir = Dir::new("threads-nat");
    dir.write(
        "d.scenario",
        "&module dispersy\n@@ isolate_community N\n@0 set_bootstrap 10.0.0.1:7000 {2-3}\n@0 start_session\n@5 stop\n",
    );
    dir.write(
        "d.conf",
        "scenario_file = d.scenario\ninstances_to_run = 3\nnat = port_restricted_cone {2-3}\n",
    );
    let (_, record, stderr) = threaded(&dir, ("4", "2"), 0);
    assert!(
        stderr.contains("behind NATs") && stderr.contains("one thread, not 2"),
        "{stderr}"
    );
    let sim = &record["simulation"];
    assert_eq!(
        (sim["threads_requested"].as_u64(), sim["threads"].as_u64()),
        (Some(2), Some(1)),
        "{record:#}"
    );
    assert!(
        sim["single_threaded_because"]
            .as_str()
            .is_some_and(|s| s.contains("NAT")),
        "{record:#}"
    );
}

#[test]
fn a_simulation_whose_datagrams_can_arrive_at_once_runs_on_one_thread_and_says_why() {
    let dir = Dir::new("threads-no-delay");
    dir.write(
        "d.scenario",
        "&module dispersy\n@@ isolate_community Z\n@0 start_session\n@0 introduce_peers\n@3 stop\n",
    );
    dir.write(
        "d.conf",
        "scenario_file = d.scenario\ninstances_to_run = 3\nnetwork_delay = 0\n",
    );
    let (_, record, stderr) = threaded(&dir, ("4", "2"), 0);
    assert!(
        stderr.contains("network_delay = 0") && stderr.contains("one thread, not 2"),
        "{stderr}"
    );
    assert_eq!(record["simulation"]["threads"], 1, "{record:#}");
}
