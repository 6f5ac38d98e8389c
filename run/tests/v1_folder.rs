//! The committed run folder `tests/data/run-folder-v1` (peerlab 0.1's
//! format): every record and line in it reads into peerlab-run's types, and
//! writing those types gives the same bytes (the writers have not drifted
//! from what older readers and docs/outputs.md expect).

use std::fs;
use std::path::{Path, PathBuf};

use peerlab_run::layout::{self, InstanceFile, ProcessFile};
use peerlab_run::read::{read_run_record, read_summary};
use peerlab_run::schema::{Counters, EventLine, ResourceLine, StatsLine};
use peerlab_run::write::complete;
use peerlab_run::{EndStatus, RunStatus};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/run-folder-v1")
}

#[test]
fn run_json_and_summary_json_read_and_write_back_byte_for_byte() {
    let dir = folder();
    let record = read_run_record(&dir).unwrap();
    assert_eq!(record.run_id, "0001-benaloh_short");
    assert_eq!(record.instances, 3);
    assert_eq!(record.placement.len(), 3);
    assert_eq!(
        record.sources[0].copy,
        layout::source_copy(0, "benaloh_short.scenario")
    );
    let text = fs::read_to_string(dir.join(layout::RUN_JSON)).unwrap();
    assert_eq!(serde_json::to_string_pretty(&record).unwrap() + "\n", text);

    let summary = read_summary(&dir).unwrap();
    assert_eq!(summary.outcome, Some(RunStatus::Passed));
    assert!(summary.passed());
    assert!(
        summary
            .instance_status
            .iter()
            .all(|s| s.status == EndStatus::Finished)
    );
    assert_eq!(summary.verdicts.len(), 2);
    // The runner's record, completed with the report's aggregates, is the file.
    let text = fs::read_to_string(dir.join(layout::SUMMARY_JSON)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runner = serde_json::to_string_pretty(&summary).unwrap() + "\n";
    assert_eq!(complete(Some(&runner), &value["aggregates"]).unwrap(), text);
    let junit = fs::read_to_string(dir.join(layout::JUNIT_XML)).unwrap();
    assert_eq!(peerlab_run::junit::render(&summary), junit);
}

#[test]
fn every_line_reads_and_writes_back_byte_for_byte() {
    let dir = folder();
    let mut lines = 0;
    for p in &record_placements(&dir) {
        let (host, node, id) = p;
        let read = |f: InstanceFile| fs::read_to_string(dir.join(f.rel(host, *node, *id))).unwrap();
        for line in read(InstanceFile::Stats).lines() {
            let s: StatsLine<Counters> = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), line);
            lines += 1;
        }
        for line in read(InstanceFile::Events).lines() {
            let e: EventLine<'_> = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), line);
            lines += 1;
        }
    }
    let resources =
        fs::read_to_string(dir.join(ProcessFile::Resources.rel("simulated", 1, 1))).unwrap();
    for line in resources.lines() {
        let r: ResourceLine<'_> = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
        lines += 1;
    }
    assert!(lines > 90, "{lines}");
}

fn record_placements(dir: &Path) -> Vec<(String, u32, u32)> {
    read_run_record(dir)
        .unwrap()
        .placement
        .into_iter()
        .map(|p| (p.host, p.node, p.id))
        .collect()
}

#[test]
fn the_crate_uses_std_serde_and_the_histogram_encoding_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        for line in text.lines().map(str::trim_start) {
            let Some(used) = line.strip_prefix("use ") else {
                continue;
            };
            let root = used.split([':', ';', ' ']).next().unwrap();
            assert!(
                // hdrhistogram and base64: the observation histograms' encoding
                // (src/metrics.rs), nothing else.
                [
                    "std",
                    "serde",
                    "serde_json",
                    "hdrhistogram",
                    "base64",
                    "crate",
                    "super",
                    "self"
                ]
                .contains(&root),
                "{}: `{line}` reaches outside std, serde and the histogram encoding",
                path.display()
            );
        }
    }
}

#[test]
fn the_crate_depends_on_serde_and_the_histogram_encoding_only() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let names: Vec<&str> = deps
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
        .collect();
    assert_eq!(
        names,
        vec!["serde", "serde_json", "hdrhistogram", "base64"],
        "the run folder's crate grew a dependency"
    );
}
