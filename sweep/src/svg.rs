//! Inline SVG line charts with error bars, for the sweep and compare
//! pages: x is a swept parameter (numeric when every value is a number,
//! else categories in the given order), one line per series, each point a
//! mean with its 95% interval drawn as an error bar. Text is drawn by the
//! browser, so no font is embedded and the page stays self-contained.
//!
//! Pure: data in, SVG text out. Must not: compute statistics.

use std::fmt::Write as _;

/// One point of a series: x label, mean, and its interval (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub x: String,
    pub y: f64,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub marks: Vec<Mark>,
}

const W: f64 = 560.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Escape text for SVG/HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Round tick steps: 1, 2 or 5 times a power of ten.
fn ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vec![lo];
    }
    let raw = (hi - lo) / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// A number short enough for an axis label.
pub fn short(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 0.001 {
        let digits = if a >= 1.0 { 2 } else { 4 };
        format!("{x:.digits$}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{x:.2e}")
    }
}

/// The chart, as an `<svg>` element.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    // The x positions: numeric when every label is a number.
    let mut labels: Vec<String> = Vec::new();
    for s in series {
        for m in &s.marks {
            if !labels.contains(&m.x) {
                labels.push(m.x.clone());
            }
        }
    }
    let numeric: Option<Vec<f64>> = labels.iter().map(|l| l.parse::<f64>().ok()).collect();
    let xpos = |label: &str| -> f64 {
        match &numeric {
            Some(_) => label.parse().unwrap_or(0.0),
            None => labels.iter().position(|l| l == label).unwrap_or(0) as f64,
        }
    };
    let (xlo, xhi) = match &numeric {
        Some(v) if !v.is_empty() => (
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        ),
        _ => (0.0, labels.len().saturating_sub(1) as f64),
    };
    let (xlo, xhi) = if xhi > xlo {
        (xlo, xhi)
    } else {
        (xlo - 1.0, xhi + 1.0)
    };
    let pad = (xhi - xlo) * 0.05;
    let (xlo, xhi) = (xlo - pad, xhi + pad);
    let ys = series.iter().flat_map(|s| s.marks.iter()).flat_map(|m| {
        let (a, b) = m.ci.unwrap_or((m.y, m.y));
        [m.y, a, b]
    });
    let ys: Vec<f64> = ys.filter(|y| y.is_finite()).collect();
    let mut ylo = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut yhi = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if ys.is_empty() {
        ylo = 0.0;
        yhi = 1.0;
    }
    if ylo > 0.0 && ylo < (yhi - ylo) {
        ylo = 0.0; // start at zero when that costs little room
    }
    if yhi <= ylo {
        let d = if ylo == 0.0 { 1.0 } else { ylo.abs() * 0.1 };
        ylo -= d;
        yhi += d;
    }
    let pad = (yhi - ylo) * 0.05;
    let (ylo, yhi) = (if ylo == 0.0 { 0.0 } else { ylo - pad }, yhi + pad);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - xlo) / (xhi - xlo) * pw;
    let sy = |y: f64| TOP + ph - (y - ylo) / (yhi - ylo) * ph;

    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11" role="img"><title>{}</title><rect width="100%" height="100%" fill="white"/>"#,
        esc(title)
    );
    let _ = write!(
        o,
        r##"<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"##,
        LEFT,
        esc(title)
    );
    // Axes, grid and ticks.
    let _ = write!(
        o,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    );
    for t in ticks(ylo, yhi, 5) {
        let y = sy(t);
        let _ = write!(
            o,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 4.0,
            y + 4.0,
            esc(&short(t))
        );
    }
    for l in &labels {
        let x = sx(xpos(l));
        let _ = write!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#888"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 16.0,
            esc(l)
        );
    }
    let _ = write!(
        o,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text>"##,
        LEFT + pw / 2.0,
        H - 8.0,
        esc(x_label)
    );
    let _ = write!(
        o,
        r##"<text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
        TOP + ph / 2.0,
        esc(y_label)
    );
    // Series: line, error bars, points, legend.
    for (i, s) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let mut marks: Vec<&Mark> = s.marks.iter().filter(|m| m.y.is_finite()).collect();
        marks.sort_by(|a, b| xpos(&a.x).total_cmp(&xpos(&b.x)));
        let path: Vec<String> = marks
            .iter()
            .map(|m| format!("{:.1},{:.1}", sx(xpos(&m.x)), sy(m.y)))
            .collect();
        let _ = write!(
            o,
            r##"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"/>"##,
            path.join(" ")
        );
        for m in &marks {
            let x = sx(xpos(&m.x));
            if let Some((a, b)) = m.ci
                && a.is_finite()
                && b.is_finite()
            {
                let _ = write!(
                    o,
                    r##"<path d="M{x:.1},{:.1}V{:.1}M{:.1},{:.1}h8M{:.1},{:.1}h8" stroke="{c}" fill="none"/>"##,
                    sy(a),
                    sy(b),
                    x - 4.0,
                    sy(a),
                    x - 4.0,
                    sy(b)
                );
            }
            let ci =
                m.ci.map(|(a, b)| format!(" (95% CI {} .. {})", short(a), short(b)))
                    .unwrap_or_default();
            let _ = write!(
                o,
                r##"<circle cx="{x:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {} = {}{}</title></circle>"##,
                sy(m.y),
                esc(&s.name),
                esc(&m.x),
                short(m.y),
                esc(&ci)
            );
        }
        let ly = TOP + 10.0 + i as f64 * 16.0;
        let lx = LEFT + pw + 10.0;
        let _ = write!(
            o,
            r##"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"##,
            lx + 14.0,
            lx + 18.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_read_well() {
        assert_eq!(short(0.95), "0.95");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1.25), "1.25");
        assert_eq!(short(120.0), "120");
        assert_eq!(short(20000.0), "20.0k");
        assert_eq!(short(3_000_000.0), "3.00M");
        assert_eq!(short(0.00012), "1.20e-4");
        assert_eq!(short(0.0), "0");
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 1.0, 4), [0.0, 0.5, 1.0]);
        assert_eq!(ticks(3.0, 3.0, 5), [3.0]);
    }

    #[test]
    fn a_chart_draws_every_series_with_error_bars() {
        let s = |name: &str| Series {
            name: name.into(),
            marks: vec![
                Mark {
                    x: "5".into(),
                    y: 1.0,
                    ci: Some((0.5, 1.5)),
                },
                Mark {
                    x: "10".into(),
                    y: 2.0,
                    ci: None,
                },
            ],
        };
        let svg = line_chart("t <x>", "n", "s", &[s("a"), s("b & c")]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(svg.matches("h8M").count(), 2, "one error bar per series");
        assert!(svg.contains("t &lt;x&gt;") && svg.contains("b &amp; c"));
        // Categories, and an empty chart, still draw.
        let cat = line_chart(
            "c",
            "k",
            "v",
            &[Series {
                name: "x".into(),
                marks: vec![Mark {
                    x: "fast".into(),
                    y: 3.0,
                    ci: None,
                }],
            }],
        );
        assert!(cat.contains(">fast</text>"));
        assert!(line_chart("e", "k", "v", &[]).ends_with("</svg>"));
    }
}
