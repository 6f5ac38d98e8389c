//! End-to-end tests of `process_run` on small run folders: every output is
//! written and valid, and the totals match the raw statistics files
//! (checked by `peerlab_report::testing`, which shares no code with the
//! pipeline and can be pointed at any processed run folder).

mod common;

use std::fs;

use peerlab_report::testing::{EXPECTED_PLOTS, check_processed_run, png_size, raw_totals};
use peerlab_report::{ReportError, ReportOptions, process_run};
use serde_json::Value;

#[test]
fn small_run_has_every_plot_and_totals_that_add_up() {
    let (_tmp, dir) = common::small_run();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    assert_eq!(s.instances, 12);
    assert_eq!(s.plots.len(), EXPECTED_PLOTS.len());
    assert_eq!(s.outcome.as_deref(), Some("failed"));
    // The garbage line and the crashed instance's half line.
    assert_eq!(s.skipped_lines, 2, "{:#?}", s.warnings);

    let report = match check_processed_run(&dir) {
        Ok(r) => r,
        Err(problems) => panic!("the processed run has problems:\n{}", problems.join("\n")),
    };
    for (name, w, h) in &report.plots {
        assert_eq!((*w, *h), (1200, 560), "{name}");
    }
    assert_eq!(report.instances, 12);
    // Traffic really was counted (the check compares it to the raw files).
    assert!(report.messages_sent > 1000, "{report:?}");

    // The crashed instance is in the report with a link to its stderr.
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<a href=\"localhost/node001/00003.err\">stderr</a>"),
        "no link to the .err"
    );
    assert!(html.contains("killed by signal 11 (SIGSEGV)"));
}

#[test]
fn the_check_catches_a_total_that_does_not_add_up() {
    let (_tmp, dir) = common::small_run();
    process_run(&dir, &ReportOptions::default()).unwrap();
    let path = dir.join("summary.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let n = v["aggregates"]["messages"]["sent"]["by_type"]["local-share"]["messages"]
        .as_u64()
        .unwrap();
    v["aggregates"]["messages"]["sent"]["by_type"]["local-share"]["messages"] = (n + 1).into();
    fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    fs::write(dir.join("plots/drops.png"), b"not a png").unwrap();
    let problems = check_processed_run(&dir).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("msg_out/local-share")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("drops.png") && p.contains("not a PNG")),
        "{problems:?}"
    );
}

#[test]
fn reprocessing_keeps_the_runner_fields_and_gives_the_same_file() {
    let (_tmp, dir) = common::small_run();
    let original = fs::read_to_string(dir.join("summary.json")).unwrap();
    process_run(&dir, &ReportOptions::default()).unwrap();
    let first = fs::read_to_string(dir.join("summary.json")).unwrap();
    process_run(
        &dir,
        &ReportOptions {
            threads: 1,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let second = fs::read_to_string(dir.join("summary.json")).unwrap();
    assert_eq!(
        first, second,
        "a second report (on one thread) changed summary.json"
    );

    let before: Value = serde_json::from_str(&original).unwrap();
    let after: Value = serde_json::from_str(&first).unwrap();
    let (before, after) = (before.as_object().unwrap(), after.as_object().unwrap());
    for (k, v) in before {
        assert_eq!(after.get(k), Some(v), "runner field {k} changed");
    }
    assert_eq!(after.len(), before.len() + 1);
    assert!(after["aggregates"].is_object());
    // The runner's fields keep their order, aggregates come last.
    let top_keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("  \""))
            .filter_map(|l| l.split_once("\":").map(|(k, _)| k.to_string()))
            .collect()
    };
    let mut expected = top_keys(&original);
    assert!(expected.len() > 5, "{expected:?}");
    expected.push("aggregates".into());
    assert_eq!(top_keys(&first), expected);
}

#[test]
fn over_time_series_are_reduced_to_max_points_and_keep_totals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("long");
    let mut spec = peerlab_report::synth::SynthSpec::new(3);
    spec.duration_s = 1000;
    peerlab_report::synth::write_run(&dir, &spec).unwrap();
    process_run(
        &dir,
        &ReportOptions {
            max_points: 100,
            plots: false,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let ot = &v["aggregates"]["over_time"];
    let t = ot["t"].as_array().unwrap();
    assert!(t.len() <= 100 && t.len() >= 50, "{} points", t.len());
    let step = ot["step_s"].as_f64().unwrap();
    // Rates times the step add back up to the total.
    let rates = ot["messages_sent_per_s"]["broadcast-share"]
        .as_array()
        .unwrap();
    assert_eq!(rates.len(), t.len());
    let sum: f64 = rates.iter().map(|r| r.as_f64().unwrap() * step).sum();
    let total = raw_totals(&dir).unwrap().counters["msg_out/broadcast-share"] as f64;
    // The last point may cover fewer seconds than the step.
    assert!(
        (sum - total).abs() / total < 0.02,
        "sum {sum} vs total {total}"
    );
    assert!(
        !dir.join("report.html").exists(),
        "plots: false still wrote report.html"
    );
}

#[test]
fn a_run_that_recorded_nothing_still_gets_plots_that_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0009-empty");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("run.json"),
        r#"{"run_id": "0009-empty", "experiment": "empty", "instances": 4}"#,
    )
    .unwrap();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    assert_eq!(s.instances, 0);
    assert_eq!(s.plots.len(), EXPECTED_PLOTS.len());
    for p in &s.plots {
        let (w, h) = png_size(&fs::read(p).unwrap()).unwrap();
        assert_eq!((w, h), (1200, 560));
    }
    assert!(
        s.warnings.iter().any(|w| w.file == "summary.json"),
        "{:?}",
        s.warnings
    );
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("the run did not finish"));
    // summary.json now holds only the aggregates; the history calls the run incomplete.
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["aggregates"]
    );
    let runs = peerlab_report::history::list_runs(tmp.path()).unwrap();
    assert_eq!(runs[0].state, peerlab_report::history::RunState::Incomplete);
}

#[test]
fn damaged_files_are_warnings_not_errors() {
    let (_tmp, dir) = common::small_run();
    let node = dir.join("localhost/node001");
    fs::write(
        node.join("00005.stats.jsonl"),
        b"\xff\xfe{\"t\": 1.0\n{{{{\n",
    )
    .unwrap();
    fs::write(node.join("00006.events.jsonl"), "").unwrap();
    fs::remove_file(node.join("00007.stats.jsonl")).unwrap();
    fs::write(
        node.join("process008.resources.jsonl"),
        "{\"t\": \"soon\"}\n",
    )
    .unwrap();
    fs::write(dir.join("run.json"), "{\"run_id\": ").unwrap();
    // A sample a billion seconds from the start would need a billion bins.
    let mut far = fs::read_to_string(node.join("00002.stats.jsonl")).unwrap();
    far.push_str("{\"t\": 1e12, \"counters\": {\"peers\": 1}}\n");
    fs::write(node.join("00002.stats.jsonl"), far).unwrap();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    let text: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    let has = |needle: &str| text.iter().any(|w| w.contains(needle));
    assert!(has("00005.stats.jsonl: not valid UTF-8"), "{text:#?}");
    assert!(has("00005.stats.jsonl:1: malformed line"), "{text:#?}");
    assert!(has("00007.stats.jsonl: missing"), "{text:#?}");
    assert!(
        has("process008.resources.jsonl:1: malformed line"),
        "{text:#?}"
    );
    assert!(has("run.json: malformed JSON"), "{text:#?}");
    assert!(has("within a year of the run's start"), "{text:#?}");
    assert_eq!(s.plots.len(), EXPECTED_PLOTS.len());
}

#[test]
fn a_missing_folder_is_an_error_that_says_what_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let err = process_run(&tmp.path().join("nope"), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReportError::NoRunFolder { .. }));
    assert!(err.to_string().contains("output/latest"), "{err}");
    let err = process_run(tmp.path(), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReportError::NotARun { .. }), "{err}");
}
