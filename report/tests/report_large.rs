//! A run of more instances than the page lists (issue 21): the per-instance
//! table is summarised (the lowest and highest instances by the first
//! metric, the unfinished ones) with `per_instance.csv` holding every
//! instance, and `timeseries.csv`, streamed to disk by several loading
//! threads, still holds every instance's rows in instance order. Every
//! expectation is recomputed here from `timeseries.csv` and summary.json,
//! not taken from the report's own code.

use std::collections::BTreeMap;
use std::fs;

use peerlab_report::synth::{SynthSpec, write_run};
use peerlab_report::testing::check_metrics;
use peerlab_report::{ReportOptions, process_run};

const INSTANCES: u32 = 83;

#[test]
fn a_big_run_lists_a_few_instances_and_writes_them_all_to_a_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = SynthSpec::new(INSTANCES).with_module_metrics();
    spec.duration_s = 6;
    spec.setup_s = 1;
    spec.stats_interval_s = 3;
    spec.instances_per_process = INSTANCES;
    spec.crashed = vec![7];
    write_run(&dir, &spec).unwrap();
    let s = process_run(
        &dir,
        &ReportOptions {
            threads: 3,
            // The default is 1000: fewer here, for a quick test.
            page_instances: 60,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.instances, INSTANCES as usize);
    check_metrics(&dir).unwrap_or_else(|p| panic!("{p:#?}"));

    // timeseries.csv: instances in order, each instance's rows together.
    let ts = fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut order = Vec::new();
    let mut shares: BTreeMap<u32, f64> = BTreeMap::new();
    for line in ts.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let id: u32 = f[1].parse().unwrap();
        if order.last() != Some(&id) {
            order.push(id);
        }
        if f[3] == "synth.shares" {
            shares.insert(id, f[4].parse().unwrap());
        }
    }
    assert_eq!(order, (1..=INSTANCES).collect::<Vec<_>>());

    // per_instance.csv: every instance once, its last synth.shares.
    let table = fs::read_to_string(dir.join("per_instance.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..2], ["instance", "status"]);
    assert_eq!(&header[header.len() - 2..], ["out", "err"]);
    let col = header.iter().position(|h| *h == "synth.shares").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), INSTANCES as usize);
    for (i, r) in rows.iter().enumerate() {
        let id: u32 = r[0].parse().unwrap();
        assert_eq!(id, i as u32 + 1);
        assert_eq!(r[col].parse::<f64>().unwrap(), shares[&id], "instance {id}");
        assert_eq!(r[r.len() - 2], format!("localhost/node001/{id:05}.out"));
    }
    assert_eq!(rows[6][1], "crashed");

    // The page: the 25 lowest and 25 highest by synth.shares (the first
    // metric: a headline, first by name) and the crashed one, no others.
    let mut ranked: Vec<(f64, u32)> = shares.iter().map(|(id, v)| (*v, *id)).collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut want: Vec<u32> = ranked[..25]
        .iter()
        .chain(&ranked[ranked.len() - 25..])
        .map(|r| r.1)
        .chain([7])
        .collect();
    want.sort();
    want.dedup();
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    let start = html.find("id=\"per-instance-table\"").unwrap();
    let body = &html[start..start + html[start..].find("</table>").unwrap()];
    let shown: Vec<u32> = body
        .split("<tr><td class=\"num\">")
        .skip(1)
        .map(|r| r[..r.find('<').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(shown, want);
    assert!(html.contains("<a href=\"per_instance.csv\">per_instance.csv</a>"));
    assert!(html.contains(&format!("{INSTANCES} instances: this table shows")));
}
