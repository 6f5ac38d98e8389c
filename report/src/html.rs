//! `report.html`: one self-contained page (styles inline, plots embedded as
//! `data:` URIs, nothing fetched from the network) with the run's summary,
//! verdicts, failed instances, the declared metrics (headline ones first:
//! a summary table, each metric's plots and percentiles, a sortable
//! per-instance table), the plot gallery, what `post_process_cmd` drew and
//! the annotation table. Pure: plain data in, a `String` out. The only
//! script is the per-instance table's sorting, written only when that
//! table is (the page reads the same without it).
//!
//! Everything interpolated goes through [`esc`] (text and attributes) or
//! [`href`] (links, which must stay relative to the run folder).

use std::fmt::Write;

use base64::Engine;

use crate::analyse::Aggregates;
use crate::error::Warning;
use crate::hook::HookOutcome;
use crate::load::ExtraImage;
use crate::metrics::Metrics;
use crate::plot::{Figure, human_bytes};
use peerlab_run::{EndStatus, RunRecord, Summary};

/// At most this many warnings are listed on the page.
const LISTED_WARNINGS: usize = 50;
/// At most this many failed instances get a row each.
const LISTED_FAILURES: usize = 200;

/// What the page shows.
pub struct Page<'a> {
    /// The run folder's name, a fallback title.
    pub folder_name: &'a str,
    pub plan: Option<&'a RunRecord>,
    pub summary: Option<&'a Summary>,
    pub aggregates: &'a Aggregates,
    /// The declared metrics, headline ones first.
    pub metrics: &'a Metrics,
    /// Each figure with its PNG bytes and its SVG.
    pub figures: &'a [(Figure, Vec<u8>, String)],
    /// All warnings (the page lists the first few).
    pub warnings: &'a [Warning],
    /// Relative `.err` path of each instance the loader found, for links
    /// when the runner's summary does not name them.
    pub err_files: &'a [(u32, String)],
    /// Relative `.out` path of each instance the loader found.
    pub out_files: &'a [(u32, String)],
    /// `(instance, its process's stderr file)` for the files that exist.
    pub process_stderr: &'a [(u32, String)],
    /// How `post_process_cmd` ended, when one ran.
    pub hook: Option<&'a HookOutcome>,
    /// Images `post_process_cmd` wrote under `plots/extra/`.
    pub extras: &'a [ExtraImage],
    /// Up to this many instances the per-instance table lists every one.
    pub page_instances: usize,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative link inside the run folder, percent-encoded; `None` for
/// anything absolute, with a scheme, or climbing out with `..`.
pub fn href(path: &str) -> Option<String> {
    if path.is_empty() || path.starts_with('/') || path.contains(':') || path.contains('\\') {
        return None;
    }
    if path.split('/').any(|seg| seg == "..") {
        return None;
    }
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into())
}

fn secs(v: f64) -> String {
    if v.abs() >= 120.0 {
        let m = (v / 60.0).floor();
        format!("{v:.1} s ({m:.0} min {:.0} s)", v - m * 60.0)
    } else {
        format!("{v:.1} s")
    }
}

/// Renders the page.
pub fn render(p: &Page<'_>) -> String {
    let a = p.aggregates;
    // The runner's fields, when the runner wrote them (it always writes
    // `outcome`; a file post-processing wrote alone has none).
    let s = p.summary.filter(|s| s.outcome.is_some());
    let plan = p.plan;
    let text = |v: &String| (!v.is_empty()).then(|| v.clone());
    let run_id = s
        .and_then(|s| text(&s.run_id))
        .or_else(|| plan.and_then(|pl| text(&pl.run_id)))
        .unwrap_or_else(|| p.folder_name.to_string());
    let experiment = s
        .and_then(|s| text(&s.experiment))
        .or_else(|| plan.and_then(|pl| text(&pl.experiment)));
    let outcome = s.and_then(|s| s.outcome).map(|o| o.as_str());

    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>peerlab report: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
        esc(&run_id),
        CSS
    );
    let _ = writeln!(h, "<h1>peerlab report: {}</h1>", esc(&run_id));

    // The summary table.
    let outcome_cell = match outcome {
        Some("passed") => "<span class=\"pass\">passed</span>".to_string(),
        Some(o) => format!("<span class=\"fail\">{}</span>", esc(o)),
        None => "<span class=\"warn\">unknown: the run did not finish (no summary.json)</span>"
            .to_string(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("Run", esc(&run_id)),
        ("Experiment", esc(&opt(experiment.as_deref()))),
        ("Outcome", outcome_cell),
        (
            "Seed",
            esc(&opt(s.map(|s| s.seed).or(plan.map(|pl| pl.seed)))),
        ),
        (
            "Instances",
            format!(
                "{} planned, {} with statistics",
                esc(&opt(s.map(|s| s.instances).or(plan.map(|pl| pl.instances)))),
                a.instances_seen
            ),
        ),
        (
            "Nodes",
            esc(&opt(s.map(|s| s.nodes).or(plan.map(|pl| pl.nodes)))),
        ),
        (
            "Runner",
            esc(&opt(s
                .and_then(|s| text(&s.runner))
                .or(plan.and_then(|pl| text(&pl.runner))))),
        ),
        (
            "Started",
            esc(&opt(s
                .and_then(|s| text(&s.started_at))
                .or(plan.and_then(|pl| text(&pl.created_at))))),
        ),
        ("Ended", esc(&opt(s.and_then(|s| text(&s.ended_at))))),
        (
            "Duration",
            s.map(|s| s.duration_s)
                .map(secs)
                .unwrap_or_else(|| "unknown".into()),
        ),
    ];
    if s.is_some_and(|s| s.timed_out) {
        rows.push(("Timed out", "<span class=\"fail\">yes</span>".into()));
    }
    let exp = &a.experiment;
    rows.push((
        "Experiment time",
        match (exp.start_experiment_t, exp.last_command_t, exp.duration_s) {
            (Some(st), Some(last), Some(d)) => {
                format!(
                    "{} (start-experiment at {st:.1} s, last scenario command at {last:.1} s)",
                    secs(d)
                )
            }
            (None, _, _) => "unknown: no instance annotated start-experiment".into(),
            _ => "unknown: no scenario command was recorded".into(),
        },
    ));
    let m = &a.messages;
    rows.push((
        "Messages",
        format!(
            "{} sent ({}), {} received ({}), {} dropped",
            m.sent.messages,
            human_bytes(m.sent.bytes as f64),
            m.received.messages,
            human_bytes(m.received.bytes as f64),
            a.drops.total
        ),
    ));
    rows.push((
        "Resources",
        format!(
            "{:.1} CPU seconds in {} processes, peak resident memory {}",
            a.resources.cpu_s,
            a.resources.processes.len(),
            a.resources
                .peak_rss_kb
                .map(|k| human_bytes(k as f64 * 1024.0))
                .unwrap_or_else(|| "unknown".into())
        ),
    ));
    if !a.instance_status.is_empty() {
        let list: Vec<String> = a
            .instance_status
            .iter()
            .map(|(st, n)| {
                let class = if st == "finished" { "pass" } else { "fail" };
                format!("<span class=\"{class}\">{n} {}</span>", esc(st))
            })
            .collect();
        rows.push(("Instance status", list.join(", ")));
    }
    h.push_str("<h2>Summary</h2>\n<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), v);
    }
    h.push_str("</table>\n");

    // Verdicts.
    h.push_str("<h2>Verdicts</h2>\n");
    match s.map(|s| &s.verdicts) {
        Some(v) if !v.is_empty() => {
            h.push_str("<table>\n<tr><th>Verdict</th><th>Result</th><th>Message</th></tr>\n");
            for d in v {
                let (class, word) = if d.skipped {
                    ("muted", "skipped")
                } else if d.passed {
                    ("pass", "passed")
                } else {
                    ("fail", "failed")
                };
                let _ = writeln!(
                    h,
                    "<tr class=\"{class}-row\"><td>{}</td><td><span class=\"{class}\">{word}</span></td><td>{}</td></tr>",
                    esc(&d.name),
                    esc(&d.message)
                );
            }
            h.push_str("</table>\n");
        }
        _ => h.push_str("<p class=\"muted\">No verdicts were recorded.</p>\n"),
    }

    // Failed instances, with links to their error output.
    let failed: Vec<_> = s
        .map(|s| {
            s.instance_status
                .iter()
                .filter(|i| i.status != EndStatus::Finished)
                .collect()
        })
        .unwrap_or_default();
    if !failed.is_empty() {
        let _ = writeln!(h, "<h2>Failed instances ({})</h2>", failed.len());
        h.push_str("<table>\n<tr><th>Instance</th><th>Where</th><th>Status</th><th>Exit</th><th>Error</th><th>Output</th></tr>\n");
        for i in failed.iter().take(LISTED_FAILURES) {
            let rel = |p: &std::path::Path| {
                (!p.as_os_str().is_empty()).then(|| p.to_string_lossy().into_owned())
            };
            let out = rel(&i.out);
            let err = rel(&i.err).or_else(|| {
                p.err_files
                    .iter()
                    .find(|(id, _)| *id == i.id)
                    .map(|(_, f)| f.clone())
            });
            let process = p
                .process_stderr
                .iter()
                .find(|(id, _)| *id == i.id)
                .map(|(_, f)| f.as_str());
            let mut links = Vec::new();
            for (label, path) in [
                ("stderr", err.as_deref()),
                ("stdout", out.as_deref()),
                ("process stderr", process),
            ] {
                if let Some(url) = path.and_then(href) {
                    links.push(format!("<a href=\"{}\">{label}</a>", esc(&url)));
                }
            }
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td><span class=\"fail\">{}</span></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                i.id,
                esc(&format!(
                    "{}/node{:03}",
                    if i.host.is_empty() { "?" } else { &i.host },
                    i.node
                )),
                esc(i.status.as_str()),
                esc(&i.exit_code.map(|c| c.to_string()).unwrap_or_default()),
                esc(i.error.as_deref().unwrap_or("")),
                links.join(" ")
            );
        }
        h.push_str("</table>\n");
        if failed.len() > LISTED_FAILURES {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} more not listed; see summary.json.</p>",
                failed.len() - LISTED_FAILURES
            );
        }
    }

    crate::html_metrics::metrics_section(&mut h, p);

    // Plots.
    h.push_str("<h2>Plots</h2>\n<div class=\"gallery\">\n");
    let general: Vec<_> = p.figures.iter().filter(|f| f.0.metric.is_none()).collect();
    for (fig, png, _) in &general {
        figure(&mut h, fig, png);
    }
    if general.is_empty() {
        h.push_str("<p class=\"muted\">Plots were not drawn for this report.</p>\n");
    }
    h.push_str("</div>\n");
    crate::html_metrics::post_process_section(&mut h, p);

    // Annotations and faults.
    h.push_str("<h2>Annotations</h2>\n");
    let marks: Vec<_> = a.events.iter().filter(|e| e.kind != "command").collect();
    if marks.is_empty() {
        h.push_str("<p class=\"muted\">No annotations or faults were recorded.</p>\n");
    } else {
        h.push_str(
            "<table>\n<tr><th>Kind</th><th>Text</th><th>Instances</th><th>First (s)</th><th>Mean (s)</th><th>Last (s)</th></tr>\n",
        );
        for e in marks {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td></tr>",
                esc(&e.kind),
                esc(&e.text),
                e.instances,
                e.first_t,
                e.mean_t,
                e.last_t
            );
        }
        h.push_str("</table>\n");
    }

    // Message types and drops.
    h.push_str("<h2>Messages by type</h2>\n");
    let mut types: Vec<&String> = m
        .sent
        .by_type
        .keys()
        .chain(m.received.by_type.keys())
        .collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        h.push_str("<p class=\"muted\">No messages were counted.</p>\n");
    } else {
        h.push_str("<table>\n<tr><th>Type</th><th>Sent</th><th>Bytes sent</th><th>Received</th><th>Bytes received</th></tr>\n");
        for t in types {
            let sent = m.sent.by_type.get(t).copied().unwrap_or_default();
            let recv = m.received.by_type.get(t).copied().unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(t),
                sent.messages,
                sent.bytes,
                recv.messages,
                recv.bytes
            );
        }
        h.push_str("</table>\n");
    }
    if !a.drops.by_reason.is_empty() {
        h.push_str(
            "<h2>Drops by reason</h2>\n<table>\n<tr><th>Reason</th><th>Messages</th></tr>\n",
        );
        for (r, n) in &a.drops.by_reason {
            let _ = writeln!(h, "<tr><td>{}</td><td class=\"num\">{n}</td></tr>", esc(r));
        }
        h.push_str("</table>\n");
    }

    // Warnings.
    if !p.warnings.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Warnings ({}, {} lines skipped)</h2>\n<ul class=\"warnings\">",
            p.warnings.len(),
            a.warnings.skipped_lines
        );
        for w in p.warnings.iter().take(LISTED_WARNINGS) {
            let _ = writeln!(h, "<li><code>{}</code></li>", esc(&w.to_string()));
        }
        h.push_str("</ul>\n");
        if p.warnings.len() > LISTED_WARNINGS {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} more; see summary.json.</p>",
                p.warnings.len() - LISTED_WARNINGS
            );
        }
    }

    let _ = writeln!(
        h,
        "<footer>Made by {} from the files of this run folder; <a href=\"summary.json\">summary.json</a> has every number.</footer>\n</body>\n</html>",
        esc(&a.generator)
    );
    h
}

/// One gallery figure: the PNG embedded, links to the PNG and the SVG.
pub(crate) fn figure(h: &mut String, fig: &Figure, png: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let link = href(&format!("plots/{}", fig.file)).unwrap_or_default();
    let svg = href(&format!("plots/{}", fig.svg_file())).unwrap_or_default();
    let _ = writeln!(
        h,
        "<figure><a href=\"{}\"><img src=\"data:image/png;base64,{}\" alt=\"{}\" width=\"{}\" height=\"{}\"></a><figcaption>{} <a href=\"{}\">PNG</a> · <a href=\"{}\">SVG</a></figcaption></figure>",
        esc(&link),
        b64.encode(png),
        esc(&fig.title),
        crate::plot::WIDTH,
        crate::plot::HEIGHT,
        esc(&fig.caption),
        esc(&link),
        esc(&svg)
    );
}

const CSS: &str = "
body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1280px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.kv th{width:12em}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#fff;background:#2e7d32;padding:.1em .5em;border-radius:.3em}
.fail{color:#fff;background:#c62828;padding:.1em .5em;border-radius:.3em}
.warn{color:#000;background:#ffcc80;padding:.1em .5em;border-radius:.3em}
tr.fail-row td{background:#fdecea}tr.pass-row td{background:#edf7ed}
.muted{color:#777}code{font-size:.9em;white-space:pre-wrap}
.gallery{display:grid;grid-template-columns:repeat(auto-fit,minmax(580px,1fr));gap:1em}
figure{margin:0;border:1px solid #ddd;padding:.5em;background:#fafafa}
figure img{width:100%;height:auto;display:block}figcaption{font-size:.9em;color:#444;margin-top:.4em}
ul.warnings{font-size:.9em}footer{margin-top:2em;font-size:.85em;color:#777}
h3{font-size:1.1em;margin:1.2em 0 .3em}.badge{font-size:.75em;background:#1f77b4;color:#fff;padding:.1em .4em;border-radius:.3em;vertical-align:middle}
table.sortable th{cursor:pointer;white-space:nowrap}table.sortable th[aria-sort=ascending]::after{content:' \\25B2'}table.sortable th[aria-sort=descending]::after{content:' \\25BC'}
.scroll{max-height:40em;overflow:auto;border:1px solid #ddd}.scroll table{margin:0}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn links_stay_inside_the_run_folder() {
        assert_eq!(
            href("localhost/node001/00001.err").as_deref(),
            Some("localhost/node001/00001.err")
        );
        assert_eq!(
            href("host name/a#b.err").as_deref(),
            Some("host%20name/a%23b.err")
        );
        assert_eq!(href("javascript:alert(1)"), None);
        assert_eq!(href("/etc/passwd"), None);
        assert_eq!(href("../x"), None);
        assert_eq!(href(""), None);
    }
}
