//! Figures of declared metrics (plain chart specifications, drawn by
//! [`crate::draw`]): per metric a time chart, and for an observation a
//! CDF of every sample of every instance. Also the figures of Gumby-style
//! autoplot CSVs.
//!
//! Must not: read files or draw; the numbers come from
//! [`crate::metrics`] (observations merged exactly) and the CSV text the
//! loader read.

use std::collections::BTreeSet;

use peerlab_run::metrics::MetricKind;

use crate::analyse::Analysis;
use crate::metrics::MetricData;
use crate::plot::{Band, Chart, Figure, Line, LineChart};

/// Up to this many instances a metric gets one line per instance; more
/// get a min-max band with the mean.
pub const MAX_INSTANCE_LINES: usize = crate::metrics::SERIES_KEPT;
/// At most this many metrics get figures (all are in summary.json and the CSVs).
pub const MAX_METRIC_FIGURES: usize = 60;

/// `benaloh.time/total` -> `benaloh.time_total`.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A metric's axis label: its unit, else its kind.
fn y_label(m: &MetricData) -> String {
    let unit = m.decl.unit.trim();
    match (m.summary.kind, unit.is_empty()) {
        (_, false) => unit.to_string(),
        (Some(MetricKind::Counter), true) => "count".into(),
        _ => "value".into(),
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The figures of every declared metric, headline metrics first.
pub fn figures(an: &Analysis, frame: &LineChart) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    // The overlay's own counters (msg_out/*, drop/*, peers, ...) have their
    // figures already.
    let own = is_overlay_counter;
    for m in an
        .metrics
        .metrics
        .iter()
        .filter(|m| !own(&m.name) && !is_member(m))
        .take(MAX_METRIC_FIGURES)
    {
        let mut stem = format!("metric-{}", slug(&m.name));
        let mut n = 2;
        while !used.insert(stem.clone()) {
            stem = format!("metric-{}-{n}", slug(&m.name));
            n += 1;
        }
        let unit = y_label(m);
        let about = if m.decl.description.is_empty() {
            String::new()
        } else {
            format!("{}. ", m.decl.description.trim_end_matches('.'))
        };
        let mut chart = LineChart {
            y_label: unit.clone(),
            empty: format!("no data: no instance recorded {}", m.name),
            ..frame.clone()
        };
        let s = &m.summary;
        match s.kind {
            Some(MetricKind::Observation) => {
                let pts = &m.reduced.observation;
                if !pts.is_empty() {
                    chart.bands.push(Band {
                        name: "min-max of the samples".into(),
                        middle: "median (p50)".into(),
                        points: pts.iter().map(|p| (p.t, p.min, p.p50, p.max)).collect(),
                    });
                    chart.lines.push(Line {
                        name: "p90".into(),
                        points: pts.iter().map(|p| (p.t, p.p90)).collect(),
                    });
                }
                let d = s.distribution.unwrap_or_default();
                out.push(Figure {
                    file: format!("{stem}.png"),
                    metric: Some(m.name.clone()),
                    title: format!("{} over time", m.name),
                    caption: format!(
                        "{about}Samples recorded in each interval, all instances merged: median line, p90 dashed, min-max band; {} samples from {} instances.",
                        d.count, s.instances
                    ),
                    chart: Chart::Lines(chart),
                });
                out.push(cdf_figure(m, &stem, &unit, &about));
            }
            _ => {
                let counter = s.kind == Some(MetricKind::Counter);
                chart.y_integer = counter && m.finals.iter().all(|f| f.1.fract() == 0.0);
                // Series are kept whole up to SERIES_KEPT instances.
                let how = if m.finals.len() <= MAX_INSTANCE_LINES {
                    for (id, points) in &m.series {
                        chart.lines.push(Line {
                            name: format!("instance {id}"),
                            points: points.clone(),
                        });
                    }
                    "one line per instance".to_string()
                } else {
                    let t = &m.reduced.times;
                    chart.bands.push(Band {
                        name: format!("min-max of {} instances", m.finals.len()),
                        middle: "mean".into(),
                        points: t
                            .iter()
                            .zip(&m.reduced.spread)
                            .filter_map(|(&t, v)| v.map(|(lo, mean, hi)| (t, lo, mean, hi)))
                            .collect(),
                    });
                    "mean line and min-max band over instances".to_string()
                };
                let totals = if counter {
                    format!(
                        "total {} over {} instances{}",
                        num(s.total),
                        s.instances,
                        s.rate_per_s
                            .map(|r| format!(", {} per scenario second", num(r)))
                            .unwrap_or_default()
                    )
                } else {
                    format!(
                        "last values: mean {}, min {}, max {} over {} instances",
                        num(s.mean),
                        num(s.min),
                        num(s.max),
                        s.instances
                    )
                };
                out.push(Figure {
                    file: format!("{stem}.png"),
                    metric: Some(m.name.clone()),
                    title: format!("{} ({})", m.name, if counter { "counter" } else { "gauge" }),
                    caption: format!(
                        "{about}Each instance's {} over time, {how}; {totals}.",
                        if counter { "cumulative count" } else { "value" }
                    ),
                    chart: Chart::Lines(chart),
                });
            }
        }
    }
    out.extend(family_figures(an, frame, &mut used));
    out
}

/// Whether `name` is one of the overlay's own counters (`msg_out/<type>`,
/// `bytes_in/<type>`, `drop/<reason>`, `peers`, ...), which the general
/// plots and tables already show.
pub fn is_overlay_counter(name: &str) -> bool {
    !matches!(
        crate::analyse::classify(name).0,
        crate::analyse::Category::Other | crate::analyse::Category::Stat
    )
}

/// Whether `m` is a member of a family (`mod.hits/*` declared it).
pub fn is_member(m: &MetricData) -> bool {
    m.decl.name != m.name && m.decl.name.ends_with("/*")
}

/// One figure per declared family of counters or gauges: a line per
/// member (its mean over instances), the biggest first; observations of a
/// family are in summary.json and the CSVs only.
fn family_figures(an: &Analysis, frame: &LineChart, used: &mut BTreeSet<String>) -> Vec<Figure> {
    let mut families: Vec<(&str, Vec<&MetricData>)> = Vec::new();
    for m in an.metrics.metrics.iter().filter(|m| is_member(m)) {
        if m.summary.kind == Some(MetricKind::Observation) || is_overlay_counter(&m.name) {
            continue;
        }
        match families.iter_mut().find(|f| f.0 == m.decl.name) {
            Some(f) => f.1.push(m),
            None => families.push((&m.decl.name, vec![m])),
        }
    }
    let mut out = Vec::new();
    for (family, mut members) in families.into_iter().take(MAX_METRIC_FIGURES) {
        members.sort_by(|a, b| b.summary.total.total_cmp(&a.summary.total));
        let shown = members.len().min(crate::plot_metrics::MAX_INSTANCE_LINES);
        let mut chart = LineChart {
            y_label: y_label(members[0]),
            empty: format!("no data: no instance recorded a member of {family}"),
            ..frame.clone()
        };
        for m in &members[..shown] {
            chart.lines.push(Line {
                name: m.name.clone(),
                points: m
                    .reduced
                    .times
                    .iter()
                    .zip(&m.reduced.spread)
                    .map(|(&t, v)| (t, v.map_or(f64::NAN, |(_, mean, _)| mean)))
                    .collect(),
            });
        }
        let mut stem = format!("metric-{}", slug(family.trim_end_matches("/*")));
        while !used.insert(stem.clone()) {
            stem.push_str("-family");
        }
        out.push(Figure {
            file: format!("{stem}.png"),
            metric: Some(family.to_string()),
            title: format!("{family} (mean over instances)"),
            caption: format!(
                "Each member of {family}: its mean over instances over time; {} members{}.",
                members.len(),
                if shown < members.len() {
                    format!(", the {shown} biggest shown")
                } else {
                    String::new()
                }
            ),
            chart: Chart::Lines(chart),
        });
    }
    out
}

/// The CDF of every sample: a step line from the merged histogram.
fn cdf_figure(m: &MetricData, stem: &str, unit: &str, about: &str) -> Figure {
    let values = m.merged.values();
    let total: u64 = values.iter().map(|v| v.1).sum();
    let mut points = Vec::with_capacity(values.len() * 2 + 1);
    let mut seen = 0u64;
    for &(v, c) in &values {
        points.push((v, seen as f64 / total as f64));
        seen += c;
        points.push((v, seen as f64 / total as f64));
    }
    let x_range = match (values.first(), values.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            let pad = (b.0 - a.0) * 0.03;
            Some(((a.0 - pad).max(0.0), b.0 + pad))
        }
        (Some(a), _) => Some(((a.0 - 1.0).max(0.0), a.0 + 1.0)),
        _ => None,
    };
    let d = m.summary.distribution.unwrap_or_default();
    Figure {
        file: format!("{stem}-cdf.png"),
        metric: Some(m.name.clone()),
        title: format!("{}: CDF of all samples", m.name),
        caption: format!(
            "{about}Fraction of samples at or below each value, all instances merged ({} samples): p50 {}, p90 {}, p99 {} {unit}.",
            d.count,
            num(d.p50),
            num(d.p90),
            num(d.p99)
        ),
        chart: Chart::Lines(LineChart {
            x_label: format!("{} ({unit})", m.name),
            y_label: "fraction of samples".into(),
            x_range,
            lines: if points.is_empty() {
                vec![]
            } else {
                vec![Line {
                    name: "all instances".into(),
                    points,
                }]
            },
            y_fixed: Some(1.0),
            empty: format!("no data: no instance recorded {}", m.name),
            ..LineChart::default()
        }),
    }
}

/// One autoplot CSV's series: (column name, points).
pub type AutoplotSeries = Vec<(String, Vec<(f64, f64)>)>;

/// Parses an autoplot CSV: a header, then rows whose first column is x and
/// whose other columns are numbers (a cell that is not is skipped).
/// `Err` says why the file cannot be plotted.
pub fn parse_autoplot(text: &str) -> Result<(String, AutoplotSeries), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty file")?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    if cols.len() < 2 {
        return Err("needs a header with an x column and at least one value column".into());
    }
    let mut series: AutoplotSeries = cols[1..]
        .iter()
        .map(|c| (c.to_string(), Vec::new()))
        .collect();
    for line in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some(Ok(x)) = cells.first().map(|c| c.parse::<f64>()) else {
            continue;
        };
        if !x.is_finite() {
            continue;
        }
        for (i, s) in series.iter_mut().enumerate() {
            if let Some(Ok(y)) = cells.get(i + 1).map(|c| c.parse::<f64>())
                && y.is_finite()
            {
                s.1.push((x, y));
            }
        }
    }
    series.retain(|s| !s.1.is_empty());
    if series.is_empty() {
        return Err("no numeric rows".into());
    }
    Ok((cols[0].to_string(), series))
}

/// One figure per autoplot file name: a line per (file, column), the
/// files of several instances together. `files`: (instance, x label,
/// series) of each file of that name.
pub fn autoplot_figure(name: &str, files: &[(Option<u32>, String, AutoplotSeries)]) -> Figure {
    let mut lines = Vec::new();
    let many = files.len() > 1;
    for (inst, _, series) in files {
        for (col, pts) in series {
            let who = match inst {
                Some(i) if many || series.len() == 1 => format!("instance {i}: {col}"),
                _ => col.clone(),
            };
            lines.push(Line {
                name: who,
                points: pts.clone(),
            });
        }
    }
    let total = lines.len();
    lines.truncate(crate::plot_metrics::MAX_INSTANCE_LINES);
    let x_range = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(None, |r: Option<(f64, f64)>, x| {
            Some(r.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
        });
    Figure {
        file: format!("autoplot-{}.png", slug(name)),
        metric: None,
        title: format!("{name} (autoplot)"),
        caption: format!(
            "autoplot/{name}.csv from {} file(s){}.",
            files.len(),
            if total > lines.len() {
                format!("; the first {} of {total} series", lines.len())
            } else {
                String::new()
            }
        ),
        chart: Chart::Lines(LineChart {
            x_label: files.first().map(|f| f.1.clone()).unwrap_or_default(),
            y_label: "value".into(),
            x_range,
            lines,
            empty: format!("no data in autoplot/{name}.csv"),
            ..LineChart::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoplot_csv_parses_and_skips_what_is_not_a_number() {
        let (x, s) = parse_autoplot("time,rtt,loss\n1,10,0\n2,x,1\n3,30,\n").unwrap();
        assert_eq!(x, "time");
        assert_eq!(s[0], ("rtt".to_string(), vec![(1.0, 10.0), (3.0, 30.0)]));
        assert_eq!(s[1], ("loss".to_string(), vec![(1.0, 0.0), (2.0, 1.0)]));
        assert!(parse_autoplot("").is_err());
        assert!(parse_autoplot("only\n1\n").is_err());
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("benaloh.time_to_total"), "benaloh.time_to_total");
        assert_eq!(slug("gossip.x/y z"), "gossip.x_y_z");
    }
}
