//! End-to-end tests of module metrics (plugin-api 1.4) and the statistics'
//! scenario-time base: what the example plugin records (each kind) is what
//! the statistics files and `run.json` hold, computed here from the
//! scenario the test writes, over real UDP and simulated; an undeclared
//! metric fails its instance by module and callback; the walker's rate per
//! scenario second does not depend on `--time-scale`; Benaloh's
//! `time_to_total` observations agree with its instances' event files;
//! `peerlab modules` lists the declarations.
//!
//! Needs `cargo build --workspace` first (scripts/test does it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use peerlab_e2e::{Dir, debug_dir, workspace_plugin, workspace_root};
use peerlab_run::metrics::Histogram;
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One statistics line, as the test reads it.
struct Line {
    t: f64,
    counters: BTreeMap<String, f64>,
    observations: BTreeMap<String, Histogram>,
}

fn stats(run: &Path, host: &str, id: u64) -> Vec<Line> {
    let p = run.join(format!("{host}/node001/{id:05}.stats.jsonl"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            let counters = v["counters"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            let observations = v["observations"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                Histogram::from_base64(v.as_str().unwrap()).unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Line {
                t: v["t"].as_f64().unwrap(),
                counters,
                observations,
            }
        })
        .collect()
}

/// What the scenario has instances do: (scenario time, instances, line).
const RECORDED: &[(f64, &[u64], &str)] = &[
    (0.5, &[1, 2, 3], "bump 2.5"),
    (0.7, &[1], "level 3"),
    (1.3, &[1, 2], "sample 10 20.5"),
    (2.4, &[2], "bump 1"),
    (2.6, &[1, 2, 3], "sample 7"),
    (3.2, &[2], "level 8.25"),
    (3.4, &[3], "bump_peer 4"),
    (3.6, &[3], "sample 0.125 1000 3"),
    (4.5, &[3], "bump 0.5"),
];
const INSTANCES: u64 = 3;

fn metrics_scenario() -> String {
    let mut s = String::from("&module example\n");
    for (t, ids, line) in RECORDED {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        s.push_str(&format!("@{t} {line} {{{}}}\n", ids.join(",")));
    }
    // The example module's verdict wants every instance's total.
    s.push_str("@5 print_total\n@5.5 stop\n");
    s
}

/// What instance `id` recorded, computed from [`RECORDED`]: counters' and
/// gauges' final values, and every observation with its scenario time.
fn expected(id: u64) -> (BTreeMap<String, f64>, Vec<(f64, f64)>) {
    let mut values = BTreeMap::new();
    let mut samples = Vec::new();
    for (t, ids, line) in RECORDED {
        if !ids.contains(&id) {
            continue;
        }
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap();
        let nums: Vec<f64> = words.map(|w| w.parse().unwrap()).collect();
        match verb {
            "bump" => *values.entry("example.bumps".to_string()).or_insert(0.0) += nums[0],
            "level" => {
                values.insert("example.level".to_string(), nums[0]);
            }
            "bump_peer" => {
                *values
                    .entry(format!("example.per_peer/{}", nums[0]))
                    .or_insert(0.0) += 1.0
            }
            "sample" => samples.extend(nums.iter().map(|&v| (*t, v))),
            _ => unreachable!("{verb}"),
        }
    }
    (values, samples)
}

/// Every instance's statistics hold exactly what it recorded: final
/// counters and gauges, and each observation in the line of the interval
/// it was recorded in (`t` in scenario seconds, lines every
/// `stats_interval` = 1). `run.json` lists the declarations.
fn check_recorded_metrics(run: &Path, host: &str) {
    for id in 1..=INSTANCES {
        let lines = stats(run, host, id);
        let (values, samples) = expected(id);
        let last = lines.last().unwrap();
        for (name, v) in &values {
            assert_eq!(last.counters.get(name), Some(v), "instance {id}: {name}");
        }
        let recorded: Vec<&String> = last
            .counters
            .keys()
            .filter(|k| k.starts_with("example."))
            .collect();
        assert_eq!(
            recorded,
            values.keys().collect::<Vec<_>>(),
            "instance {id}: nothing else recorded"
        );
        // Observations: the samples of each interval (prev.t, line.t].
        let mut prev_t = f64::NEG_INFINITY;
        let mut all = Histogram::new();
        for l in &lines {
            let mut want = Histogram::new();
            for &(t, v) in &samples {
                if t > prev_t && t <= l.t {
                    want.record(v).unwrap();
                }
            }
            match l.observations.get("example.latency") {
                Some(h) => {
                    assert_eq!(h, &want, "instance {id}: the line at t={}", l.t);
                    all.merge(h);
                }
                None => assert!(want.is_empty(), "instance {id}: no histogram at t={}", l.t),
            }
            assert!(
                l.observations.keys().all(|k| k == "example.latency"),
                "{:?}",
                l.observations.keys()
            );
            prev_t = l.t;
        }
        let mut want = Histogram::new();
        samples.iter().for_each(|&(_, v)| want.record(v).unwrap());
        assert_eq!(all.count(), samples.len() as u64, "instance {id}");
        assert_eq!(all, want, "instance {id}: every sample, merged");
        // Scenario time: about one line per scenario second up to the stop at 5.5.
        let ts: Vec<f64> = lines.iter().map(|l| l.t).collect();
        assert!(
            (5.4..6.5).contains(&last.t) && lines.len() >= 6 && lines.len() <= 9,
            "instance {id}: lines at {ts:?}"
        );
        for w in ts.windows(2) {
            assert!(w[1] >= w[0], "{ts:?}");
        }
    }
    check_summary(run);
    let record = json(&run.join("run.json"));
    let decls = record["metrics"].as_array().expect("run.json has metrics");
    let find = |name: &str| {
        decls
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {decls:#?}"))
    };
    let lat = find("example.latency");
    assert_eq!(
        (&lat["kind"], &lat["unit"], &lat["module"], &lat["headline"]),
        (
            &Value::from("observation"),
            &Value::from("ms"),
            &Value::from("example"),
            &Value::from(true)
        )
    );
    assert_eq!(find("example.bumps")["kind"], "counter");
    assert_eq!(find("example.level")["kind"], "gauge");
    assert_eq!(find("example.per_peer/*")["kind"], "counter");
    // The host's own and the overlay's, under their historic names: every
    // run declares metrics, so readers know `t` is scenario time.
    assert_eq!(find("metric_errors")["module"], "core");
    assert!(
        decls.iter().all(|d| d["name"] != "bytes_in/*"),
        "no overlay loaded"
    );
}

/// `summary.json`'s `aggregates.metrics` (the report's) against what the
/// instances recorded, computed from [`RECORDED`].
fn check_summary(run: &Path) {
    let summary = json(&run.join("summary.json"));
    let metrics = &summary["aggregates"]["metrics"];
    let finals: Vec<BTreeMap<String, f64>> = (1..=INSTANCES).map(|id| expected(id).0).collect();
    for name in ["example.bumps", "example.level", "example.per_peer/4"] {
        let values: Vec<f64> = finals.iter().filter_map(|f| f.get(name).copied()).collect();
        let m = &metrics[name];
        assert_eq!(m["instances"], values.len() as u64, "{name}: {m:#}");
        let total: f64 = values.iter().sum();
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;
        assert!(close(&m["total"], total), "{name}: total {total}: {m:#}");
        assert!(
            close(
                &m["min"],
                values.iter().copied().fold(f64::INFINITY, f64::min)
            ),
            "{name}: {m:#}"
        );
        assert!(
            close(
                &m["max"],
                values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            ),
            "{name}: {m:#}"
        );
    }
    assert_eq!(metrics["example.bumps"]["kind"], "counter");
    assert_eq!(metrics["example.level"]["kind"], "gauge");
    let samples: Vec<f64> = (1..=INSTANCES)
        .flat_map(|id| expected(id).1.into_iter().map(|(_, v)| v))
        .collect();
    let d = &metrics["example.latency"]["distribution"];
    assert_eq!(d["count"], samples.len() as u64, "{d:#}");
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    // Kept to 3 significant digits and 1/1000 of the unit.
    let near = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= b * 1e-3 + 1e-3;
    assert!(near(&d["min"], min) && near(&d["max"], max), "{d:#}");
    assert!(near(&d["mean"], mean), "mean {mean}: {d:#}");
    assert_eq!(metrics["example.latency"]["instances"], INSTANCES, "{d:#}");
}

fn run_metrics(dir: &Dir, extra: &[&str]) -> PathBuf {
    workspace_plugin("example");
    dir.write("m.scenario", metrics_scenario());
    dir.write(
        "m.conf",
        "experiment_name = metrics\nscenario_file = m.scenario\nstats_interval = 1\n",
    );
    dir.peerlab()
        .args([
            "run",
            "m.conf",
            "--instances",
            "3",
            "--seed",
            "3",
            "--no-plots",
        ])
        .arg("--plugin-path")
        .arg(debug_dir())
        .args(extra)
        .run()
        .expect_code(0);
    dir.latest_run()
}

#[test]
fn recorded_metrics_are_in_the_stats_files_over_udp() {
    let dir = Dir::new("metrics-udp");
    let run = run_metrics(&dir, &["--time-scale", "0.2"]);
    check_recorded_metrics(&run, "localhost");
}

#[test]
fn recorded_metrics_are_in_the_stats_files_in_simulation() {
    let dir = Dir::new("metrics-sim");
    let run = run_metrics(&dir, &["--simulate"]);
    check_recorded_metrics(&run, "simulated");
}

#[test]
fn an_undeclared_metric_fails_its_instance_naming_module_and_callback() {
    workspace_plugin("example");
    let dir = Dir::new("metrics-undeclared");
    dir.write(
        "u.scenario",
        "&module example\n@0.5 misrecord {2}\n@0.6 misrecord {2}\n@0.7 bump\n@1.5 stop\n",
    );
    dir.peerlab()
        .args([
            "run",
            "u.scenario",
            "--instances",
            "2",
            "--simulate",
            "--no-plots",
        ])
        .arg("--plugin-path")
        .arg(debug_dir())
        .run()
        .expect_code(1);
    let run = dir.latest_run();
    let summary = json(&run.join("summary.json"));
    let st = &summary["instance_status"];
    let two = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 2)
        .unwrap();
    let one = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 1)
        .unwrap();
    assert_eq!(one["status"], "finished");
    assert_eq!(two["status"], "failed");
    let error = two["error"].as_str().unwrap();
    assert!(
        error.contains("module `example` recorded metric `bumsp` in callback `misrecord` (")
            // The file the instance read the scenario from (today the run
            // folder's copy, experiment.scenario), then its line.
            && error.contains(".scenario:2): metric `bumsp` is not declared (declared: bumps, level, latency, per_peer/*)"),
        "{error}"
    );
    let err = std::fs::read_to_string(run.join("simulated/node001/00002.err")).unwrap();
    assert_eq!(
        err.lines().filter(|l| l.contains("`bumsp`")).count(),
        1,
        "reported once: {err}"
    );
    // Both refused calls are counted; the declared one still counts.
    let last = stats(&run, "simulated", 2).pop().unwrap();
    assert_eq!(last.counters.get("metric_errors"), Some(&2.0));
    assert_eq!(last.counters.get("example.bumps"), Some(&1.0));
    assert!(!last.counters.keys().any(|k| k.contains("bumsp")));
}

/// The walker's introduction requests per scenario second, summed over
/// instances, between scenario seconds 2 and the last line; and the lines'
/// times.
fn walker_rate(run: &Path, host: &str, n: u64) -> (f64, Vec<f64>) {
    let mut total = 0.0;
    let mut span = 0.0f64;
    let mut last_ts = Vec::new();
    for id in 1..=n {
        let lines = stats(run, host, id);
        let ts: Vec<f64> = lines.iter().map(|l| l.t).collect();
        let from = lines.iter().find(|l| l.t >= 2.0).unwrap_or_else(|| {
            panic!("instance {id}: no line at scenario second 2 or later: {ts:?}")
        });
        let to = lines.last().unwrap();
        let count = |l: &Line| {
            l.counters
                .get("msg_out/introduction-request")
                .copied()
                .unwrap_or(0.0)
        };
        total += count(to) - count(from);
        span = span.max(to.t - from.t);
        last_ts.push(to.t);
    }
    (total / span, last_ts)
}

#[test]
fn walker_rates_per_scenario_second_do_not_depend_on_the_time_scale() {
    let scenario = "&module dispersy\n@@ isolate_community RateTest\n@0 start_session\n@0 introduce_peers\n@12 stop\n";
    let mut rates = Vec::new();
    for scale in ["1.0", "0.1"] {
        let dir = Dir::new("metrics-rate");
        dir.write("r.scenario", scenario);
        dir.peerlab()
            .args([
                "run",
                "r.scenario",
                "--instances",
                "4",
                "--seed",
                "9",
                "--no-plots",
                "--time-scale",
                scale,
            ])
            .run()
            .expect_code(0);
        let run = dir.latest_run();
        let decls = json(&run.join("run.json"))["metrics"].clone();
        let overlay = decls
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "msg_out/*")
            .unwrap_or_else(|| panic!("the overlay's counters are declared: {decls:#}"));
        assert_eq!(
            (&overlay["module"], &overlay["kind"]),
            (&Value::from("dispersy"), &Value::from("counter"))
        );
        let (rate, last_ts) = walker_rate(&run, "localhost", 4);
        // x values are scenario seconds: the last line is at the stop, 12.
        for t in &last_ts {
            assert!(
                (11.5..13.5).contains(t),
                "scale {scale}: last lines at {last_ts:?}"
            );
        }
        let first = stats(&run, "localhost", 1);
        let steps: Vec<f64> = first.windows(2).map(|w| w[1].t - w[0].t).collect();
        assert!(
            first.len() >= 11
                && steps[1..steps.len() - 1]
                    .iter()
                    .all(|d| (0.5..1.5).contains(d)),
            "scale {scale}: one line per scenario second: {:?}",
            first.iter().map(|l| l.t).collect::<Vec<_>>()
        );
        rates.push(rate);
    }
    eprintln!("introduction requests per scenario second at scale 1.0 and 0.1: {rates:?}");
    assert!(rates[0] > 0.5, "the walker walked: {rates:?}");
    let ratio = rates[1] / rates[0];
    assert!(
        (0.8..=1.25).contains(&ratio),
        "introduction requests per scenario second at scale 1.0 and 0.1: {rates:?}"
    );
}

#[test]
fn benaloh_time_to_total_matches_the_instance_event_files() {
    workspace_plugin("benaloh");
    let dir = Dir::new("metrics-benaloh");
    dir.peerlab()
        .arg("run")
        .arg(workspace_root().join("scenarios/benaloh/benaloh.conf"))
        .args(["--simulate", "--seed", "7", "--no-plots", "--output"])
        .arg(dir.path().join("output"))
        .arg("--plugin-path")
        .arg(debug_dir())
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    let scale = json(&run.join("run.json"))["time_scale"].as_f64().unwrap();
    let mut merged = Histogram::new();
    let mut wants = Vec::new();
    for id in 1..=5u64 {
        let ev =
            std::fs::read_to_string(run.join(format!("simulated/node001/{id:05}.events.jsonl")))
                .unwrap();
        let events: Vec<Value> = ev
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let at = |pred: &dyn Fn(&Value) -> bool| {
            events
                .iter()
                .find(|e| pred(e))
                .and_then(|e| e["t"].as_f64())
                .unwrap_or_else(|| panic!("instance {id}: {ev}"))
        };
        let shared = at(&|e| e["kind"] == "command" && e["callback"] == "share_local");
        let known = at(&|e| e["kind"] == "annotation" && e["text"] == "benaloh: total known");
        let want = (known - shared) / scale;
        wants.push(want);
        let lines = stats(&run, "simulated", id);
        let hs: Vec<&Histogram> = lines
            .iter()
            .filter_map(|l| l.observations.get("benaloh.time_to_total"))
            .collect();
        assert_eq!(hs.len(), 1, "instance {id}: one line holds the one sample");
        let got = hs[0].values();
        assert_eq!(got.len(), 1, "instance {id}: {got:?}");
        assert!(
            (got[0].0 - want).abs() <= 0.002 + want * 1e-3,
            "instance {id}: time_to_total {} vs events {want}",
            got[0].0
        );
        merged.merge(hs[0]);
        let last = lines.last().unwrap();
        assert_eq!(last.counters.get("benaloh.local_shares_out"), Some(&4.0));
        assert_eq!(
            last.counters.get("benaloh.broadcast_shares_out"),
            Some(&1.0)
        );
    }
    assert_eq!(merged.count(), 5);
    // The report's aggregate: over every instance's sample.
    let summary = json(&run.join("summary.json"));
    let d = &summary["aggregates"]["metrics"]["benaloh.time_to_total"]["distribution"];
    assert_eq!(d["count"], 5, "{d:#}");
    let max = wants.iter().copied().fold(0.0, f64::max);
    let min = wants.iter().copied().fold(f64::INFINITY, f64::min);
    let near = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 0.002 + b * 1e-3;
    assert!(
        near(&d["max"], max) && near(&d["min"], min),
        "{wants:?}: {d:#}"
    );
}

#[test]
fn peerlab_check_refuses_a_bad_stats_interval_at_its_line() {
    let dir = Dir::new("metrics-check");
    dir.write("s.scenario", "@1 stop\n");
    dir.write(
        "s.conf",
        "experiment_name = s\nscenario_file = s.scenario\nstats_interval = 0.01\n",
    );
    dir.peerlab()
        .args(["check", "s.conf", "--format", "short"])
        .run()
        .expect_code(1)
        .stdout_has("s.conf:3:")
        .stdout_has(
            "bad value for `stats_interval`: expected scenario seconds from 0.1 to 3600, found `0.01`",
        );
    dir.write(
        "s.conf",
        "experiment_name = s\nscenario_file = s.scenario\nstats_interval = 0.5\n",
    );
    dir.peerlab()
        .args(["check", "s.conf", "--format", "short"])
        .run()
        .expect_code(0);
}

#[test]
fn peerlab_modules_lists_each_module_s_metrics_by_full_name() {
    workspace_plugin("example");
    let dir = Dir::new("metrics-modules");
    let run = dir
        .peerlab()
        .args(["modules", "example", "dispersy", "--plugin-path"])
        .arg(debug_dir())
        .run();
    run.expect_code(0)
        .stdout_has("  metrics:\n")
        .stdout_has("example.latency     observation, ms, headline  each `sample` recorded")
        .stdout_has("example.per_peer/*  counter, calls")
        .stdout_has("bytes_in/*   counter, bytes     bytes received, by message type");
}
