//! Plots: [`figures`] turns an [`Analysis`] into chart specifications (plain
//! data), and [`render`] draws one as PNG bytes with plotters. No file
//! access here: [`crate::process_run`] writes the bytes.
//!
//! Text comes from the embedded DejaVu Sans (plotters' `ab_glyph` backend),
//! so plots look the same on a machine with no fonts installed. Every chart
//! draws the run's annotations, faults and scenario commands as labelled
//! vertical lines, or as bands from the first to the last instance that
//! reached them (as Gumby's annotation.r drew them); an empty chart says
//! "no data" and why.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, FontTransform, RGBColor, register_font};

use crate::analyse::{Analysis, OverTime};
use crate::error::ReportError;

/// The font plots use, registered under this family name.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Plot size in pixels.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 560;

/// At most this many lines per chart; the rest are summed into "other".
const MAX_LINES: usize = 8;
/// At most this many processes drawn one line each; more become a band.
const MAX_PROCESS_LINES: usize = 10;
/// Seconds CPU rates are averaged over.
const CPU_SMOOTH_S: f64 = 5.0;
/// More instances than this get lines instead of bars in the bar chart.
const MAX_BARS: usize = 150;
/// At most this many annotation markers per chart.
const MAX_MARKERS: usize = 12;

/// Ten colours that stay apart (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const ANNOTATION: RGBColor = RGBColor(70, 70, 70);
const FAULT: RGBColor = RGBColor(200, 30, 30);
const COMMAND: RGBColor = RGBColor(70, 90, 170);

/// One plot: where it goes, what it says, what it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File name under `plots/`.
    pub file: String,
    pub title: String,
    /// One sentence for the gallery.
    pub caption: String,
    pub chart: Chart,
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

impl MarkerKind {
    fn colour(self) -> RGBColor {
        match self {
            MarkerKind::Annotation => ANNOTATION,
            MarkerKind::Fault => FAULT,
            MarkerKind::Command => COMMAND,
        }
    }

    fn name(self) -> &'static str {
        match self {
            MarkerKind::Annotation => "annotation",
            MarkerKind::Fault => "fault",
            MarkerKind::Command => "scenario command",
        }
    }
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
pub fn figures(an: &Analysis) -> Vec<Figure> {
    let agg = &an.aggregates;
    let markers = markers(an);
    let x_range = an.grid.map(|g| {
        let a = g.first as f64 * g.width;
        let b = (g.first + g.bins as i64) as f64 * g.width;
        let (a, b) = markers
            .iter()
            .fold((a, b), |(a, b), m| (a.min(m.from), b.max(m.to)));
        (a, b)
    });
    let x_label = match an.time_scale {
        Some(s) if s != 1.0 => format!("time since start (s, wall clock; scenario time × {s})"),
        _ => "time since start (s)".to_string(),
    };
    let base = |y_label: &str, empty: &str| LineChart {
        x_label: x_label.clone(),
        y_label: y_label.to_string(),
        x_range,
        markers: markers.clone(),
        empty: empty.to_string(),
        ..LineChart::default()
    };
    let ot = agg.over_time.as_ref();
    let mut out = Vec::new();

    let mut sent = base(
        "messages / s",
        "no data: no instance counted msg_out/<type>",
    );
    if let Some(ot) = ot {
        sent.lines = type_lines(ot, &ot.messages_sent_per_s);
    }
    out.push(Figure {
        file: "messages_sent.png".into(),
        title: "Messages sent per second, by type (all instances)".into(),
        caption: format!(
            "Messages sent per second, summed over instances; {} in total.",
            agg.messages.sent.messages
        ),
        chart: Chart::Lines(sent),
    });

    let mut recv = base("messages / s", "no data: no instance counted msg_in/<type>");
    if let Some(ot) = ot {
        recv.lines = type_lines(ot, &ot.messages_received_per_s);
    }
    out.push(Figure {
        file: "messages_received.png".into(),
        title: "Messages received per second, by type (all instances)".into(),
        caption: format!(
            "Messages received per second, summed over instances; {} in total.",
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
        title: "Peers known per instance over time".into(),
        caption:
            "How many peers each instance knew: band from the fewest to the most, line at the mean."
                .into(),
        chart: Chart::Lines(peers),
    });

    let rows = &agg.per_instance;
    let bars = BarChart {
        x_label: "instance".into(),
        y_label: "messages".into(),
        ids: rows.iter().map(|r| r.id).collect(),
        groups: if rows
            .iter()
            .all(|r| r.messages_sent == 0 && r.messages_received == 0)
        {
            vec![]
        } else {
            vec![
                (
                    "sent".into(),
                    rows.iter().map(|r| r.messages_sent as f64).collect(),
                ),
                (
                    "received".into(),
                    rows.iter().map(|r| r.messages_received as f64).collect(),
                ),
            ]
        },
        empty: "no data: no instance sent or received a message".into(),
    };
    out.push(Figure {
        file: "messages_per_instance.png".into(),
        title: "Messages sent and received per instance".into(),
        caption: "Total messages each instance sent and received over the whole run.".into(),
        chart: Chart::Bars(bars),
    });
    out
}

fn markers(an: &Analysis) -> Vec<Marker> {
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
        match out
            .iter_mut()
            .find(|m| m.kind == kind && m.from == e.first_t && m.to == e.last_t)
        {
            Some(m) => {
                m.label.push_str(", ");
                m.label.push_str(&e.text);
            }
            None => out.push(Marker {
                label: e.text.clone(),
                from: e.first_t,
                to: e.last_t,
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

/// Tick labels: `1500` -> `1.5k`.
fn si(v: f64) -> String {
    let a = v.abs();
    let (d, s) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let txt = if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let txt = if txt.contains('.') {
        txt.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        txt
    };
    format!("{txt}{s}")
}

fn register_fonts() -> Result<(), ReportError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Plot {
            name: "font".into(),
            message: "the embedded font could not be loaded".into(),
        })
    }
}

/// Draws a figure as a `WIDTH`×`HEIGHT` PNG.
pub fn render(fig: &Figure) -> Result<Vec<u8>, ReportError> {
    register_fonts()?;
    let err = |e: String| ReportError::Plot {
        name: fig.file.clone(),
        message: e,
    };
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        match &fig.chart {
            Chart::Lines(c) => draw_lines(&root, &fig.title, c),
            Chart::Bars(c) => draw_bars(&root, &fig.title, c),
        }
        .map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    encode_png(&rgb, WIDTH, HEIGHT).map_err(|e| err(e.to_string()))
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Width of the legend panel right of the chart.
const LEGEND_WIDTH: u32 = 230;
/// Longest legend label, in characters.
const LEGEND_CHARS: usize = 26;

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Line(RGBColor),
    Block(RGBColor, f64),
}

/// The title on top, then the chart area and the legend panel beside it.
fn frame<'a>(root: &Area<'a>, title: &str) -> Result<(Area<'a>, Area<'a>), String> {
    let body = root
        .margin(8, 0, 0, 0)
        .titled(title, (FONT, 24))
        .map_err(|e| e.to_string())?;
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(LEGEND_WIDTH)))
}

fn legend(area: &Area<'_>, entries: &[(String, Swatch)]) -> Result<(), String> {
    let e = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = 24 + 24 * i as i32;
        if y > area.dim_in_pixel().1 as i32 - 24 {
            break;
        }
        match *swatch {
            Swatch::Line(c) => area
                .draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(3)))
                .map_err(e)?,
            Swatch::Block(c, alpha) => area
                .draw(&Rectangle::new(
                    [(8, y - 6), (30, y + 6)],
                    c.mix(alpha).filled(),
                ))
                .map_err(e)?,
        }
        let text: String = if label.chars().count() > LEGEND_CHARS {
            label
                .chars()
                .take(LEGEND_CHARS - 1)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            label.clone()
        };
        let style =
            TextStyle::from((FONT, 14))
                .color(&BLACK)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                ));
        area.draw(&Text::new(text, (38, y), style)).map_err(e)?;
    }
    Ok(())
}

fn no_data(root: &Area<'_>, title: &str, why: &str) -> Result<(), String> {
    let area = root
        .margin(8, 0, 0, 0)
        .titled(title, (FONT, 24))
        .map_err(|e| e.to_string())?;
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 22))
        .color(&RGBColor(110, 110, 110))
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    area.draw(&Text::new(
        why.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(|e| e.to_string())?;
    area.draw(&Rectangle::new(
        [(40, 20), (w as i32 - 40, h as i32 - 20)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))
    .map_err(|e| e.to_string())
}

fn draw_lines(root: &Area<'_>, title: &str, c: &LineChart) -> Result<(), String> {
    let has_points = c
        .lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.1.is_finite()))
        || c.bands.iter().any(|b| !b.points.is_empty());
    let Some((x0, x1)) = c.x_range.filter(|_| has_points) else {
        return no_data(root, title, &c.empty);
    };
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let y_max = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(c.bands.iter().flat_map(|b| b.points.iter().map(|p| p.3)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
    let e = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();

    let (plot_area, legend_area) = frame(root, title)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(76)
        .build_cartesian_2d(x0..x1, 0.0..y_top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&|v| si(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .max_light_lines(1)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(e)?;

    // Annotations behind the data: a band from the first to the last
    // instance, a line at the first, the label running down beside it.
    let span = x1 - x0;
    for m in &cluster(&c.markers, span * 0.015) {
        let col = m.kind.colour();
        if m.to - m.from > span * 0.002 {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(m.from, 0.0), (m.to, y_top)],
                    col.mix(0.12).filled(),
                )))
                .map_err(e)?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(m.from, 0.0), (m.from, y_top)],
                col.mix(0.8).stroke_width(1),
            )))
            .map_err(e)?;
        let style =
            TextStyle::from((FONT, 14).into_font().transform(FontTransform::Rotate90)).color(&col);
        chart
            .draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (m.from + span * 0.012, y_top * 0.99),
                style,
            )))
            .map_err(e)?;
    }

    let mut entries = Vec::new();
    for (i, b) in c.bands.iter().enumerate() {
        let col = PALETTE[i % PALETTE.len()];
        let mut poly: Vec<(f64, f64)> = b.points.iter().map(|p| (p.0, p.1)).collect();
        poly.extend(b.points.iter().rev().map(|p| (p.0, p.3)));
        chart
            .draw_series(std::iter::once(Polygon::new(poly, col.mix(0.25).filled())))
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(
                b.points.iter().map(|p| (p.0, p.2)),
                col.stroke_width(2),
            ))
            .map_err(e)?;
        entries.push((b.name.clone(), Swatch::Block(col, 0.5)));
        entries.push((b.middle.clone(), Swatch::Line(col)));
    }
    for (i, l) in c.lines.iter().enumerate() {
        let col = PALETTE[(i + c.bands.len()) % PALETTE.len()];
        for seg in l
            .points
            .split(|p| !p.1.is_finite())
            .filter(|s| !s.is_empty())
        {
            chart
                .draw_series(LineSeries::new(seg.iter().copied(), col.stroke_width(2)))
                .map_err(e)?;
        }
        entries.push((l.name.clone(), Swatch::Line(col)));
    }
    for kind in [
        MarkerKind::Annotation,
        MarkerKind::Fault,
        MarkerKind::Command,
    ] {
        if c.markers.iter().any(|m| m.kind == kind) {
            entries.push((kind.name().into(), Swatch::Block(kind.colour(), 0.35)));
        }
    }
    legend(&legend_area, &entries)
}

/// Merges markers closer than `gap` (their labels would overprint): one
/// line, labels joined, the most important kind's colour.
fn cluster(markers: &[Marker], gap: f64) -> Vec<Marker> {
    let mut sorted: Vec<&Marker> = markers.iter().collect();
    sorted.sort_by(|a, b| a.from.total_cmp(&b.from));
    let mut out: Vec<Marker> = Vec::new();
    for m in sorted {
        match out.last_mut() {
            Some(last) if m.from - last.from < gap => {
                last.label.push_str(", ");
                last.label.push_str(&m.label);
                last.to = last.to.max(m.to);
                last.kind = last.kind.min(m.kind);
            }
            _ => out.push(m.clone()),
        }
    }
    out
}

fn draw_bars(root: &Area<'_>, title: &str, c: &BarChart) -> Result<(), String> {
    if c.ids.is_empty() || c.groups.is_empty() {
        return no_data(root, title, &c.empty);
    }
    let e = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
    let lo = *c.ids.iter().min().unwrap_or(&1) as f64 - 0.5;
    let hi = *c.ids.iter().max().unwrap_or(&1) as f64 + 0.5;
    let y_max = c
        .groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
    let (plot_area, legend_area) = frame(root, title)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(76)
        .build_cartesian_2d(lo..hi, 0.0..y_top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&|v| {
            if v.fract().abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| si(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .max_light_lines(1)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(e)?;
    let mut entries = Vec::new();
    if c.ids.len() > MAX_BARS {
        // Too many for bars a pixel wide: one line per group over the ids.
        for (g, (name, values)) in c.groups.iter().enumerate() {
            let col = PALETTE[g % PALETTE.len()];
            let pts = c.ids.iter().zip(values).map(|(&id, &v)| (id as f64, v));
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(1)))
                .map_err(e)?;
            entries.push((name.clone(), Swatch::Line(col)));
        }
        return legend(&legend_area, &entries);
    }
    let n = c.groups.len() as f64;
    let w = 0.8 / n;
    for (g, (name, values)) in c.groups.iter().enumerate() {
        let col = PALETTE[g % PALETTE.len()];
        let left = -0.4 + g as f64 * w;
        chart
            .draw_series(c.ids.iter().zip(values).map(move |(&id, &v)| {
                Rectangle::new(
                    [(id as f64 + left, 0.0), (id as f64 + left + w, v)],
                    col.filled(),
                )
            }))
            .map_err(e)?;
        entries.push((name.clone(), Swatch::Block(col, 1.0)));
    }
    legend(&legend_area, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_markers_share_a_line() {
        let m = |label: &str, from: f64, kind| Marker {
            label: label.into(),
            from,
            to: from,
            kind,
        };
        let got = cluster(
            &[
                m("b", 0.2, MarkerKind::Command),
                m("a", 0.0, MarkerKind::Command),
                m("start", 0.3, MarkerKind::Annotation),
                m("late", 5.0, MarkerKind::Fault),
            ],
            0.5,
        );
        assert_eq!(
            got,
            vec![
                Marker {
                    label: "a, b, start".into(),
                    from: 0.0,
                    to: 0.3,
                    kind: MarkerKind::Annotation
                },
                m("late", 5.0, MarkerKind::Fault)
            ]
        );
    }

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
    fn si_labels() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(12.5), "12.5");
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
