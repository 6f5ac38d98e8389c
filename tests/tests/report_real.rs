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
