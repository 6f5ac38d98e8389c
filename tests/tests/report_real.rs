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
    // The plugin's metrics are in the report: its headline time-to-total
    // first, with a CDF, numbers equal to the statistics files.
    let raw = peerlab_report::testing::check_metrics(&run)
        .unwrap_or_else(|p| panic!("the report's metrics:\n{}", p.join("\n")));
    assert_eq!(
        raw.observations["benaloh.time_to_total"].len(),
        5,
        "every instance knew its total"
    );
    assert!(
        run.join("plots/metric-benaloh.time_to_total-cdf.png")
            .is_file()
    );
    let metrics = html.find("id=\"metrics\"").expect("no metrics part");
    let first = html[metrics..].find("<section class=\"metric\"").unwrap() + metrics;
    assert!(
        html[first..].starts_with("<section class=\"metric\" id=\"metric-benaloh-time-to-total\""),
        "the headline metric is not first: {}",
        &html[first..first + 120]
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

/// The example plugin records one metric of each kind (and a family); on a
/// real UDP run and a simulated one, the report's numbers (summary.json's
/// `aggregates.metrics`, timeseries.csv, observations.csv) equal what the
/// scenario had the instances record, worked out here from the scenario
/// alone, and `check_metrics` finds them equal to the raw statistics too.
#[test]
fn module_metrics_reach_the_report_over_udp_and_in_simulation() {
    // (scenario time, instances, command): instance 1 bumps 2.5 then 1
    // (3.5), instance 2 bumps 2.5 (total 6); levels 3 (1) and 8.25 (2); samples 10 and 20.5
    // (1), 7 (1, 2, 3); bump_peer 4 on instance 3.
    let scenario = "&module example\n\
        @0.5 bump 2.5 {1,2}\n\
        @0.7 level 3 {1}\n\
        @1.3 sample 10 20.5 {1}\n\
        @2.4 bump 1 {1}\n\
        @2.6 sample 7 {1,2,3}\n\
        @3.2 level 8.25 {2}\n\
        @3.4 bump_peer 4 {3}\n\
        @5 print_total\n@5.5 stop\n";
    for (name, extra) in [
        ("metrics-report-udp", &["--time-scale", "0.2"][..]),
        ("metrics-report-sim", &["--simulate"][..]),
    ] {
        let dir = Dir::new(name);
        peerlab_e2e::workspace_plugin("example");
        dir.write("m.scenario", scenario);
        dir.write(
            "m.conf",
            "experiment_name = metrics\nscenario_file = m.scenario\nstats_interval = 1\n",
        );
        dir.peerlab()
            .args(["run", "m.conf", "--instances", "3", "--seed", "5"])
            .arg("--plugin-path")
            .arg(peerlab_e2e::debug_dir())
            .args(extra)
            .run()
            .expect_code(0);
        let run = dir.latest_run();
        peerlab_report::testing::check_metrics(&run)
            .unwrap_or_else(|p| panic!("{name}: {}", p.join("\n")));
        peerlab_report::testing::check_processed_run(&run)
            .unwrap_or_else(|p| panic!("{name}: {}", p.join("\n")));

        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        let m = &summary["aggregates"]["metrics"];
        let bumps = &m["example.bumps"];
        assert_eq!(
            (
                &bumps["total"],
                &bumps["min"],
                &bumps["max"],
                &bumps["instances"]
            ),
            (&6.0.into(), &2.5.into(), &3.5.into(), &2.into()),
            "{name}: {bumps}"
        );
        let level = &m["example.level"];
        assert_eq!(
            (&level["total"], &level["max"]),
            (&11.25.into(), &8.25.into()),
            "{name}: {level}"
        );
        assert_eq!(m["example.per_peer/4"]["total"], 1.0, "{name}");
        let d = &m["example.latency"]["distribution"];
        assert_eq!(
            (&d["count"], &d["min"]),
            (&5.into(), &7.0.into()),
            "{name}: {d}"
        );
        // 20.5 ms within the histogram's 0.1%.
        let max = d["max"].as_f64().unwrap();
        assert!((max - 20.5).abs() <= 0.03, "{name}: max {max}");
        assert_eq!(m["example.latency"]["headline"], true);

        // The CSVs, the plots (PNG and SVG) and the page.
        let csv = std::fs::read_to_string(run.join("observations.csv")).unwrap();
        assert!(csv.contains(",all,example.latency,5,7,"), "{name}: {csv}");
        let ts = std::fs::read_to_string(run.join("timeseries.csv")).unwrap();
        let last_bumps = ts
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .rfind(|c| c.len() == 5 && c[1] == "1" && c[3] == "example.bumps")
            .unwrap_or_else(|| panic!("{name}: no example.bumps rows of instance 1"));
        assert_eq!(last_bumps[4], "3.5", "{name}: {last_bumps:?}");
        for f in [
            "metric-example.bumps",
            "metric-example.level",
            "metric-example.latency-cdf",
        ] {
            assert!(
                run.join(format!("plots/{f}.png")).is_file(),
                "{name}: {f}.png"
            );
            assert!(
                run.join(format!("plots/{f}.svg")).is_file(),
                "{name}: {f}.svg"
            );
        }
        let html = std::fs::read_to_string(run.join("report.html")).unwrap();
        assert!(html.contains("id=\"metric-example-latency\""), "{name}");
        let svg = std::fs::read_to_string(run.join("plots/metric-example.bumps.svg")).unwrap();
        assert!(
            svg.contains("scenario time (s)"),
            "{name}: the x axis is not scenario time"
        );
    }
}
