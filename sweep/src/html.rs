//! The sweep report (`sweep.html`) and the compare page: one
//! self-contained HTML file each (inline CSS and SVG, no script, no
//! network), linking each run's own report by a relative path.
//!
//! Pure: rows in, text out. Must not: read files or compute statistics.

use std::fmt::Write as _;
use std::path::Path;

use crate::aggregate::{Cell, Group};
use crate::compare::Row;
use crate::folder::{RUNS_CSV, SWEEP_CSV, SweepRecord};
use crate::grid::Point;
use crate::svg::{self, Mark, Series, esc, short};

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.fail{background:#fde2e2}.sig{font-weight:bold}\
.charts{display:flex;flex-wrap:wrap;gap:10px}code{background:#f3f3f3;padding:1px 3px}";

/// Most charts a page draws (the CSV has every metric).
pub const MAX_CHARTS: usize = 24;

/// The metrics worth a chart, most telling first: the modules' headline
/// metrics, then the run's own figures, then other module metrics.
pub fn chart_metrics(metrics: &[String], headline: &[String]) -> Vec<String> {
    let stat_ok = |m: &str| {
        matches!(
            m.rsplit('.').next(),
            Some("mean" | "p50" | "p99" | "total" | "rate_per_s" | "max")
        )
    };
    let mut out: Vec<String> = Vec::new();
    let add = |m: &String, out: &mut Vec<String>| {
        if !out.contains(m) && out.len() < MAX_CHARTS {
            out.push(m.clone());
        }
    };
    for h in headline {
        for m in metrics {
            if m.strip_prefix(h.as_str())
                .is_some_and(|s| s.starts_with('.'))
                && stat_ok(m)
            {
                add(m, &mut out);
            }
        }
    }
    for fixed in [
        "run.passed",
        "run.duration_s",
        "experiment.duration_scenario_s",
        "messages.sent.messages",
        "messages.sent.bytes",
        "resources.cpu_s",
        "resources.peak_rss_kb",
    ] {
        if let Some(m) = metrics.iter().find(|m| *m == fixed) {
            add(m, &mut out);
        }
    }
    let own = [
        "run.",
        "verdict.",
        "messages.",
        "stats.",
        "drops.",
        "resources.",
        "experiment.",
    ];
    for m in metrics {
        if !own.iter().any(|p| m.starts_with(p)) && !m.contains('/') && stat_ok(m) {
            add(m, &mut out);
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n{body}</body></html>\n",
        esc(title)
    )
}

/// A point's mean ± half-interval.
fn cell_text(c: &Cell) -> String {
    match c.stats.ci95 {
        Some((lo, hi)) => format!(
            "{} ± {} <small>(n={})</small>",
            short(c.stats.mean),
            short((hi - lo) / 2.0),
            c.stats.n
        ),
        None => format!("{} <small>(n={})</small>", short(c.stats.mean), c.stats.n),
    }
}

/// Charts of `metric` against each swept key, one line per combination of
/// the other keys.
fn sweep_charts(record: &SweepRecord, cells: &[Cell], metric: &str) -> Vec<(String, String)> {
    let keys = record.keys();
    let mine: Vec<&Cell> = cells.iter().filter(|c| c.metric == metric).collect();
    let mut out = Vec::new();
    let xs: Vec<&String> = if keys.is_empty() {
        Vec::new()
    } else {
        keys.iter().collect()
    };
    for x in xs {
        let others: Vec<&str> = keys
            .iter()
            .filter(|k| *k != x)
            .map(|k| k.as_str())
            .collect();
        let mut series: Vec<Series> = Vec::new();
        for c in &mine {
            let rest = c.point.without(&[x.as_str()]);
            let name = if others.is_empty() {
                "mean ± 95% CI".to_string()
            } else {
                rest.to_string()
            };
            let mark = Mark {
                x: c.point.get(x).unwrap_or_default().to_string(),
                y: c.stats.mean,
                ci: c.stats.ci95,
            };
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.marks.push(mark),
                None => series.push(Series {
                    name,
                    marks: vec![mark],
                }),
            }
        }
        out.push((
            x.clone(),
            svg::line_chart(&format!("{metric} vs {x}"), x, metric, &series),
        ));
    }
    out
}

/// One chart of the sweep: a metric against a swept key.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub metric: String,
    pub key: String,
    pub svg: String,
}

impl Chart {
    /// A file name for it: `<metric>--vs--<key>.svg` (`/` made `_`).
    pub fn file_name(&self) -> String {
        format!("{}--vs--{}.svg", self.metric, self.key).replace(['/', '\\'], "_")
    }
}

/// Every chart of the sweep's report (key metrics against each swept key).
pub fn charts(record: &SweepRecord, groups: &[Group], cells: &[Cell]) -> Vec<Chart> {
    let metric_list = crate::aggregate::metric_names(groups);
    let headline: Vec<String> = groups
        .iter()
        .flat_map(|g| &g.runs)
        .flat_map(|r| r.headline.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for m in chart_metrics(&metric_list, &headline) {
        for (key, svg) in sweep_charts(record, cells, &m) {
            out.push(Chart {
                metric: m.clone(),
                key,
                svg,
            });
        }
    }
    out
}

/// `sweep.html`.
pub fn sweep_page(
    record: &SweepRecord,
    groups: &[Group],
    cells: &[Cell],
    missing: usize,
    sweep_dir: &Path,
) -> String {
    let mut b = String::new();
    let total = record.jobs.len();
    let done: usize = groups.iter().map(|g| g.runs.len()).sum();
    let failed: usize = groups
        .iter()
        .flat_map(|g| &g.runs)
        .filter(|r| r.outcome != Some(peerlab_run::RunStatus::Passed))
        .count();
    let _ = write!(
        b,
        "<h1>Sweep {}</h1>\n<p>Experiment <code>{}</code> ({}), {} grid point(s) × {} repetition(s), base seed {}{}.</p>\n\
         <p>Command: <code>{}</code></p>\n<p>{done} of {total} runs complete ({failed} not passed){}. \
         Data: <a href=\"{SWEEP_CSV}\">{SWEEP_CSV}</a> (mean, sd, 95% CI per point and metric), \
         <a href=\"{RUNS_CSV}\">{RUNS_CSV}</a> (every run's values).</p>\n",
        esc(&record.name),
        esc(&record.experiment),
        esc(&record.experiment_path.display().to_string()),
        record.points().len(),
        record.repeat,
        record.base_seed,
        if record.simulate { ", simulated" } else { "" },
        esc(&record.command),
        if missing > 0 {
            format!("; {missing} missing: run the same command again to finish")
        } else {
            String::new()
        },
    );
    for p in &record.params {
        let _ = writeln!(
            b,
            "<p>Swept <code>{}</code>: {}</p>",
            esc(&p.key),
            esc(&p.values.join(", "))
        );
    }
    let metric_list: Vec<String> = crate::aggregate::metric_names(groups);
    let headline: Vec<String> = groups
        .iter()
        .flat_map(|g| &g.runs)
        .flat_map(|r| r.headline.iter().cloned())
        .collect();
    let charted = chart_metrics(&metric_list, &headline);
    b.push_str("<p>Error bars: 95% confidence interval of the mean over repetitions (Student's t; bootstrap for percentiles, minima and maxima).</p>\n");
    if !record.params.is_empty() {
        b.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
        for c in charts(record, groups, cells) {
            b.push_str(&c.svg);
            b.push('\n');
        }
        b.push_str("</div>\n");
    }
    b.push_str("<h2>Per grid point</h2>\n<table><tr><th class=\"l\">point</th>");
    for m in &charted {
        let _ = write!(b, "<th>{}</th>", esc(m));
    }
    b.push_str("</tr>\n");
    for g in groups {
        let _ = write!(b, "<tr><td class=\"l\">{}</td>", esc(&g.point.to_string()));
        for m in &charted {
            let c = cells.iter().find(|c| c.point == g.point && &c.metric == m);
            let _ = write!(b, "<td>{}</td>", c.map(cell_text).unwrap_or_default());
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</table>\n<h2>Runs</h2>\n<table><tr><th class=\"l\">job</th><th class=\"l\">point</th><th>seed</th><th class=\"l\">outcome</th><th class=\"l\">run</th></tr>\n");
    for j in &record.jobs {
        let run = groups
            .iter()
            .flat_map(|g| &g.runs)
            .find(|r| r.seed == j.seed);
        let (outcome, link) = match run {
            Some(r) => {
                let rel = r
                    .dir
                    .strip_prefix(sweep_dir)
                    .unwrap_or(&r.dir)
                    .to_string_lossy()
                    .into_owned();
                let target = if r.has_report {
                    format!("{rel}/report.html")
                } else {
                    rel.clone()
                };
                (
                    r.outcome
                        .map(|o| o.as_str())
                        .unwrap_or("unknown")
                        .to_string(),
                    format!("<a href=\"{}\">{}</a>", esc(&target), esc(&r.run_id)),
                )
            }
            None => ("missing".into(), String::new()),
        };
        let _ = writeln!(
            b,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{outcome}</td><td class=\"l\">{link}</td></tr>",
            esc(&j.key),
            esc(&j.point.to_string()),
            j.seed
        );
    }
    b.push_str("</table>\n");
    page(&format!("Sweep {}", record.name), &b)
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "&lt;0.001".into(),
        Some(p) => format!("{p:.3}"),
        None => "–".into(),
    }
}

/// The compare page: overlaid charts and the table of differences.
/// `failing` marks the rows a `--fail-if` condition holds for.
pub fn compare_page(base: &str, others: &[String], rows: &[Row], failing: &[bool]) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Compare</h1>\n<p>Baseline: <code>{}</code>; compared: {}.</p>\n\
         <p>p-values: Welch's t-test and Mann–Whitney U (two-sided) over the repetitions; – where a side has fewer than 2 runs. \
         Bold: significant at 5% (Welch).</p>\n",
        esc(base),
        others
            .iter()
            .map(|o| format!("<code>{}</code>", esc(o)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let metrics: Vec<String> = {
        let mut m: Vec<String> = rows.iter().map(|r| r.metric.clone()).collect();
        m.dedup();
        m.sort();
        m.dedup();
        m
    };
    let charted = chart_metrics(&metrics, &[]);
    b.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    for m in &charted {
        let mut series: Vec<Series> = Vec::new();
        let point_name = |p: &Point| {
            if p.0.is_empty() {
                "all".to_string()
            } else {
                p.to_string()
            }
        };
        let ci = |v: &[f64]| crate::stats::t_interval(v);
        for r in rows.iter().filter(|r| &r.metric == m) {
            let x = point_name(&r.point);
            let base_mark = Mark {
                x: x.clone(),
                y: r.base.mean,
                ci: ci(&r.base.values),
            };
            let new_mark = Mark {
                x,
                y: r.new.mean,
                ci: ci(&r.new.values),
            };
            for (name, mark) in [(base.to_string(), base_mark), (r.other.clone(), new_mark)] {
                match series.iter_mut().find(|s| s.name == name) {
                    Some(s) => {
                        if !s.marks.iter().any(|k| k.x == mark.x) {
                            s.marks.push(mark)
                        }
                    }
                    None => series.push(Series {
                        name,
                        marks: vec![mark],
                    }),
                }
            }
        }
        b.push_str(&svg::line_chart(m, "grid point", m, &series));
        b.push('\n');
    }
    b.push_str("</div>\n<h2>Differences</h2>\n<table><tr><th class=\"l\">metric</th><th class=\"l\">point</th><th class=\"l\">compared</th>\
                <th>baseline mean (n)</th><th>mean (n)</th><th>difference</th><th>change</th><th>p Welch</th><th>p Mann–Whitney</th></tr>\n");
    for (i, r) in rows.iter().enumerate() {
        let class = if failing.get(i).copied().unwrap_or(false) {
            " class=\"fail\""
        } else if r.significant() == Some(true) {
            " class=\"sig\""
        } else {
            ""
        };
        let _ = writeln!(
            b,
            "<tr{class}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{} ({})</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.metric),
            esc(&r.point.to_string()),
            esc(&r.other),
            short(r.base.mean),
            r.base.n,
            short(r.new.mean),
            r.new.n,
            short(r.diff),
            r.rel
                .map(|x| format!("{:+.1}%", x * 100.0))
                .unwrap_or_else(|| "–".into()),
            p_text(r.p_welch),
            p_text(r.p_mann_whitney)
        );
    }
    b.push_str("</table>\n");
    page("Compare", &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_metrics_come_first_and_families_stay_out() {
        let ms: Vec<String> = [
            "bytes_in/x.total",
            "gossip.received.total",
            "benaloh.time_to_total.p99",
            "benaloh.time_to_total.count",
            "run.duration_s",
            "verdict.a.passed",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = chart_metrics(&ms, &["benaloh.time_to_total".into()]);
        assert_eq!(
            c,
            [
                "benaloh.time_to_total.p99",
                "run.duration_s",
                "gossip.received.total"
            ]
        );
    }
}
