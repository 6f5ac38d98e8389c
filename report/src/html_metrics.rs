//! The metrics part of `report.html`: the summary table of every declared
//! metric, a section per metric (its plots, an observation's percentiles),
//! the sortable per-instance table (every instance, linking its `.out` and
//! `.err`), and what `post_process_cmd` did and drew.
//!
//! Must not: compute (the numbers are [`crate::metrics`]'s) or read files
//! (extra images arrive as bytes). Everything interpolated goes through
//! [`esc`] / [`href`].

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine;
use peerlab_run::metrics::{MetricKind, ObservationStats};

use crate::html::{Page, esc, figure, href};
use crate::metrics::MetricData;

/// A number as the tables show it: integers whole, others to 4 decimals.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The HTML id of a metric's section.
pub fn anchor(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("metric-{slug}")
}

fn kind(m: &MetricData) -> &'static str {
    m.summary.kind.map_or("gauge", MetricKind::as_str)
}

fn stats_cells(d: &ObservationStats) -> String {
    format!(
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        d.count,
        num(d.min),
        num(d.p50),
        num(d.p90),
        num(d.p99),
        num(d.max),
        num(d.mean)
    )
}

/// The metrics summary, one section per metric and the per-instance table.
pub fn metrics_section(h: &mut String, p: &Page<'_>) {
    // The overlay's own counters are in the general plots and tables: here
    // they get a folded table only.
    let (overlay, ms): (Vec<&MetricData>, Vec<&MetricData>) = p
        .metrics
        .metrics
        .iter()
        .partition(|m| crate::plot_metrics::is_overlay_counter(&m.name));
    if ms.is_empty() && overlay.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"metrics\">Metrics</h2>\n");
    h.push_str("<p class=\"muted\">Every metric the modules declared, headline results first. Numbers are in <a href=\"summary.json\">summary.json</a> (<code>aggregates.metrics</code>), every sample in <a href=\"timeseries.csv\">timeseries.csv</a> and <a href=\"observations.csv\">observations.csv</a>.</p>\n");
    let (obs, vals): (Vec<&MetricData>, Vec<&MetricData>) = ms
        .iter()
        .partition(|m| m.summary.kind == Some(MetricKind::Observation));
    value_table(h, "metric-values", &vals, true);
    if !obs.is_empty() {
        h.push_str("<table id=\"metric-observations\">\n<tr><th>Observation</th><th>Unit</th><th>Instances</th><th>Count</th><th>Min</th><th>p50</th><th>p90</th><th>p99</th><th>Max</th><th>Mean</th></tr>\n");
        for m in &obs {
            let s = &m.summary;
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{}\">{}</a>{}</td><td>{}</td><td class=\"num\">{}</td>{}</tr>",
                section_of(m),
                esc(&m.name),
                badge(m),
                esc(&s.unit),
                s.instances,
                stats_cells(&s.distribution.unwrap_or_default())
            );
        }
        h.push_str("</table>\n");
    }
    if !overlay.is_empty() {
        let _ = writeln!(
            h,
            "<details><summary>The overlay's own counters ({}; plotted under Plots)</summary>",
            overlay.len()
        );
        value_table(h, "metric-overlay", &overlay, false);
        h.push_str("</details>\n");
    }

    let mut families_done: Vec<&str> = Vec::new();
    for m in ms {
        if crate::plot_metrics::is_member(m) {
            // A family's members share one section.
            if families_done.contains(&m.decl.name.as_str()) {
                continue;
            }
            families_done.push(&m.decl.name);
            family_section(h, p, m);
            continue;
        }
        let _ = writeln!(
            h,
            "<section class=\"metric\" id=\"{}\">\n<h3>{}{} <span class=\"muted\">({}, {}, module {})</span></h3>",
            anchor(&m.name),
            esc(&m.name),
            badge(m),
            kind(m),
            esc(if m.summary.unit.is_empty() {
                "no unit"
            } else {
                &m.summary.unit
            }),
            esc(&m.decl.module)
        );
        if !m.decl.description.is_empty() {
            let _ = writeln!(h, "<p>{}</p>", esc(&m.decl.description));
        }
        let figs: Vec<_> = p
            .figures
            .iter()
            .filter(|f| f.0.metric.as_deref() == Some(m.name.as_str()))
            .collect();
        if figs.is_empty() {
            h.push_str("<p class=\"muted\">Not plotted (plots were not drawn, or the run has more metrics than the report draws; see summary.json).</p>\n");
        } else {
            h.push_str("<div class=\"gallery\">\n");
            for (fig, png, _) in figs {
                figure(h, fig, png);
            }
            h.push_str("</div>\n");
        }
        if let Some(d) = m.summary.distribution {
            h.push_str("<table class=\"percentiles\">\n<tr><th></th><th>Count</th><th>Min</th><th>p50</th><th>p90</th><th>p99</th><th>Max</th><th>Mean</th></tr>\n");
            let _ = writeln!(h, "<tr><th>all instances</th>{}</tr>", stats_cells(&d));
            h.push_str("</table>\n");
        }
        h.push_str("</section>\n");
    }
    per_instance_table(h, p);
}

/// The table of counters and gauges: total, mean, min, max, rate.
fn value_table(h: &mut String, id: &str, rows: &[&MetricData], links: bool) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<table id=\"{id}\">\n<tr><th>Metric</th><th>Kind</th><th>Unit</th><th>Instances</th><th>Total</th><th>Mean</th><th>Min</th><th>Max</th><th>Per scenario second</th></tr>"
    );
    for m in rows {
        let s = &m.summary;
        let name = if links {
            format!("<a href=\"#{}\">{}</a>", section_of(m), esc(&m.name))
        } else {
            esc(&m.name)
        };
        let _ = writeln!(
            h,
            "<tr><td>{name}{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            badge(m),
            kind(m),
            esc(&s.unit),
            s.instances,
            num(s.total),
            num(s.mean),
            num(s.min),
            num(s.max),
            s.rate_per_s.map(num).unwrap_or_default()
        );
    }
    h.push_str("</table>\n");
}

/// Where a metric's section is: its own, or its family's.
fn section_of(m: &MetricData) -> String {
    if crate::plot_metrics::is_member(m) {
        anchor(&m.decl.name)
    } else {
        anchor(&m.name)
    }
}

/// The section of a family: its figure and its members.
fn family_section(h: &mut String, p: &Page<'_>, first: &MetricData) {
    let family = &first.decl.name;
    let _ = writeln!(
        h,
        "<section class=\"metric\" id=\"{}\">\n<h3>{}{} <span class=\"muted\">(a family of {}s, module {})</span></h3>",
        anchor(family),
        esc(family),
        badge(first),
        kind(first),
        esc(&first.decl.module)
    );
    if !first.decl.description.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&first.decl.description));
    }
    let figs: Vec<_> = p
        .figures
        .iter()
        .filter(|f| f.0.metric.as_deref() == Some(family.as_str()))
        .collect();
    if !figs.is_empty() {
        h.push_str("<div class=\"gallery\">\n");
        for (fig, png, _) in figs {
            figure(h, fig, png);
        }
        h.push_str("</div>\n");
    }
    let members: Vec<&str> = p
        .metrics
        .metrics
        .iter()
        .filter(|m| &m.decl.name == family && m.name != *family)
        .map(|m| m.name.as_str())
        .collect();
    let _ = writeln!(
        h,
        "<p class=\"muted\">{} members: {}.</p>\n</section>",
        members.len(),
        esc(&members.join(", "))
    );
}

fn badge(m: &MetricData) -> &'static str {
    if m.decl.headline {
        " <span class=\"badge\">headline</span>"
    } else {
        ""
    }
}

/// At most this many metrics get columns in the per-instance table.
const TABLE_METRICS: usize = 40;

/// Up to this many instances the per-instance table lists every one, by
/// default (`ReportOptions::page_instances`); a bigger run's page lists a
/// few (see [`per_instance_table`]) and `per_instance.csv` has them all.
pub const PAGE_INSTANCES: usize = 1000;

/// In a summarised table: this many instances at each end of the first
/// metric's values, and at most this many that did not finish.
const SHOWN_AT_EACH_END: usize = 25;
const SHOWN_UNFINISHED: usize = 50;

/// The per-instance table's file when the page summarises it.
pub const PER_INSTANCE_CSV: &str = "per_instance.csv";

/// Whether the page lists only some instances (and the pipeline writes
/// [`PER_INSTANCE_CSV`]).
pub fn summarised(p: &Page<'_>) -> bool {
    p.aggregates.per_instance.len() > p.page_instances && !table_metrics(p).is_empty()
}

/// The module metrics the per-instance table shows (the overlay's own
/// counters are in the general tables).
fn table_metrics<'a>(p: &Page<'a>) -> Vec<&'a MetricData> {
    p.metrics
        .metrics
        .iter()
        .filter(|m| !crate::plot_metrics::is_overlay_counter(&m.name))
        .collect()
}

/// Each metric's value per instance: a counter's or gauge's last value,
/// an observation's (sample count, median).
enum Column {
    Value(HashMap<u32, f64>),
    Samples(HashMap<u32, (u64, f64)>),
}

fn column(m: &MetricData) -> Column {
    if m.summary.kind == Some(MetricKind::Observation) {
        Column::Samples(
            m.per_instance
                .iter()
                .map(|(id, stats)| (*id, (stats.count, stats.p50)))
                .collect(),
        )
    } else {
        Column::Value(m.finals.iter().copied().collect())
    }
}

impl Column {
    /// The value a summarised table ranks instances by.
    fn rank(&self, id: u32) -> Option<f64> {
        match self {
            Column::Value(v) => v.get(&id).copied(),
            Column::Samples(v) => v.get(&id).map(|s| s.1),
        }
    }
}

/// The first file named for each instance.
fn first_files(files: &[(u32, String)]) -> HashMap<u32, &str> {
    let mut out = HashMap::with_capacity(files.len());
    for (id, f) in files {
        out.entry(*id).or_insert(f.as_str());
    }
    out
}

/// Every instance with each metric's value, sortable by any column; in a
/// run of more than `page_instances` instances only the
/// [`SHOWN_AT_EACH_END`] lowest and highest by the first metric and the
/// first [`SHOWN_UNFINISHED`] that did not finish, with a link to
/// [`PER_INSTANCE_CSV`].
fn per_instance_table(h: &mut String, p: &Page<'_>) {
    let all = table_metrics(p);
    if all.is_empty() {
        return;
    }
    let ms: Vec<&MetricData> = all.iter().take(TABLE_METRICS).copied().collect();
    let more = if all.len() > ms.len() {
        format!(
            " The first {} of {} metrics; timeseries.csv has them all.",
            ms.len(),
            all.len()
        )
    } else {
        String::new()
    };
    let columns: Vec<Column> = ms.iter().map(|m| column(m)).collect();
    let rows = &p.aggregates.per_instance;
    let (shown, which) = if summarised(p) {
        let mut ranked: Vec<(f64, u32)> = rows
            .iter()
            .filter_map(|r| Some((columns[0].rank(r.id)?, r.id)))
            .filter(|(v, _)| v.is_finite())
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut pick: std::collections::BTreeSet<u32> = ranked
            .iter()
            .take(SHOWN_AT_EACH_END)
            .chain(ranked.iter().rev().take(SHOWN_AT_EACH_END))
            .map(|r| r.1)
            .collect();
        pick.extend(
            rows.iter()
                .filter(|r| r.status.as_deref().is_some_and(|s| s != "finished"))
                .take(SHOWN_UNFINISHED)
                .map(|r| r.id),
        );
        let which = format!(
            " {} instances: this table shows {} of them, the {SHOWN_AT_EACH_END} with the lowest and the {SHOWN_AT_EACH_END} with the highest {} and up to {SHOWN_UNFINISHED} that did not finish; <a href=\"{PER_INSTANCE_CSV}\">{PER_INSTANCE_CSV}</a> has every instance and every metric.",
            rows.len(),
            pick.len(),
            esc(&ms[0].name),
        );
        (Some(pick), which)
    } else {
        (None, String::new())
    };
    let _ = write!(
        h,
        "<h2 id=\"per-instance\">Metrics per instance</h2>\n<p class=\"muted\">Click a column to sort. Counters and gauges: the last value; observations: the instance's sample count and median.{more}{which}</p>\n<div class=\"scroll\"><table class=\"sortable\" id=\"per-instance-table\">\n<thead><tr><th data-type=\"num\">Instance</th><th>Status</th>"
    );
    for m in &ms {
        if m.summary.kind == Some(MetricKind::Observation) {
            let _ = write!(
                h,
                "<th data-type=\"num\">{} count</th><th data-type=\"num\">{} p50</th>",
                esc(&m.name),
                esc(&m.name)
            );
        } else {
            let _ = write!(h, "<th data-type=\"num\">{}</th>", esc(&m.name));
        }
    }
    h.push_str("<th>Output</th></tr></thead>\n<tbody>\n");
    let (outs, errs) = (first_files(p.out_files), first_files(p.err_files));
    for row in rows {
        let id = row.id;
        if shown.as_ref().is_some_and(|s| !s.contains(&id)) {
            continue;
        }
        let _ = write!(
            h,
            "<tr><td class=\"num\">{id}</td><td>{}</td>",
            esc(row.status.as_deref().unwrap_or(""))
        );
        for c in &columns {
            match c {
                Column::Samples(v) => match v.get(&id) {
                    Some((c, p50)) => {
                        let _ = write!(
                            h,
                            "<td class=\"num\">{c}</td><td class=\"num\">{}</td>",
                            num(*p50)
                        );
                    }
                    None => h.push_str("<td class=\"num\">0</td><td class=\"num\"></td>"),
                },
                Column::Value(v) => {
                    let v = v.get(&id).map(|v| num(*v)).unwrap_or_default();
                    let _ = write!(h, "<td class=\"num\">{v}</td>");
                }
            }
        }
        let mut links = Vec::new();
        for (label, file) in [("out", outs.get(&id)), ("err", errs.get(&id))] {
            if let Some(url) = file.and_then(|f| href(f)) {
                links.push(format!("<a href=\"{}\">{label}</a>", esc(&url)));
            }
        }
        let _ = writeln!(h, "<td>{}</td></tr>", links.join(" "));
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str(SORT_SCRIPT);
}

/// [`PER_INSTANCE_CSV`]: the per-instance table with every instance and
/// every module metric (`instance,status,<metric>...,out,err`; an
/// observation has `<name> count` and `<name> p50`).
pub fn per_instance_csv(p: &Page<'_>) -> String {
    use crate::metrics::csv_field;
    let ms = table_metrics(p);
    let mut out = String::from("instance,status");
    for m in &ms {
        if m.summary.kind == Some(MetricKind::Observation) {
            let _ = write!(
                out,
                ",{},{}",
                csv_field(&format!("{} count", m.name)),
                csv_field(&format!("{} p50", m.name))
            );
        } else {
            let _ = write!(out, ",{}", csv_field(&m.name));
        }
    }
    out.push_str(",out,err\n");
    let columns: Vec<Column> = ms.iter().map(|m| column(m)).collect();
    let (outs, errs) = (first_files(p.out_files), first_files(p.err_files));
    for row in &p.aggregates.per_instance {
        let id = row.id;
        let _ = write!(
            out,
            "{id},{}",
            csv_field(row.status.as_deref().unwrap_or(""))
        );
        for c in &columns {
            match c {
                Column::Samples(v) => match v.get(&id) {
                    Some((c, p50)) => {
                        let _ = write!(out, ",{c},{p50}");
                    }
                    None => out.push_str(",0,"),
                },
                Column::Value(v) => {
                    let _ = write!(
                        out,
                        ",{}",
                        v.get(&id).map(|v| v.to_string()).unwrap_or_default()
                    );
                }
            }
        }
        let file = |f: Option<&&str>| f.map(|f| csv_field(f)).unwrap_or_default();
        let _ = writeln!(out, ",{},{}", file(outs.get(&id)), file(errs.get(&id)));
    }
    out
}

const SORT_SCRIPT: &str = "<script>
document.querySelectorAll('table.sortable').forEach(function (t) {
  var heads = t.querySelectorAll('thead th');
  heads.forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      heads.forEach(function (o) { o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var num = th.getAttribute('data-type') === 'num';
      var body = t.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var r;
        if (num) {
          var fx = x === '' ? -Infinity : parseFloat(x), fy = y === '' ? -Infinity : parseFloat(y);
          r = fx - fy;
        } else {
          r = x.localeCompare(y);
        }
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>
";

/// What `post_process_cmd` did, and the images it drew under `plots/extra/`.
pub fn post_process_section(h: &mut String, p: &Page<'_>) {
    let Some(hook) = p.hook else {
        return;
    };
    h.push_str("<h2 id=\"post-process\">Post-processing</h2>\n");
    let status = if hook.ok {
        "<span class=\"pass\">succeeded</span>".to_string()
    } else {
        format!("<span class=\"fail\">{}</span>", esc(&hook.error))
    };
    let log = href(&hook.log).unwrap_or_default();
    let _ = writeln!(
        h,
        "<p><code>post_process_cmd = {}</code>: {status} (<a href=\"{}\">output</a>).</p>",
        esc(&hook.command),
        esc(&log)
    );
    if p.extras.is_empty() {
        h.push_str("<p class=\"muted\">It wrote no images under plots/extra/.</p>\n");
        return;
    }
    h.push_str("<div class=\"gallery\">\n");
    let b64 = base64::engine::general_purpose::STANDARD;
    for x in p.extras {
        let link = href(&x.path).unwrap_or_default();
        let name = x.path.rsplit('/').next().unwrap_or(&x.path);
        let mime = match name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("svg") => "image/svg+xml",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            _ => "image/png",
        };
        match &x.bytes {
            Some(bytes) => {
                let _ = writeln!(
                    h,
                    "<figure><a href=\"{}\"><img src=\"data:{mime};base64,{}\" alt=\"{}\"></a><figcaption>{}</figcaption></figure>",
                    esc(&link),
                    b64.encode(bytes),
                    esc(name),
                    esc(&x.path)
                );
            }
            None => {
                let _ = writeln!(
                    h,
                    "<figure><figcaption><a href=\"{}\">{}</a> (too large to show here)</figcaption></figure>",
                    esc(&link),
                    esc(&x.path)
                );
            }
        }
    }
    h.push_str("</div>\n");
}
