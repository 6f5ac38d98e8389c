//! The report still reads a run folder written by peerlab 0.1
//! (`tests/data/run-folder-v1`, committed, never regenerated): everything
//! loads without a warning, the totals add up, and completing its
//! `summary.json` again changes no byte.

mod common;

use std::fs;
use std::path::Path;

use peerlab_report::testing::{check_processed_run, raw_totals};
use peerlab_report::{ReportOptions, history, load, process_run};
use peerlab_run::{EndStatus, RunStatus};

#[test]
fn a_run_folder_of_peerlab_0_1_still_loads_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-benaloh_short");
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/run-folder-v1"),
        &dir,
    );
    let before = fs::read_to_string(dir.join("summary.json")).unwrap();

    let index = load::index(&dir).unwrap();
    assert!(index.warnings.is_empty(), "{:?}", index.warnings);
    let plan = index.plan.as_ref().unwrap();
    assert_eq!(
        (plan.run_id.as_str(), plan.instances),
        ("0001-benaloh_short", 3)
    );
    assert_eq!(
        plan.placement[2].stderr_file(),
        "simulated/node001/process001.stderr"
    );
    let summary = index.summary.as_ref().unwrap();
    assert_eq!(summary.outcome, Some(RunStatus::Passed));
    assert_eq!(
        summary
            .instance_status
            .iter()
            .map(|s| s.status)
            .collect::<Vec<_>>(),
        vec![EndStatus::Finished; 3]
    );
    assert_eq!(index.instances.len(), 3);
    assert_eq!(index.processes.len(), 1);

    let s = process_run(
        &dir,
        &ReportOptions {
            plots: false,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.instances, 3);
    assert_eq!(s.outcome.as_deref(), Some("passed"));
    let after = fs::read_to_string(dir.join("summary.json")).unwrap();
    assert_eq!(
        after, before,
        "reporting the folder again changed summary.json"
    );
    raw_totals(&dir).unwrap();
    // With plots and the page too, every output is there and adds up.
    process_run(&dir, &ReportOptions::default()).unwrap();
    check_processed_run(&dir).unwrap_or_else(|e| panic!("{e:#?}"));

    // `peerlab runs` lists it.
    let runs = history::list_runs(tmp.path()).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.state, history::RunState::Finished("passed".into()));
    assert_eq!(run.experiment.as_deref(), Some("benaloh_short"));
    assert_eq!(run.instances, Some(3));
    assert!(run.has_report);
}
