//! Declared module metrics in the report: on synthetic runs with the five
//! metrics of `SynthSpec::with_module_metrics` (two counters, a gauge, two
//! observations; a reset, a crash and a garbage line), summary.json's
//! `aggregates.metrics`, `timeseries.csv`, `observations.csv` and the
//! plots' data equal what `peerlab_report::testing` recomputes from the
//! raw statistics files; the hook and autoplot work.

mod common;

use std::fs;
use std::path::Path;

use peerlab_report::analyse::Aggregator;
use peerlab_report::plot::{Chart, FigureOptions, figures};
use peerlab_report::synth::{SynthSpec, write_run};
use peerlab_report::testing::{check_metrics, check_processed_run};
use peerlab_report::{ReportOptions, load, process_run};
use serde_json::Value;

fn metrics_run(instances: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = SynthSpec::new(instances).with_module_metrics();
    spec.duration_s = 30;
    spec.crashed = vec![3];
    spec.garbage_line = true;
    spec.reset_at = Some(10);
    write_run(&dir, &spec).unwrap();
    (tmp, dir)
}

#[test]
fn summary_and_csvs_equal_the_statistics_files() {
    for instances in [6, 14] {
        let (_tmp, dir) = metrics_run(instances);
        let s = process_run(&dir, &ReportOptions::default()).unwrap();
        assert_eq!(s.csv.len(), 2);
        let raw = check_metrics(&dir).unwrap_or_else(|p| panic!("{instances}: {p:#?}"));
        assert_eq!(raw.series.len(), 3, "{:?}", raw.series.keys());
        assert_eq!(raw.observations.len(), 2);
        // The other outputs still add up, and every plot has its SVG.
        check_processed_run(&dir).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(s.svgs.len(), s.plots.len());
        // 8 general plots, 3 time plots of counters and gauges, 2 + 2 of
        // observations.
        assert_eq!(s.plots.len(), 8 + 3 + 4, "{:?}", s.plots);

        let v: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let m = &v["aggregates"]["metrics"];
        assert_eq!(m["synth.shares"]["kind"], "counter");
        assert_eq!(m["synth.shares"]["headline"], true);
        assert_eq!(m["synth.rtt"]["unit"], "ms");
        assert_eq!(
            m["synth.time_to_total"]["distribution"]["count"],
            instances - 1
        );
    }
}

#[test]
fn a_check_that_cannot_fail_is_no_check() {
    let (_tmp, dir) = metrics_run(6);
    process_run(&dir, &ReportOptions::default()).unwrap();
    let path = dir.join("summary.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v["aggregates"]["metrics"]["synth.shares"]["total"] = 1.0.into();
    v["aggregates"]["metrics"]["synth.rtt"]["distribution"]["p90"] = 0.5.into();
    fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let csv = fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    fs::write(
        dir.join("timeseries.csv"),
        csv.replacen(",synth.pending,", ",synth.pending,9", 1),
    )
    .unwrap();
    let problems = check_metrics(&dir).unwrap_err();
    for what in [
        "synth.shares total",
        "synth.rtt p90",
        "timeseries.csv: synth.pending",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(what)),
            "{what}: {problems:#?}"
        );
    }
}

/// The figures' data (what the plots draw), from the pipeline's own
/// stages, against the raw files.
#[test]
fn plot_data_equal_the_statistics_files() {
    let (_tmp, dir) = metrics_run(6);
    process_run(&dir, &ReportOptions::default()).unwrap();
    let raw = check_metrics(&dir).unwrap();

    let index = load::index(&dir).unwrap();
    let plan = index.plan.clone().unwrap();
    let mut agg = Aggregator::with_metrics(1.0, plan.metrics.clone(), &plan.run_id);
    for files in &index.instances {
        agg.add_instance(&load::instance(&dir, files));
    }
    let an = agg.finish(Some(&plan), index.summary.as_ref(), &[], vec![], 300);
    let figs = figures(&an, &FigureOptions::default());
    // A few instances: one line per instance, every line's points as recorded.
    let shares = figs
        .iter()
        .find(|f| f.metric.as_deref() == Some("synth.shares") && !f.file.contains("cdf"))
        .unwrap();
    let Chart::Lines(c) = &shares.chart else {
        panic!("not lines")
    };
    assert_eq!(c.x_label, "scenario time (s)");
    assert!(
        c.y_integer,
        "a counter of whole numbers has an integer axis"
    );
    let per = &raw.series["synth.shares"];
    assert_eq!(c.lines.len(), per.len());
    for (line, (id, series)) in c.lines.iter().zip(per) {
        assert_eq!(line.name, format!("instance {id}"));
        assert_eq!(&line.points, series, "instance {id}");
    }
    // The CDF: a step per distinct value of the merged samples, ending at 1.
    let cdf = figs
        .iter()
        .find(|f| f.file == "metric-synth.rtt-cdf.png")
        .unwrap();
    let Chart::Lines(c) = &cdf.chart else {
        panic!("not lines")
    };
    let mut all = peerlab_run::metrics::Histogram::new();
    raw.observations["synth.rtt"]
        .values()
        .for_each(|h| all.merge(h));
    let values = all.values();
    let pts = &c.lines[0].points;
    assert_eq!(pts.len(), 2 * values.len());
    assert_eq!(pts.last().unwrap().1, 1.0);
    assert_eq!(pts.last().unwrap().0, values.last().unwrap().0);
    let mut seen = 0;
    for (i, (v, n)) in values.iter().enumerate() {
        seen += n;
        assert_eq!(pts[2 * i + 1], (*v, seen as f64 / all.count() as f64));
    }
    // Headline metrics come first.
    let order: Vec<&str> = figs.iter().filter_map(|f| f.metric.as_deref()).collect();
    assert_eq!(order[0], "synth.shares");
    assert_eq!(order[1], "synth.time_to_total");
}

#[test]
fn post_process_cmd_runs_after_the_report_and_its_images_join_the_page() {
    let (_tmp, dir) = metrics_run(6);
    // A module's autoplot CSV, in an instance folder.
    let auto = dir.join("localhost/node001/00002/autoplot");
    fs::create_dir_all(&auto).unwrap();
    fs::write(auto.join("queue.csv"), "time,length\n1,3\n2,5\n3,4\n").unwrap();
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><rect width=\"40\" height=\"20\" fill=\"teal\"/></svg>";
    let cmd = format!(
        "test -f summary.json && test -f plots/messages_sent.svg && mkdir -p plots/extra && printf '%s' '{svg}' > plots/extra/mine.svg && echo drew"
    );
    let s = process_run(
        &dir,
        &ReportOptions {
            post_process_cmd: Some(cmd.clone()),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let hook = s.hook.as_ref().unwrap();
    assert!(hook.ok, "{hook:?}");
    assert_eq!(
        fs::read_to_string(dir.join("post_process.log")).unwrap(),
        "drew\n"
    );
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"post-process\""));
    assert!(
        html.contains("data:image/svg+xml;base64,"),
        "the extra image is not in the page"
    );
    assert!(html.contains("plots/extra/mine.svg"));
    assert!(dir.join("plots/autoplot-queue.png").is_file());
    assert!(html.contains("queue (autoplot)"));

    // A failing command is reported with its status, and the report stands.
    let s = process_run(
        &dir,
        &ReportOptions {
            post_process_cmd: Some("echo broken >&2; exit 7".into()),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let hook = s.hook.unwrap();
    assert_eq!((hook.ok, hook.exit_code), (false, Some(7)));
    assert!(
        s.warnings
            .iter()
            .any(|w| w.message.contains("exited with status 7")),
        "{:?}",
        s.warnings
    );
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("exited with status 7"));
    assert!(Path::new(&dir.join("summary.json")).is_file());
}

#[test]
fn runs_without_declared_metrics_get_no_metric_outputs() {
    let (_tmp, dir) = common::small_run();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    assert!(s.csv.is_empty());
    assert!(!dir.join("timeseries.csv").exists());
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(v["aggregates"].get("metrics").is_none());
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!html.contains("<script>"));
}

/// A declared family (`synth.by_parity/*`): each member has its summary
/// and its rows, and the family one figure and one section.
#[test]
fn a_family_gets_a_summary_per_member_and_one_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = SynthSpec::new(4).with_module_metrics();
    spec.duration_s = 20;
    spec.metric_family = true;
    write_run(&dir, &spec).unwrap();
    let s = process_run(&dir, &ReportOptions::default()).unwrap();
    let raw = check_metrics(&dir).unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(raw.series.contains_key("synth.by_parity/even"));
    assert!(raw.series.contains_key("synth.by_parity/odd"));
    let family: Vec<_> = s
        .plots
        .iter()
        .filter(|p| p.to_string_lossy().contains("by_parity"))
        .collect();
    assert_eq!(family.len(), 1, "{:?}", s.plots);
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("id=\"metric-synth-by-parity--\"").count(), 1);
    assert!(html.contains("2 members: synth.by_parity/even, synth.by_parity/odd."));
}

/// A time-scaled run: the statistics are in scenario seconds, the events
/// and resources in wall seconds; the plots put all on scenario time (the
/// annotations where the scenario put them), and rates are per scenario
/// second.
#[test]
fn a_time_scaled_run_is_plotted_on_scenario_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = SynthSpec::new(4).with_module_metrics();
    spec.duration_s = 30;
    spec.time_scale = 0.25;
    write_run(&dir, &spec).unwrap();
    process_run(&dir, &ReportOptions::default()).unwrap();
    check_metrics(&dir).unwrap_or_else(|p| panic!("{p:#?}"));

    let index = load::index(&dir).unwrap();
    let plan = index.plan.clone().unwrap();
    let mut agg = Aggregator::for_run(1.0, Some(&plan), &plan.run_id);
    for files in &index.instances {
        agg.add_instance(&load::instance(&dir, files));
    }
    let processes: Vec<_> = index
        .processes
        .iter()
        .map(|p| load::process(&dir, p))
        .collect();
    let an = agg.finish(Some(&plan), index.summary.as_ref(), &processes, vec![], 300);
    let figs = figures(&an, &FigureOptions::default());
    let Chart::Lines(c) = &figs
        .iter()
        .find(|f| f.file == "metric-synth.shares.png")
        .unwrap()
        .chart
    else {
        panic!("not lines")
    };
    // share_local ran at scenario 0:05 (wall 1.25 s).
    let share = c
        .markers
        .iter()
        .find(|m| m.label.contains("share_local"))
        .unwrap();
    assert_eq!(share.from, 5.0);
    // The x axis spans the scenario's 30 s, not the wall clock's 7.5 s.
    let (a, b) = c.x_range.unwrap();
    assert!(a <= -2.0 && b >= 30.0, "{a}..{b}");
    // CPU is still in % of a core: each synthetic resources line adds
    // 0.025-0.075 CPU seconds, and the lines are 0.25 wall seconds apart
    // (10-30% of a core; per scenario second it would read 2.5-7.5%).
    let Chart::Lines(cpu) = &figs.iter().find(|f| f.file == "cpu.png").unwrap().chart else {
        panic!("not lines")
    };
    let peak = cpu
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    assert!((12.0..=30.0).contains(&peak), "cpu peak {peak}%");
}
