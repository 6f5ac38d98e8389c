//! Plots: [`figures`] turns an [`Analysis`] into chart specifications
//! (plain data); [`crate::draw`] draws them (PNG and SVG). No file access
//! here: [`crate::process_run`] writes the bytes.
//!
//! Every time chart marks the run's annotations, faults and scenario
//! commands, as lines or as bands from the first to the last instance that
//! reached them (as Gumby's annotation.r drew them); an empty chart says
//! "no data" and why. The x axis is scenario seconds for runs sampled on
//! scenario time (those that declare metrics); older folders' wall-clock
//! time is labelled as such.

use crate::analyse::{Analysis, OverTime};
pub use crate::draw::{render, render_svg};

/// PNG size in pixels (the page's canvas, [`crate::draw::SCREEN`]).
pub const WIDTH: u32 = crate::draw::SCREEN.width;
pub const HEIGHT: u32 = crate::draw::SCREEN.height;

/// At most this many lines per chart; the rest are summed into "other".
const MAX_LINES: usize = 8;
/// At most this many processes drawn one line each; more become a band.
const MAX_PROCESS_LINES: usize = 10;
/// At most this many points in the per-instance chart: more instances are
/// drawn as the mean of groups of consecutive ones.
const MAX_INSTANCE_POINTS: usize = 1000;
/// Seconds CPU rates are averaged over.
const CPU_SMOOTH_S: f64 = 5.0;
/// At most this many annotation markers per chart.
const MAX_MARKERS: usize = 12;

/// The walker's discovery messages: left out of the message plots unless
/// the config key `report_walker_messages = include` asks for them.
pub const WALKER_MESSAGES: [&str; 4] = [
    "introduction-request",
    "introduction-response",
    "puncture-request",
    "puncture",
];

/// One plot: where it goes, what it says, what it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File name under `plots/`.
    pub file: String,
    /// The metric it shows (its section of the page), if it shows one.
    pub metric: Option<String>,
    pub title: String,
    /// One sentence for the gallery.
    pub caption: String,
    pub chart: Chart,
}

impl Figure {
    /// The SVG's file name under `plots/` (beside the PNG).
    pub fn svg_file(&self) -> String {
        match self.file.strip_suffix(".png") {
            Some(stem) => format!("{stem}.svg"),
            None => format!("{}.svg", self.file),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    Lines(LineChart),
    Bars(BarChart),
}

/// Lines and bands over time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    pub x_label: String,
    pub y_label: String,
    pub x_range: Option<(f64, f64)>,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    /// What to say when there is nothing to draw.
    pub empty: String,
    /// The y axis counts things: integer ticks only.
    pub y_integer: bool,
    /// A fixed top of the y axis (a CDF's 1).
    pub y_fixed: Option<f64>,
}

/// A named line; a `NaN` value breaks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A min-max band with a middle line: (t, min, middle, max).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// What the band spans, for the legend.
    pub name: String,
    /// What the middle line is, for the legend.
    pub middle: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// An annotation, fault or scenario command, from its first to its last
/// time across instances.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub kind: MarkerKind,
}

/// What a marker marks; each kind has its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkerKind {
    Annotation,
    Fault,
    Command,
}

/// Bars per instance, one bar per group side by side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    pub x_label: String,
    pub y_label: String,
    pub ids: Vec<u32>,
    pub groups: Vec<(String, Vec<f64>)>,
    pub empty: String,
}

/// The run's plots, in gallery order.
pub fn figures(an: &Analysis, opts: &FigureOptions) -> Vec<Figure> {
    let agg = &an.aggregates;
    let frame = time_frame(an);
    let base = |y_label: &str, empty: &str| LineChart {
        y_label: y_label.to_string(),
        empty: empty.to_string(),
        ..frame.clone()
    };
    let ot = agg.over_time.as_ref();
    let mut out = Vec::new();

    let mut sent = base(
        "messages / s",
        "no data: no instance counted msg_out/<type>",
    );
    let mut sent_note = String::new();
    if let Some(ot) = ot {
        let (series, note) = without_walker(&ot.messages_sent_per_s, &agg.messages.sent, opts);
        sent.lines = type_lines(ot, &series);
        sent_note = note;
    }
    out.push(Figure {
        file: "messages_sent.png".into(),
        metric: None,
        title: "Messages sent per second, by type (all instances)".into(),
        caption: format!(
            "Messages sent per second, summed over instances; {} in total.{sent_note}",
            agg.messages.sent.messages
        ),
        chart: Chart::Lines(sent),
    });

    let mut recv = base("messages / s", "no data: no instance counted msg_in/<type>");
    let mut recv_note = String::new();
    if let Some(ot) = ot {
        let (series, note) =
            without_walker(&ot.messages_received_per_s, &agg.messages.received, opts);
        recv.lines = type_lines(ot, &series);
        recv_note = note;
    }
    out.push(Figure {
        file: "messages_received.png".into(),
        metric: None,
        title: "Messages received per second, by type (all instances)".into(),
        caption: format!(
            "Messages received per second, summed over instances; {} in total.{recv_note}",
            agg.messages.received.messages
        ),
        chart: Chart::Lines(recv),
    });

    let mut bytes = base(
        "bytes / s",
        "no data: no instance counted bytes_out/ or bytes_in/",
    );
    if let Some(ot) = ot {
        for (name, series) in [
            ("sent (up)", &ot.bytes_sent_per_s),
            ("received (down)", &ot.bytes_received_per_s),
        ] {
            if !series.is_empty() {
                bytes.lines.push(Line {
                    name: name.into(),
                    points: zip(&ot.t, &sum_series(series.values(), ot.t.len())),
                });
            }
        }
    }
    out.push(Figure {
        file: "bytes.png".into(),
        metric: None,
        title: "Bytes sent and received per second (all instances)".into(),
        caption: format!(
            "Bytes per second, summed over instances; {} sent and {} received in total.",
            human_bytes(agg.messages.sent.bytes as f64),
            human_bytes(agg.messages.received.bytes as f64)
        ),
        chart: Chart::Lines(bytes),
    });

    let mut drops = base(
        "dropped messages / s",
        "no data: no instance counted drop/<reason>",
    );
    if let Some(ot) = ot {
        drops.lines = type_lines(ot, &ot.drops_per_s);
    }
    out.push(Figure {
        file: "drops.png".into(),
        metric: None,
        title: "Messages dropped per second, by reason (all instances)".into(),
        caption: format!(
            "Dropped messages per second, by reason; {} in total.",
            agg.drops.total
        ),
        chart: Chart::Lines(drops),
    });

    let shared = an.resources.processes.iter().any(|p| p.instances > 1);
    let (who, who_caption) = if shared {
        (
            "per process",
            "one line per OS process (several instances each)",
        )
    } else {
        ("per instance", "one line per instance")
    };
    let mut cpu = base(
        "CPU (% of one core)",
        "no data: no process<PPP>.resources.jsonl file",
    );
    let mut mem = base(
        "resident memory (MiB)",
        "no data: no process<PPP>.resources.jsonl file",
    );
    // A mostly idle process's CPU per sample is noisy (and runs recorded
    // before getrusage counted 10 ms procfs ticks), so CPU is averaged over
    // about CPU_SMOOTH_S seconds.
    let cpu_window = an
        .grid
        .map_or(1, |g| ((CPU_SMOOTH_S / g.step()).round() as usize).max(1));
    if let Some(g) = an.grid {
        let t = g.times();
        let cpu_rows: Vec<Vec<Option<f64>>> = an
            .resources
            .processes
            .iter()
            .map(|p| {
                let pct: Vec<Option<f64>> =
                    p.cpu_cores.iter().map(|v| v.map(|c| c * 100.0)).collect();
                moving_average(&pct, cpu_window)
            })
            .collect();
        let mem_rows: Vec<Vec<Option<f64>>> = an
            .resources
            .processes
            .iter()
            .map(|p| p.rss_kb.iter().map(|v| v.map(|k| k / 1024.0)).collect())
            .collect();
        let labels: Vec<String> = an
            .resources
            .processes
            .iter()
            .map(|p| p.label.clone())
            .collect();
        for (chart, rows) in [(&mut cpu, cpu_rows), (&mut mem, mem_rows)] {
            if rows.len() <= MAX_PROCESS_LINES {
                chart.lines = rows
                    .iter()
                    .zip(&labels)
                    .map(|(r, l)| Line {
                        name: l.clone(),
                        points: zip_opt(&t, r),
                    })
                    .collect();
            } else {
                let what = if shared { "processes" } else { "instances" };
                chart.bands.push(Band {
                    name: format!("min-max of {} {what}", rows.len()),
                    middle: "median".into(),
                    points: spread(&t, &rows),
                });
            }
        }
    }
    let process_count = an.resources.processes.len();
    let many = process_count > MAX_PROCESS_LINES;
    let spread_caption = format!(
        "min-max band and median line over {process_count} {}",
        if shared { "processes" } else { "instances" }
    );
    out.push(Figure {
        file: "cpu.png".into(),
        metric: None,
        title: format!("CPU {who} over time"),
        caption: format!(
            "CPU use from procfs{}, {}; total {:.1} CPU seconds.",
            if cpu_window > 1 {
                format!(
                    ", averaged over {:.0} s",
                    cpu_window as f64 * an.grid.map_or(1.0, |g| g.step())
                )
            } else {
                String::new()
            },
            if many {
                spread_caption.as_str()
            } else {
                who_caption
            },
            agg.resources.cpu_s
        ),
        chart: Chart::Lines(cpu),
    });
    out.push(Figure {
        file: "memory.png".into(),
        metric: None,
        title: format!("Resident memory {who} over time"),
        caption: format!(
            "Resident set size from procfs, {}; peak {}.",
            if many {
                spread_caption.as_str()
            } else {
                who_caption
            },
            agg.resources
                .peak_rss_kb
                .map(|k| human_bytes(k as f64 * 1024.0))
                .unwrap_or_else(|| "unknown".into())
        ),
        chart: Chart::Lines(mem),
    });

    let mut peers = base(
        "peers known",
        "no data: no instance reported the peers gauge",
    );
    peers.y_integer = true;
    if let (Some(g), Some(p)) = (an.grid, an.peers.as_ref())
        && p.iter().any(Option::is_some)
    {
        let t = g.times();
        let pts: Vec<(f64, f64, f64, f64)> = t
            .iter()
            .zip(p)
            .filter_map(|(&t, v)| v.map(|(lo, mean, hi)| (t, lo, mean, hi)))
            .collect();
        peers.bands.push(Band {
            name: "min-max over instances".into(),
            middle: "mean".into(),
            points: pts,
        });
    }
    out.push(Figure {
        file: "peers.png".into(),
        metric: None,
        title: "Peers known per instance over time".into(),
        caption:
            "How many peers each instance knew: band from the fewest to the most, line at the mean."
                .into(),
        chart: Chart::Lines(peers),
    });

    let rows = &agg.per_instance;
    // Many instances: the mean of each group of `per` consecutive ones.
    let per = rows.len().div_ceil(MAX_INSTANCE_POINTS).max(1);
    let mean = |f: fn(&crate::analyse::InstanceRow) -> u64| -> Vec<f64> {
        rows.chunks(per)
            .map(|c| c.iter().map(|r| f(r) as f64).sum::<f64>() / c.len() as f64)
            .collect()
    };
    let bars = BarChart {
        x_label: "instance".into(),
        y_label: "messages".into(),
        ids: rows.chunks(per).map(|c| c[0].id).collect(),
        groups: if rows
            .iter()
            .all(|r| r.messages_sent == 0 && r.messages_received == 0)
        {
            vec![]
        } else {
            vec![
                ("sent".into(), mean(|r| r.messages_sent)),
                ("received".into(), mean(|r| r.messages_received)),
            ]
        },
        empty: "no data: no instance sent or received a message".into(),
    };
    out.push(Figure {
        file: "messages_per_instance.png".into(),
        metric: None,
        title: "Messages sent and received per instance".into(),
        caption: if per > 1 {
            format!(
                "Total messages each instance sent and received over the whole run: the mean of each {per} consecutive instances ({} instances).",
                rows.len()
            )
        } else {
            "Total messages each instance sent and received over the whole run.".into()
        },
        chart: Chart::Bars(bars),
    });
    out.extend(crate::online::figure(an, &frame));
    out.extend(crate::plot_metrics::figures(an, &frame));
    out
}

/// A time chart with the run's x axis and annotations, and nothing drawn.
pub(crate) fn time_frame(an: &Analysis) -> LineChart {
    let markers = markers(an);
    let x_range = an.grid.map(|g| {
        let a = g.first as f64 * g.width;
        let b = (g.first + g.bins as i64) as f64 * g.width;
        markers
            .iter()
            .fold((a, b), |(a, b), m| (a.min(m.from), b.max(m.to)))
    });
    let x_label = match an.time_scale {
        _ if an.scenario_t => "scenario time (s)".to_string(),
        Some(s) if s != 1.0 => format!("time since start (s, wall clock; scenario time × {s})"),
        _ => "time since start (s)".to_string(),
    };
    LineChart {
        x_label,
        x_range,
        markers,
        ..LineChart::default()
    }
}

/// What the config asks of the figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FigureOptions {
    /// `report_walker_messages = include`: the walker's discovery
    /// messages in the message plots too.
    pub walker_messages: bool,
}

/// The message series without the walker's discovery types (unless asked
/// for, or unless they are all there is), and the caption's note.
fn without_walker(
    series: &std::collections::BTreeMap<String, Vec<f64>>,
    dir: &crate::analyse::Direction,
    opts: &FigureOptions,
) -> (std::collections::BTreeMap<String, Vec<f64>>, String) {
    let walker = |t: &str| WALKER_MESSAGES.contains(&t);
    let others_moved = series
        .iter()
        .any(|(t, v)| !walker(t) && v.iter().any(|x| *x > 0.0));
    if opts.walker_messages || !others_moved {
        return (series.clone(), String::new());
    }
    let left_out: u64 = dir
        .by_type
        .iter()
        .filter(|(t, _)| walker(t))
        .map(|(_, c)| c.messages)
        .sum();
    let kept = series
        .iter()
        .filter(|(t, _)| !walker(t))
        .map(|(t, v)| (t.clone(), v.clone()))
        .collect();
    let note = if left_out > 0 {
        format!(
            " The walker's discovery messages ({left_out}) are left out (report_walker_messages = include shows them)."
        )
    } else {
        String::new()
    };
    (kept, note)
}

pub(crate) fn markers(an: &Analysis) -> Vec<Marker> {
    let kind_of = |k: &str| match k {
        "annotation" => Some(MarkerKind::Annotation),
        "fault" => Some(MarkerKind::Fault),
        "command" => Some(MarkerKind::Command),
        _ => None,
    };
    // Scenario commands mark the phases too, but `annotate` is already
    // shown as its annotation and a command only some instances ran is noise.
    let most = an.aggregates.instances_seen as u64 / 2;
    let mut ev: Vec<(MarkerKind, &crate::analyse::EventRow)> = an
        .aggregates
        .events
        .iter()
        .filter_map(|e| Some((kind_of(&e.kind)?, e)))
        .filter(|(k, e)| *k != MarkerKind::Command || (e.text != "annotate" && e.instances > most))
        .collect();
    // Annotations and faults first, then what most instances share.
    ev.sort_by(|a, b| {
        (a.0 == MarkerKind::Command)
            .cmp(&(b.0 == MarkerKind::Command))
            .then(b.1.instances.cmp(&a.1.instances))
            .then(a.1.first_t.total_cmp(&b.1.first_t))
    });
    ev.truncate(MAX_MARKERS);
    ev.sort_by(|a, b| a.1.first_t.total_cmp(&b.1.first_t).then(a.0.cmp(&b.0)));
    // Markers at the same times share one line and one label.
    let mut out: Vec<Marker> = Vec::new();
    for (kind, e) in ev {
        match out.iter_mut().find(|m| {
            m.kind == kind
                && m.from == e.first_t * an.wall_to_plot
                && m.to == e.last_t * an.wall_to_plot
        }) {
            Some(m) => {
                m.label.push_str(", ");
                m.label.push_str(&e.text);
            }
            None => out.push(Marker {
                label: e.text.clone(),
                from: e.first_t * an.wall_to_plot,
                to: e.last_t * an.wall_to_plot,
                kind,
            }),
        }
    }
    out
}

/// One line per type, the biggest first; the rest summed into "other".
fn type_lines(ot: &OverTime, series: &std::collections::BTreeMap<String, Vec<f64>>) -> Vec<Line> {
    let mut named: Vec<(&String, &Vec<f64>, f64)> =
        series.iter().map(|(n, v)| (n, v, v.iter().sum())).collect();
    // Types that never moved only crowd the legend (unless none moved).
    if named.iter().any(|n| n.2 > 0.0) {
        named.retain(|n| n.2 > 0.0);
    }
    named.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
    let keep = if named.len() > MAX_LINES {
        MAX_LINES - 1
    } else {
        named.len()
    };
    let mut lines: Vec<Line> = named[..keep]
        .iter()
        .map(|(n, v, _)| Line {
            name: (*n).clone(),
            points: zip(&ot.t, v),
        })
        .collect();
    if named.len() > keep {
        let rest = sum_series(named[keep..].iter().map(|(_, v, _)| *v), ot.t.len());
        lines.push(Line {
            name: format!("{} other types", named.len() - keep),
            points: zip(&ot.t, &rest),
        });
    }
    lines
}

fn sum_series<'a>(series: impl Iterator<Item = &'a Vec<f64>>, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for s in series {
        for (o, v) in out.iter_mut().zip(s) {
            *o += v;
        }
    }
    out
}

fn zip(t: &[f64], v: &[f64]) -> Vec<(f64, f64)> {
    t.iter().copied().zip(v.iter().copied()).collect()
}

fn zip_opt(t: &[f64], v: &[Option<f64>]) -> Vec<(f64, f64)> {
    t.iter()
        .zip(v)
        .map(|(&t, v)| (t, v.unwrap_or(f64::NAN)))
        .collect()
}

/// Centred moving average over `w` points, skipping gaps; a gap stays a gap.
fn moving_average(v: &[Option<f64>], w: usize) -> Vec<Option<f64>> {
    if w <= 1 {
        return v.to_vec();
    }
    let half = w / 2;
    (0..v.len())
        .map(|i| {
            v[i]?;
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(v.len());
            let (sum, n) = v[lo..hi]
                .iter()
                .flatten()
                .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            Some(sum / n as f64)
        })
        .collect()
}

/// Per point: min, median and max over the rows that have a value there.
fn spread(t: &[f64], rows: &[Vec<Option<f64>>]) -> Vec<(f64, f64, f64, f64)> {
    let mut out = Vec::new();
    let mut col = Vec::with_capacity(rows.len());
    for (i, &ti) in t.iter().enumerate() {
        col.clear();
        col.extend(rows.iter().filter_map(|r| r.get(i).copied().flatten()));
        if col.is_empty() {
            continue;
        }
        col.sort_by(f64::total_cmp);
        let median = if col.len() % 2 == 1 {
            col[col.len() / 2]
        } else {
            (col[col.len() / 2 - 1] + col[col.len() / 2]) / 2.0
        };
        out.push((ti, col[0], median, col[col.len() - 1]));
    }
    out
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[0])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_keeps_gaps_and_edges() {
        let v = [Some(0.0), Some(3.0), None, Some(6.0), Some(0.0)];
        assert_eq!(moving_average(&v, 1), v.to_vec());
        assert_eq!(
            moving_average(&v, 3),
            vec![Some(1.5), Some(1.5), None, Some(3.0), Some(3.0)]
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }

    #[test]
    fn spread_takes_min_median_max_of_present_values() {
        let t = [0.5, 1.5];
        let rows = vec![
            vec![Some(1.0), None],
            vec![Some(3.0), None],
            vec![Some(2.0), Some(7.0)],
        ];
        assert_eq!(
            spread(&t, &rows),
            vec![(0.5, 1.0, 2.0, 3.0), (1.5, 7.0, 7.0, 7.0)]
        );
    }

    #[test]
    fn empty_charts_render_as_valid_png() {
        let fig = Figure {
            file: "x.png".into(),
            title: "Nothing".into(),
            metric: None,
            caption: String::new(),
            chart: Chart::Lines(LineChart {
                empty: "no data: nothing here".into(),
                ..LineChart::default()
            }),
        };
        let png = render(&fig).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // It decodes, at the figure size, and is not blank (the title and
        // the "no data" message are drawn).
        assert_eq!(crate::testing::png_size(&png), Ok((WIDTH, HEIGHT)));
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let pixels = &pixels[..info.buffer_size()];
        let px = info.color_type.samples();
        let background = &pixels[..px];
        let drawn = pixels.chunks_exact(px).filter(|p| *p != background).count();
        assert!(
            drawn > 500,
            "only {drawn} pixels differ from the background"
        );
    }
}
