//! Post-processing on a real run (the report crate's own tests use
//! synthetic run folders): the Benaloh experiment, 5 instances, time-scaled;
//! every plot is a real PNG and the summary's totals equal the sums of the
//! instances' statistics files.

use peerlab_e2e::{Dir, workspace_root};

#[test]
fn a_real_benaloh_run_gets_every_plot_and_summary_totals_that_add_up() {
    let dir = Dir::new("report-real");
    let conf = workspace_root().join("scenarios/benaloh/benaloh.conf");
    dir.peerlab()
        .arg("run")
        .arg(&conf)
        .args(["--time-scale", "0.05", "--seed", "4"])
        .run()
        .expect_code(0);
    let run = std::fs::canonicalize(dir.path().join("output/latest")).unwrap();
    let report = peerlab_report::testing::check_processed_run(&run).unwrap_or_else(|problems| {
        panic!("the processed run has problems:\n{}", problems.join("\n"))
    });
    assert_eq!(report.instances, 5);
    assert!(report.plots.len() >= 8, "{:?}", report.plots);
    // 5 instances each share with 4 others, then broadcast: real traffic.
    assert!(report.messages_sent >= 20 + 5, "{report:?}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("benaloh/same-total"),
        "the verdicts are in the report"
    );
}

/// Gumby's `post_process_cmd` through `peerlab run`: it runs in the run
/// folder after the report (summary.json and the plots are there), what it
/// draws under plots/extra/ is in report.html, and a failing command is
/// reported with its status without failing the run.
#[test]
fn post_process_cmd_runs_after_the_report_and_a_failure_does_not_fail_the_run() {
    let dir = Dir::new("post-process");
    dir.write(
        "greet.scenario",
        "&module example\n@0:00.1 greet world\n@0:00.3 stop\n",
    );
    let conf = |cmd: &str| {
        format!(
            "scenario_file = greet.scenario\ninstances_to_run = 2\ntime_scale = 0.3\nverdicts = none\npost_process_cmd = {cmd}\n"
        )
    };
    dir.write(
        "ok.conf",
        conf("\"test -f summary.json && mkdir -p plots/extra && cp plots/peers.svg plots/extra/mine.svg && echo drew $OUTPUT_DIR\""),
    );
    let run = dir.peerlab().args(["run", "ok.conf"]).run();
    run.expect_code(0).stderr_has("post_process_cmd done");
    let latest = std::fs::canonicalize(dir.path().join("output/latest")).unwrap();
    let log = std::fs::read_to_string(latest.join("post_process.log")).unwrap();
    assert_eq!(log.trim(), format!("drew {}", latest.display()));
    let html = std::fs::read_to_string(latest.join("report.html")).unwrap();
    assert!(
        html.contains("plots/extra/mine.svg"),
        "the extra image is not in the page"
    );

    dir.write("bad.conf", conf("\"echo no >&2; exit 4\""));
    let run = dir.peerlab().args(["run", "bad.conf"]).run();
    run.expect_code(0)
        .stderr_has("post_process_cmd `echo no >&2; exit 4` exited with status 4")
        .stderr_has("PASSED");
}
