//! The history page of an output root, `OUTPUT/index.html`, like a CI
//! server's build history: every run (newest first) with its outcome,
//! verdicts, duration, seed, its experiment's headline metric as a
//! sparkline across that experiment's runs, and links to its report, its
//! artifacts and a comparison with the experiment's previous run
//! (`OUTPUT/compare/<run>.html`, written once per run); and every sweep
//! with a link to its report. Rewritten after every run and sweep.
//!
//! Reads run folders through [`crate::collect`] and sweep records through
//! [`crate::folder`]. Must not: change a run folder.

use std::fmt::Write as _;
use std::path::Path;

use crate::aggregate::Group;
use crate::collect::{self, RunValues};
use crate::compare::{self, Set};
use crate::error::Result;
use crate::folder;
use crate::grid::Point;
use crate::svg::{esc, short};

pub const INDEX_HTML: &str = "index.html";
pub const COMPARE_DIR: &str = "compare";

/// The metric a run's sparkline follows: its first headline metric's main
/// figure, else the run's wall time.
pub fn spark_metric(run: &RunValues) -> String {
    for h in &run.headline {
        for stat in ["mean", "total", "p50"] {
            let m = format!("{h}.{stat}");
            if run.values.contains_key(&m) {
                return m;
            }
        }
    }
    "run.duration_s".into()
}

fn sparkline(values: &[Option<f64>], current: usize) -> String {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.len() < 2 {
        return String::new();
    }
    let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (120.0, 22.0);
    let n = values.len().max(2) - 1;
    let xy = |i: usize, v: f64| {
        (
            2.0 + i as f64 / n as f64 * (w - 4.0),
            h - 3.0 - (v - lo) / span * (h - 6.0),
        )
    };
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| xy(i, v)))
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}"><polyline points="{}" fill="none" stroke="#1f77b4"/>"##,
        pts.join(" ")
    );
    if let Some(Some(v)) = values.get(current) {
        let (x, y) = xy(current, *v);
        let _ = write!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="#d62728"/>"##
        );
    }
    s.push_str("</svg>");
    s
}

fn one_run_set(run: &RunValues) -> Set {
    Set {
        label: run.run_id.clone(),
        groups: vec![Group {
            point: Point(Vec::new()),
            runs: vec![run.clone()],
        }],
    }
}

/// Write `root/index.html` (and any missing comparison page).
pub fn write_index(root: &Path) -> Result<()> {
    let runs: Vec<RunValues> = collect::run_dirs(root)
        .iter()
        .filter_map(|d| collect::read_run(d).ok())
        .collect();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>peerlab history</h1>\n<p>{} run(s) in <code>{}</code>, newest first. \
         The sparkline follows the experiment's headline metric (else the run's wall time) over its runs; the red dot is the run.</p>\n",
        runs.len(),
        esc(&root.display().to_string())
    );
    // Sweeps.
    let mut sweeps: Vec<(String, folder::SweepRecord, usize)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join(folder::SWEEPS_DIR)) {
        for e in rd.flatten() {
            if let Ok(rec) = folder::read_record(&e.path()) {
                let (rs, _) = folder::read_runs(&e.path());
                let done = folder::completed(&rec, &rs).len();
                sweeps.push((e.file_name().to_string_lossy().into_owned(), rec, done));
            }
        }
    }
    sweeps.sort_by(|a, b| b.1.created_at.cmp(&a.1.created_at));
    if !sweeps.is_empty() {
        b.push_str("<h2>Sweeps</h2>\n<table><tr><th class=\"l\">sweep</th><th class=\"l\">created</th><th class=\"l\">experiment</th><th class=\"l\">grid</th><th>runs</th></tr>\n");
        for (dir, rec, done) in &sweeps {
            let grid: Vec<String> = rec
                .params
                .iter()
                .map(|p| format!("{}={}", p.key, p.values.join(",")))
                .collect();
            let _ = writeln!(
                b,
                "<tr><td class=\"l\"><a href=\"{}/{}/{}\">{}</a></td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{} × {}</td><td>{done}/{}</td></tr>",
                folder::SWEEPS_DIR,
                esc(dir),
                folder::SWEEP_HTML,
                esc(dir),
                esc(&rec.created_at),
                esc(&rec.experiment),
                esc(&grid.join(" ")),
                rec.repeat,
                rec.jobs.len()
            );
        }
        b.push_str("</table>\n");
    }
    b.push_str("<h2>Runs</h2>\n<table><tr><th class=\"l\">run</th><th class=\"l\">date</th><th class=\"l\">experiment</th><th>seed</th><th>duration</th>\
                <th class=\"l\">outcome</th><th class=\"l\">verdicts</th><th class=\"l\">trend</th><th class=\"l\">links</th></tr>\n");
    let compare_dir = root.join(COMPARE_DIR);
    for (i, run) in runs.iter().enumerate().rev() {
        let same: Vec<(usize, &RunValues)> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.experiment == run.experiment && r.complete())
            .collect();
        let metric = spark_metric(run);
        let values: Vec<Option<f64>> = same
            .iter()
            .map(|(_, r)| r.values.get(&metric).copied())
            .collect();
        let current = same.iter().position(|(j, _)| *j == i).unwrap_or(usize::MAX);
        let spark = sparkline(&values, current);
        let trend = match run.values.get(&metric) {
            Some(v) if !spark.is_empty() => {
                format!("{spark} <small>{} {}</small>", esc(&metric), short(*v))
            }
            _ => String::new(),
        };
        let verdicts: Vec<String> = run
            .values
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("verdict.")?.strip_suffix(".passed")?;
                Some(if *v == 1.0 {
                    format!("<span class=\"pass\">✓ {}</span>", esc(name))
                } else {
                    format!("<span class=\"failed\">✗ {}</span>", esc(name))
                })
            })
            .collect();
        let folder_name = run
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut links = vec![format!("<a href=\"{}/\">files</a>", esc(&folder_name))];
        if run.has_report {
            links.insert(
                0,
                format!("<a href=\"{}/report.html\">report</a>", esc(&folder_name)),
            );
        }
        links.push(format!(
            "<a href=\"{}/summary.json\">summary</a>",
            esc(&folder_name)
        ));
        // The comparison with the experiment's previous complete run.
        let previous = same.iter().rev().find(|(j, _)| *j < i).map(|(_, r)| *r);
        if let Some(prev) = previous.filter(|_| run.complete()) {
            let name = format!("{}.html", run.run_id);
            let page = compare_dir.join(&name);
            if !page.exists() {
                let rows = compare::compare(&one_run_set(prev), &[one_run_set(run)]);
                let html = crate::html::compare_page(
                    &prev.run_id,
                    std::slice::from_ref(&run.run_id),
                    &rows,
                    &[],
                );
                if std::fs::create_dir_all(&compare_dir).is_ok() {
                    let _ = folder::write_file(&page, &html);
                }
            }
            links.push(format!(
                "<a href=\"{COMPARE_DIR}/{}\">vs {}</a>",
                esc(&name),
                esc(&prev.run_id)
            ));
        }
        let outcome = run.outcome.map(|o| o.as_str()).unwrap_or("incomplete");
        let _ = writeln!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l {outcome}\">{outcome}</td><td class=\"l\">{}</td><td class=\"l\">{trend}</td><td class=\"l\">{}</td></tr>",
            esc(&run.run_id),
            esc(&run.started_at.replacen('T', " ", 1)),
            esc(&run.experiment),
            run.seed,
            run.values
                .get("run.duration_s")
                .map(|d| format!("{d:.1} s"))
                .unwrap_or_default(),
            verdicts.join(" "),
            links.join(" · ")
        );
    }
    b.push_str("</table>\n");
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>peerlab history</title><style>\
         body{{font-family:sans-serif;margin:1.5em;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right;vertical-align:middle}}\
         th{{background:#f3f3f3}}.l{{text-align:left}}.passed,.pass{{color:#1a7f37}}.failed,.timed_out,.interrupted,.incomplete{{color:#c62828}}code{{background:#f3f3f3}}</style></head><body>\n{b}</body></html>\n"
    );
    folder::write_file(&root.join(INDEX_HTML), &page)
}
