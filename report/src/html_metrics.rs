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

/// Every instance with each metric's value, sortable by any column.
fn per_instance_table(h: &mut String, p: &Page<'_>) {
    let all: Vec<&MetricData> = p
        .metrics
        .metrics
        .iter()
        .filter(|m| !crate::plot_metrics::is_overlay_counter(&m.name))
        .collect();
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
    let _ = write!(
        h,
        "<h2 id=\"per-instance\">Metrics per instance</h2>\n<p class=\"muted\">Click a column to sort. Counters and gauges: the last value; observations: the instance's sample count and median.{more}</p>\n<div class=\"scroll\"><table class=\"sortable\" id=\"per-instance-table\">\n<thead><tr><th data-type=\"num\">Instance</th><th>Status</th>"
    );
    let mut finals: Vec<HashMap<u32, f64>> = Vec::with_capacity(ms.len());
    let mut hists: Vec<HashMap<u32, (u64, f64)>> = Vec::with_capacity(ms.len());
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
        finals.push(m.finals.iter().copied().collect());
        hists.push(
            m.per_instance
                .iter()
                .map(|(id, stats)| (*id, (stats.count, stats.p50)))
                .collect(),
        );
    }
    h.push_str("<th>Output</th></tr></thead>\n<tbody>\n");
    let find = |files: &[(u32, String)], id: u32| {
        files
            .iter()
            .find(|(i, _)| *i == id)
            .and_then(|(_, f)| href(f))
    };
    for row in &p.aggregates.per_instance {
        let id = row.id;
        let _ = write!(
            h,
            "<tr><td class=\"num\">{id}</td><td>{}</td>",
            esc(row.status.as_deref().unwrap_or(""))
        );
        for (i, m) in ms.iter().enumerate() {
            if m.summary.kind == Some(MetricKind::Observation) {
                match hists[i].get(&id) {
                    Some((c, p50)) => {
                        let _ = write!(
                            h,
                            "<td class=\"num\">{c}</td><td class=\"num\">{}</td>",
                            num(*p50)
                        );
                    }
                    None => h.push_str("<td class=\"num\">0</td><td class=\"num\"></td>"),
                }
            } else {
                let v = finals[i].get(&id).map(|v| num(*v)).unwrap_or_default();
                let _ = write!(h, "<td class=\"num\">{v}</td>");
            }
        }
        let mut links = Vec::new();
        for (label, url) in [
            ("out", find(p.out_files, id)),
            ("err", find(p.err_files, id)),
        ] {
            if let Some(url) = url {
                links.push(format!("<a href=\"{}\">{label}</a>", esc(&url)));
            }
        }
        let _ = writeln!(h, "<td>{}</td></tr>", links.join(" "));
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str(SORT_SCRIPT);
}

/// Sorts `table.sortable` by the clicked column (numbers as numbers).
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
