//! Snapshot of `summary.json` after post-processing the hand-written tiny
//! fixture (tests/fixtures/tiny: two instances sharing one process, a reset,
//! a garbage line, a half-written last line, a fault, a failed verdict).
//! Refresh with `UPDATE_EXPECT=1 cargo test -p peerlab-report --test report_snapshot`
//! and review the diff: every number in it can be checked by hand against
//! the fixture (the totals are worked out in the comments below).

mod common;

use std::fs;

use peerlab_report::{ReportOptions, process_run};
use serde_json::Value;

#[test]
fn tiny_fixture_summary() {
    let (_tmp, dir) = common::fixture("tiny");
    let original = fs::read_to_string(dir.join("summary.json")).unwrap();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    let text = fs::read_to_string(dir.join("summary.json")).unwrap();
    expect_test::expect_file!["fixtures/tiny.summary.expected.json"].assert_eq(&text);

    // The runner's fields are all there, with the same values.
    let before: Value = serde_json::from_str(&original).unwrap();
    let after: Value = serde_json::from_str(&text).unwrap();
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(&after[k], v, "runner field {k}");
    }

    // Worked out by hand from the fixture:
    // sent: introduction-request 1+1 (instance 1) + 1 (instance 2) = 3, 300 bytes;
    //       share 1 after the reset, +2 = 3, 192 bytes.
    // received: introduction-response 1 (150), introduction-request 2 (200),
    //           share 2+2 (instance 1) + 1 (instance 2) = 5 (320).
    let v: Value = serde_json::from_str(&text).unwrap();
    let a = &v["aggregates"];
    assert_eq!(a["messages"]["sent"]["messages"], 6);
    assert_eq!(a["messages"]["sent"]["bytes"], 492);
    assert_eq!(a["messages"]["received"]["messages"], 8);
    assert_eq!(a["messages"]["received"]["bytes"], 670);
    assert_eq!(a["drops"]["total"], 3);
    // start-experiment first at 0.5, last command (print_sum) at 3.5; time_scale 0.5.
    assert_eq!(a["experiment"]["duration_s"], 3.0);
    assert_eq!(a["experiment"]["duration_scenario_s"], 6.0);
    // One process, two instances: 0.6 CPU seconds, 0.3 each; peak 12288 KiB shared.
    assert_eq!(a["resources"]["cpu_s"], 0.6);
    assert_eq!(a["per_instance"][0]["cpu_s"], 0.3);
    assert_eq!(a["per_instance"][1]["peak_rss_kb"], 12288);
    assert_eq!(a["warnings"]["skipped_lines"], 2);
    assert_eq!(s.skipped_lines, 2);

    // The HTML escapes what instances wrote.
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("<script>"), "an annotation was not escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("tiny/&lt;all&gt; &amp; &quot;quoted&quot;"));
}
