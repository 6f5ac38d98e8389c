//! Drawing: turns one [`Figure`] (plain data from [`crate::plot`]) into a
//! PNG for the page ([`render`], [`SCREEN`]) and an SVG for papers
//! ([`render_svg`], [`PAPER`]), with the same code for both backends.
//!
//! Must not: touch files (the pipeline writes the bytes) or decide what a
//! figure shows (that is [`crate::plot`]).
//!
//! Readability rules held here: text sizes are per canvas (the PNG is
//! shown at about half its width in the page's two-column gallery, the
//! SVG is laid out for one column of a two-column paper); annotation
//! labels are numbered tags in a strip above the data, listed in the
//! legend, so no label is drawn over data; lines differ by colour and
//! dash pattern, and lines with identical values are drawn once and named
//! together ("3 identical: instances 1, 2, 5"); count axes have integer
//! ticks only.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBColor, register_font};

use crate::error::ReportError;
use crate::plot::{BarChart, Chart, Figure, LineChart, Marker, MarkerKind};

/// The font plots use, registered under this family name.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// A canvas: its size in pixels and its text sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub title: u32,
    /// Tick labels.
    pub tick: u32,
    /// Axis descriptions.
    pub axis: u32,
    pub legend: u32,
}

/// The PNG in the page: shown about 600 px wide in the two-column gallery,
/// where 22 px ticks read as 11 px.
pub const SCREEN: Canvas = Canvas {
    width: 1200,
    height: 560,
    title: 30,
    tick: 22,
    axis: 24,
    legend: 21,
};

/// The SVG: one column of a two-column paper (about 3.3 in, 240 pt wide),
/// where 20 px ticks print at 6 pt and axis text at 6.6 pt.
pub const PAPER: Canvas = Canvas {
    width: 800,
    height: 460,
    title: 22,
    tick: 20,
    axis: 22,
    legend: 19,
};

/// Ten colours that stay apart (Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
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

/// Dash patterns (on, off) in pixels; `None` is solid. Line `i` gets
/// colour `i % 10` and pattern `i % 4`, so two lines never look alike.
const DASHES: [Option<(u32, u32)>; 4] = [None, Some((12, 6)), Some((3, 5)), Some((20, 5))];

impl MarkerKind {
    fn colour(self) -> RGBColor {
        match self {
            MarkerKind::Annotation => ANNOTATION,
            MarkerKind::Fault => FAULT,
            MarkerKind::Command => COMMAND,
        }
    }
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

/// Draws a figure as a PNG of the [`SCREEN`] canvas.
pub fn render(fig: &Figure) -> Result<Vec<u8>, ReportError> {
    register_fonts()?;
    let c = SCREEN;
    let err = |e: String| ReportError::Plot {
        name: fig.file.clone(),
        message: e,
    };
    let mut rgb = vec![0u8; (c.width * c.height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (c.width, c.height)).into_drawing_area();
        draw(&root, fig, &c).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    encode_png(&rgb, c.width, c.height).map_err(|e| err(e.to_string()))
}

/// Draws a figure as an SVG of the [`PAPER`] canvas (text stays text).
pub fn render_svg(fig: &Figure) -> Result<String, ReportError> {
    // Text is measured with the embedded font to lay it out.
    register_fonts()?;
    let c = PAPER;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (c.width, c.height)).into_drawing_area();
        draw(&root, fig, &c).map_err(|e| ReportError::Plot {
            name: fig.svg_file(),
            message: e,
        })?;
        root.present().map_err(|e| ReportError::Plot {
            name: fig.svg_file(),
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    c: &Canvas,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match &fig.chart {
        Chart::Lines(l) => draw_lines(root, &fig.title, l, c),
        Chart::Bars(b) => draw_bars(root, &fig.title, b, c),
    }
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

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    /// A line of this colour and dash pattern.
    Line(RGBColor, Option<(u32, u32)>),
    Block(RGBColor, f64),
}

type Area<DB> = DrawingArea<DB, Shift>;

/// A line to draw: its legend name, its points, and the index of the
/// first line it stands for (its colour and dash pattern).
type Distinct<'a> = (String, &'a [(f64, f64)], usize);

/// Width of the legend panel right of the chart.
fn legend_width(c: &Canvas) -> u32 {
    c.width * 27 / 100
}

/// The title on top, then the chart area and the legend panel beside it.
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &Canvas,
) -> Result<(Area<DB>, Area<DB>), String> {
    let body = root
        .margin(6, 0, 0, 0)
        .titled(title, (FONT, c.title))
        .map_err(|e| e.to_string())?;
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(legend_width(c))))
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Swatch)],
    c: &Canvas,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let row = (c.legend as f64 * 1.35) as i32;
    let swatch = (c.legend as i32 * 3) / 2;
    // About 0.55 em per character.
    let chars =
        ((legend_width(c) as i32 - swatch - 18) * 100 / (c.legend as i32 * 55)).max(6) as usize;
    let (_, h) = area.dim_in_pixel();
    for (i, (label, sw)) in entries.iter().enumerate() {
        let y = row + row * i as i32;
        if y > h as i32 - row / 2 {
            break;
        }
        match *sw {
            Swatch::Line(col, dash) => {
                let style = col.stroke_width(3);
                match dash {
                    None => area
                        .draw(&PathElement::new(vec![(6, y), (6 + swatch, y)], style))
                        .map_err(e)?,
                    Some((on, off)) => {
                        let mut x = 6;
                        while x < 6 + swatch {
                            let end = (x + on as i32).min(6 + swatch);
                            area.draw(&PathElement::new(vec![(x, y), (end, y)], style))
                                .map_err(e)?;
                            x = end + off as i32;
                        }
                    }
                }
            }
            Swatch::Block(col, alpha) => area
                .draw(&Rectangle::new(
                    [(6, y - row / 4), (6 + swatch, y + row / 4)],
                    col.mix(alpha).filled(),
                ))
                .map_err(e)?,
        }
        let text = shorten(label, chars);
        let style = TextStyle::from((FONT, c.legend))
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(text, (swatch + 12, y), style))
            .map_err(e)?;
    }
    Ok(())
}

/// `label` cut to `chars` characters with an ellipsis.
fn shorten(label: &str, chars: usize) -> String {
    if label.chars().count() > chars {
        label
            .chars()
            .take(chars.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    } else {
        label.to_string()
    }
}

fn no_data<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    why: &str,
    c: &Canvas,
) -> Result<(), String> {
    let area = root
        .margin(6, 0, 0, 0)
        .titled(title, (FONT, c.title))
        .map_err(|e| e.to_string())?;
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, c.axis))
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let chars = (w as usize * 10) / (c.axis as usize * 6);
    area.draw(&Text::new(
        shorten(why, chars.max(10)),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(|e| e.to_string())?;
    area.draw(&Rectangle::new(
        [(20, 10), (w as i32 - 20, h as i32 - 10)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))
    .map_err(|e| e.to_string())
}

/// Integer tick labels (blank between integers).
fn int_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        si(v.round())
    } else {
        String::new()
    }
}

/// The top of the y axis and how many ticks it gets.
fn y_axis(y_max: f64, integer: bool) -> (f64, usize) {
    if integer {
        let top = (y_max * 1.08).ceil().max(1.0);
        (top, (top as usize + 1).min(8))
    } else {
        (if y_max > 0.0 { y_max * 1.08 } else { 1.0 }, 8)
    }
}

/// Lines with at most this many points also mark each point.
const SPARSE_POINTS: usize = 30;

/// Lines with the same points drawn once: (names joined, points, index of
/// the first, for its style).
fn distinct_lines(c: &LineChart) -> Vec<Distinct<'_>> {
    // Lines that would be drawn on top of each other: the same values,
    // changing at the same times to within a 500th of the x axis (samples
    // of different instances are taken at slightly different times).
    let tol = c.x_range.map_or(0.0, |(a, b)| ((b - a) / 500.0).max(0.0));
    let shape = |pts: &[(f64, f64)]| -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = Vec::new();
        let mut last: Option<u64> = None;
        for p in pts {
            let v = if p.1.is_nan() {
                u64::MAX
            } else {
                p.1.to_bits()
            };
            if last != Some(v) {
                let t = if tol > 0.0 {
                    (p.0 / tol).round() as i64
                } else {
                    p.0.to_bits() as i64
                };
                out.push((t, v));
                last = Some(v);
            }
        }
        out
    };
    let mut shapes: Vec<Vec<(i64, u64)>> = Vec::new();
    let mut out: Vec<Distinct<'_>> = Vec::new();
    let mut members: Vec<Vec<&str>> = Vec::new();
    for (i, l) in c.lines.iter().enumerate() {
        let sh = shape(&l.points);
        let same = (!l.points.is_empty())
            .then(|| shapes.iter().position(|s| *s == sh))
            .flatten();
        match same {
            Some(j) => members[j].push(&l.name),
            None => {
                shapes.push(sh);
                members.push(vec![&l.name]);
                out.push((l.name.clone(), &l.points, i));
            }
        }
    }
    for (j, names) in members.into_iter().enumerate() {
        if names.len() > 1 {
            // The count first: a legend cuts long names at the end.
            let ids: Option<Vec<&str>> =
                names.iter().map(|n| n.strip_prefix("instance ")).collect();
            out[j].0 = match ids {
                Some(ids) => format!("{} identical: instances {}", names.len(), ids.join(", ")),
                None => format!("{} identical: {}", names.len(), names.join(" = ")),
            };
        }
    }
    out
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &LineChart,
    cv: &Canvas,
) -> Result<(), String> {
    let has_points = c
        .lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.1.is_finite()))
        || c.bands.iter().any(|b| !b.points.is_empty());
    let Some((x0, x1)) = c.x_range.filter(|_| has_points) else {
        return no_data(root, title, &c.empty, cv);
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
    let (y_top, y_ticks) = match c.y_fixed {
        Some(top) => (top, 6),
        None => y_axis(y_max, c.y_integer),
    };
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();

    let (plot_area, legend_area) = frame(root, title, cv)?;
    // Annotation tags go in a strip above the data, never over it.
    let strip_h = if c.markers.is_empty() {
        0
    } else {
        (cv.tick as f64 * 1.5) as u32
    };
    let (strip, chart_area) = plot_area.split_vertically(strip_h);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(10)
        .margin_top(4)
        .x_label_area_size(cv.axis * 2 + 6)
        .y_label_area_size(cv.tick * 3 + cv.axis + 8)
        .build_cartesian_2d(x0..x1, 0.0..y_top)
        .map_err(e)?;
    let y_integer = c.y_integer;
    let y_fmt = move |v: &f64| if y_integer { int_label(*v) } else { si(*v) };
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&y_fmt)
        .x_labels(7)
        .y_labels(y_ticks)
        .label_style((FONT, cv.tick))
        .axis_desc_style((FONT, cv.axis))
        .max_light_lines(1)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()
        .map_err(e)?;

    let mut entries = Vec::new();
    // Annotations behind the data: a band from the first to the last
    // instance, a line at the first, a numbered tag above the chart.
    if !c.markers.is_empty() {
        let (px0, _) = chart.backend_coord(&(x0, 0.0));
        let (px1, _) = chart.backend_coord(&(x1, 0.0));
        let per_unit = (px1 - px0).max(1) as f64 / (x1 - x0);
        let tag_px = cv.tick as f64 * 1.4 + 4.0;
        let gap = (tag_px / per_unit).max((x1 - x0) * 0.015);
        let (base_x, _) = strip.get_base_pixel();
        for (n, m) in cluster(&c.markers, gap).iter().enumerate() {
            let col = m.kind.colour();
            let span = x1 - x0;
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
            let (px, _) = chart.backend_coord(&(m.from.max(x0), 0.0));
            let tag = format!("{}", n + 1);
            let style = TextStyle::from((FONT, cv.tick))
                .color(&col)
                .pos(Pos::new(HPos::Center, VPos::Center));
            strip
                .draw(&Text::new(
                    tag.clone(),
                    (px - base_x, strip_h as i32 / 2),
                    style,
                ))
                .map_err(e)?;
            entries.push((format!("{tag} {}", m.label), Swatch::Block(col, 0.6)));
        }
    }

    let mut lines_entries = Vec::new();
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
        if b.points.len() <= SPARSE_POINTS {
            chart
                .draw_series(
                    b.points
                        .iter()
                        .map(|p| Circle::new((p.0, p.2), (cv.tick / 5) as i32, col.filled())),
                )
                .map_err(e)?;
        }
        lines_entries.push((b.name.clone(), Swatch::Block(col, 0.5)));
        lines_entries.push((b.middle.clone(), Swatch::Line(col, None)));
    }
    for (name, points, i) in distinct_lines(c) {
        let k = i + c.bands.len();
        let col = PALETTE[k % PALETTE.len()];
        let dash = DASHES[k % DASHES.len()];
        // A sparse line shows its points (a single point is no line).
        let finite = points.iter().filter(|p| p.1.is_finite()).count();
        if finite <= SPARSE_POINTS {
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.1.is_finite())
                        .map(|&p| Circle::new(p, (cv.tick / 5) as i32, col.filled())),
                )
                .map_err(e)?;
        }
        for seg in points.split(|p| !p.1.is_finite()).filter(|s| !s.is_empty()) {
            let style = col.stroke_width(3);
            match dash {
                None => chart
                    .draw_series(LineSeries::new(seg.iter().copied(), style))
                    .map_err(e)?,
                Some((on, off)) => chart
                    .draw_series(DashedLineSeries::new(seg.iter().copied(), on, off, style))
                    .map_err(e)?,
            };
        }
        lines_entries.push((name, Swatch::Line(col, dash)));
    }
    // The data's legend first, then the annotations.
    lines_entries.extend(entries);
    legend(&legend_area, &lines_entries, cv)
}

/// Merges markers closer than `gap` (their tags would overprint): one
/// line, labels joined, the most important kind's colour.
pub fn cluster(markers: &[Marker], gap: f64) -> Vec<Marker> {
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

/// More instances than this get lines instead of bars in the bar chart.
const MAX_BARS: usize = 150;

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &BarChart,
    cv: &Canvas,
) -> Result<(), String> {
    if c.ids.is_empty() || c.groups.is_empty() {
        return no_data(root, title, &c.empty, cv);
    }
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let lo = *c.ids.iter().min().unwrap_or(&1) as f64 - 0.5;
    let hi = *c.ids.iter().max().unwrap_or(&1) as f64 + 0.5;
    let y_max = c
        .groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .fold(0.0f64, f64::max);
    // Bars count things: integer ticks.
    let (y_top, y_ticks) = y_axis(y_max, true);
    let (plot_area, legend_area) = frame(root, title, cv)?;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(10)
        .x_label_area_size(cv.axis * 2 + 6)
        .y_label_area_size(cv.tick * 3 + cv.axis + 8)
        .build_cartesian_2d(lo..hi, 0.0..y_top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&|v| int_label(*v))
        .y_label_formatter(&|v| int_label(*v))
        .y_labels(y_ticks)
        .label_style((FONT, cv.tick))
        .axis_desc_style((FONT, cv.axis))
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
            let dash = DASHES[g % DASHES.len()];
            let pts: Vec<(f64, f64)> = c
                .ids
                .iter()
                .zip(values)
                .map(|(&id, &v)| (id as f64, v))
                .collect();
            match dash {
                None => chart
                    .draw_series(LineSeries::new(pts, col.stroke_width(2)))
                    .map_err(e)?,
                Some((on, off)) => chart
                    .draw_series(DashedLineSeries::new(pts, on, off, col.stroke_width(2)))
                    .map_err(e)?,
            };
            entries.push((name.clone(), Swatch::Line(col, dash)));
        }
        return legend(&legend_area, &entries, cv);
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
    legend(&legend_area, &entries, cv)
}

/// Tick labels: `1500` -> `1.5k`.
pub fn si(v: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::Line;

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
    fn si_labels() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(12.5), "12.5");
        assert_eq!(int_label(2.0), "2");
        assert_eq!(int_label(2.5), "");
    }

    #[test]
    fn integer_axes_have_whole_ticks() {
        assert_eq!(y_axis(3.0, true), (4.0, 5));
        assert_eq!(y_axis(0.0, true), (1.0, 2));
        assert_eq!(y_axis(1000.0, true).1, 8);
    }

    #[test]
    fn identical_lines_are_drawn_once_and_named_together() {
        let l = |name: &str, v: f64| Line {
            name: name.into(),
            points: vec![(0.0, v), (1.0, v)],
        };
        let c = LineChart {
            lines: vec![l("a", 1.0), l("b", 2.0), l("c", 1.0)],
            ..LineChart::default()
        };
        let got: Vec<(String, usize)> = distinct_lines(&c)
            .into_iter()
            .map(|(n, _, i)| (n, i))
            .collect();
        assert_eq!(
            got,
            vec![("2 identical: a = c".to_string(), 0), ("b".to_string(), 1)]
        );
        // Sampled at slightly different times, the same steps: identical.
        let c = LineChart {
            x_range: Some((0.0, 100.0)),
            lines: vec![
                Line {
                    name: "instance 1".into(),
                    points: vec![(1.0, 0.0), (2.0, 4.0), (3.0, 4.0)],
                },
                Line {
                    name: "instance 2".into(),
                    points: vec![(1.05, 0.0), (2.05, 4.0), (3.05, 4.0), (4.05, 4.0)],
                },
                Line {
                    name: "z".into(),
                    points: vec![(1.0, 0.0), (9.0, 4.0)],
                },
            ],
            ..LineChart::default()
        };
        let names: Vec<String> = distinct_lines(&c).into_iter().map(|d| d.0).collect();
        assert_eq!(names, vec!["2 identical: instances 1, 2", "z"]);
    }

    /// Text sizes as readers see them: the PNG at the gallery's ~600 px,
    /// the SVG at one column of a two-column paper (240 pt).
    #[test]
    fn text_is_readable_where_the_figures_are_shown() {
        let shown = |px: u32, c: &Canvas, at: f64| px as f64 * at / c.width as f64;
        for px in [SCREEN.tick, SCREEN.axis, SCREEN.legend] {
            assert!(shown(px, &SCREEN, 600.0) >= 10.5, "{px} px in the page");
        }
        for px in [PAPER.tick, PAPER.axis, PAPER.legend] {
            assert!(shown(px, &PAPER, 240.0) >= 5.5, "{px} px in print");
        }
    }

    #[test]
    fn the_svg_keeps_text_as_text_at_the_paper_sizes() {
        let fig = Figure {
            file: "x.png".into(),
            metric: None,
            title: "A title".into(),
            caption: String::new(),
            chart: Chart::Lines(LineChart {
                x_label: "scenario time (s)".into(),
                y_label: "value".into(),
                x_range: Some((0.0, 10.0)),
                lines: vec![Line {
                    name: "a".into(),
                    points: vec![(0.0, 1.0), (10.0, 2.0)],
                }],
                markers: vec![Marker {
                    label: "start".into(),
                    from: 2.0,
                    to: 2.0,
                    kind: MarkerKind::Annotation,
                }],
                ..LineChart::default()
            }),
        };
        let svg = render_svg(&fig).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(
            svg.contains("\nscenario time (s)\n</text>"),
            "axis text is not text: {svg}"
        );
        assert!(
            svg.contains("\n1 start\n</text>"),
            "annotation tag not in the legend: {svg}"
        );
        // No text smaller than the tick size.
        let min = svg
            .split("font-size=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse::<f64>().ok())
            .fold(f64::INFINITY, f64::min);
        assert!(
            min * 1.24 >= PAPER.legend as f64 - 0.5,
            "smallest text {min}"
        );
    }
}
