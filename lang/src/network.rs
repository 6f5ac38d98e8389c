//! The network model's values and files, typed once: bandwidths (`10Mbit`),
//! byte sizes (`64kB`), the topology a run names (`topology`: a built-in
//! model or a CSV/JSON file of latencies between groups, or coordinates)
//! and how instances are assigned to its groups (`topology_assign`).
//!
//! Owns: the units, the topology file formats and their diagnostics
//! (file:line), the built-in models and the assignment of instance ids to
//! groups ([`Topology`]). Must not: read files (the host hands the text
//! in), or know how a datagram is delayed (the instance runtime's
//! `topology`/`bandwidth` modules apply the model).

use std::time::Duration;

use crate::diag::{Diagnostic, SourceFile};
use crate::value::{ValueError, parse_duration, parse_float};

/// Bits per second from `10Mbit`, `500kbit`, `1Gbit`, `8000bit`, `2.5Mbps`
/// (bits too), or `unlimited` (infinite). A prefix is decimal (k = 1000)
/// and its case does not matter. Zero and negative rates are refused.
pub fn parse_bandwidth(s: &str) -> Result<f64, ValueError> {
    let t = s.trim();
    let err = || ValueError::Bandwidth(s.to_string());
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(f64::INFINITY);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(t.len());
    // `1e3bit` is fine, but `e` alone must not eat a unit's letter.
    let (num, unit) = t.split_at(split);
    let n = parse_float(num).map_err(|_| err())?;
    let unit = unit.to_ascii_lowercase();
    let base = unit
        .strip_suffix("bit")
        .or_else(|| unit.strip_suffix("bps"))
        .ok_or_else(err)?;
    let scale = match base {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return Err(err()),
    };
    let bits = n * scale;
    if bits <= 0.0 {
        return Err(ValueError::Range {
            value: s.to_string(),
            why: if bits < 0.0 {
                "a bandwidth cannot be negative".into()
            } else {
                "a bandwidth of 0 lets nothing through (lose everything with `loss=1` instead)"
                    .into()
            },
        });
    }
    Ok(bits)
}

/// A bandwidth as people write it: `10Mbit`, `1.5kbit`, `unlimited`.
pub fn format_bandwidth(bits: f64) -> String {
    if !bits.is_finite() {
        return "unlimited".into();
    }
    let (v, unit) = if bits >= 1e9 {
        (bits / 1e9, "Gbit")
    } else if bits >= 1e6 {
        (bits / 1e6, "Mbit")
    } else if bits >= 1e3 {
        (bits / 1e3, "kbit")
    } else {
        (bits, "bit")
    };
    let v = (v * 1000.0).round() / 1000.0;
    format!("{v}{unit}")
}

/// Bytes from `1500`, `64kB`, `1MB` (decimal) or `64KiB`, `1MiB` (binary).
pub fn parse_bytes(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let err = || ValueError::Bytes(s.to_string());
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let b = (n * scale).round();
    if !b.is_finite() || !(1.0..=1e12).contains(&b) {
        return Err(ValueError::Range {
            value: s.to_string(),
            why: "expected from 1 byte to 1 TB".into(),
        });
    }
    Ok(b as u64)
}

/// Latencies between named groups (regions): `latency[from * n + to]` is
/// the one-way latency of a datagram from a member of `from` to one of
/// `to`; the diagonal is the latency inside a group.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologySpec {
    pub groups: Vec<String>,
    pub latency: Vec<Duration>,
}

impl TopologySpec {
    /// The latency from group `from` to group `to`.
    pub fn latency(&self, from: usize, to: usize) -> Duration {
        self.latency[from * self.groups.len() + to]
    }

    /// The index of the group named `name`.
    pub fn group(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g == name)
    }
}

/// The built-in models `topology` names (instead of a file).
pub const BUILTIN: [(&str, &str); 2] = [
    (
        "world",
        "three regions, europe, north_america and asia: one-way 10 ms inside a region, europe-north_america 40 ms, north_america-asia 80 ms, europe-asia 115 ms (about half the public round-trip times between Frankfurt, New York and Tokyo)",
    ),
    (
        "lan",
        "one region, lan: 0.25 ms one-way between any two instances",
    ),
];

/// A built-in model by name.
pub fn builtin(name: &str) -> Option<TopologySpec> {
    let ms = |v: u64| Duration::from_millis(v);
    match name {
        "world" => Some(TopologySpec {
            groups: vec!["europe".into(), "north_america".into(), "asia".into()],
            latency: vec![
                ms(10),
                ms(40),
                ms(115),
                ms(40),
                ms(10),
                ms(80),
                ms(115),
                ms(80),
                ms(10),
            ],
        }),
        "lan" => Some(TopologySpec {
            groups: vec!["lan".into()],
            latency: vec![Duration::from_micros(250)],
        }),
        _ => None,
    }
}

/// Whether the `topology` value names a file (not a built-in model).
pub fn names_a_file(value: &str) -> bool {
    builtin(value).is_none()
}

/// The most groups a topology may have.
pub const MAX_GROUPS: usize = 1024;

/// Parse a topology file: `.csv` (a latency matrix) or `.json` (a matrix
/// or coordinates); see docs/network.md for both. Every problem is a
/// diagnostic at its line; `None` when the file cannot be used.
pub fn parse_topology(file: &SourceFile) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    if file.name().ends_with(".json") {
        crate::network_json::parse_json(file)
    } else {
        parse_csv(file)
    }
}

/// A latency as written in a file: a plain number is milliseconds, or a
/// duration with its unit (`40ms`, `0.04s`).
pub(crate) fn latency_value(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "expected a latency in milliseconds (`40`, `2.5`) or with a unit (`40ms`), found `{t}`"
        )
    };
    if t.starts_with('-') {
        return Err(format!("a latency cannot be negative, found `{t}`"));
    }
    if t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return parse_duration(t).map_err(|_| bad());
    }
    let ms = parse_float(t).map_err(|_| bad())?;
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| bad())
}

/// A CSV matrix: the first row names the groups (its first cell is a
/// label, e.g. `from\to`), each further row starts with a group's name and
/// gives its latency to every group of the header. Blank lines and lines
/// starting with `#` are skipped.
fn parse_csv(file: &SourceFile) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    let text = file.text();
    let mut diags = Vec::new();
    let mut offset = 0;
    let mut lines = Vec::new();
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        lines.push((start, line));
    }
    let Some(&(head_at, header)) = lines.first() else {
        diags.push(
            Diagnostic::error("the topology file is empty")
                .with_code("bad-topology")
                .at(file.location(0..0))
                .with_help("write a header row `from\\to,a,b` and one row per group"),
        );
        return (None, diags);
    };
    let cells =
        |line: &str| -> Vec<String> { line.split(',').map(|c| c.trim().to_string()).collect() };
    let groups: Vec<String> = cells(header).into_iter().skip(1).collect();
    let head_loc = file.location(head_at..head_at + header.len());
    if groups.is_empty() || groups.iter().any(String::is_empty) {
        diags.push(
            Diagnostic::error("the header row must name every group after its first cell")
                .with_code("bad-topology")
                .at(head_loc.clone())
                .with_help("e.g. `from\\to,europe,asia`"),
        );
        return (None, diags);
    }
    if groups.len() > MAX_GROUPS {
        diags.push(
            Diagnostic::error(format!("{} groups: at most {MAX_GROUPS}", groups.len()))
                .with_code("bad-topology")
                .at(head_loc),
        );
        return (None, diags);
    }
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].contains(g) {
            diags.push(
                Diagnostic::error(format!("group `{g}` is named twice in the header"))
                    .with_code("bad-topology")
                    .at(head_loc.clone()),
            );
        }
    }
    let n = groups.len();
    let mut latency: Vec<Option<Duration>> = vec![None; n * n];
    let mut row_seen = vec![false; n];
    for &(at, line) in &lines[1..] {
        let loc = file.location(at..at + line.len());
        let row = cells(line);
        let Some(from) = groups.iter().position(|g| *g == row[0]) else {
            diags.push(
                Diagnostic::error(format!(
                    "row for `{}`, a group the header does not name",
                    row[0]
                ))
                .with_code("bad-topology")
                .at(loc)
                .with_help(format!("the header names: {}", groups.join(", "))),
            );
            continue;
        };
        if std::mem::replace(&mut row_seen[from], true) {
            diags.push(
                Diagnostic::error(format!("a second row for `{}`", row[0]))
                    .with_code("bad-topology")
                    .at(loc),
            );
            continue;
        }
        if row.len() > n + 1 {
            diags.push(
                Diagnostic::error(format!("{} latencies for {n} groups", row.len() - 1))
                    .with_code("bad-topology")
                    .at(loc.clone()),
            );
        }
        for to in 0..n {
            match row.get(to + 1).map(String::as_str) {
                None | Some("") => diags.push(
                    Diagnostic::error(format!(
                        "no latency from `{}` to `{}`: every pair of groups needs one",
                        groups[from], groups[to]
                    ))
                    .with_code("topology-missing-pair")
                    .at(loc.clone())
                    .with_help("give a latency in milliseconds in every cell, the diagonal too (inside a group)"),
                ),
                Some(cell) => match latency_value(cell) {
                    Ok(d) => latency[from * n + to] = Some(d),
                    Err(why) => diags.push(
                        Diagnostic::error(format!("from `{}` to `{}`: {why}", groups[from], groups[to]))
                            .with_code("bad-topology")
                            .at(loc.clone()),
                    ),
                },
            }
        }
    }
    for (g, seen) in groups.iter().zip(&row_seen) {
        if !seen {
            diags.push(
                Diagnostic::error(format!(
                    "no row for group `{g}`: its latencies to the others are missing"
                ))
                .with_code("topology-missing-pair")
                .at(file.location(head_at..head_at + header.len()))
                .with_help(format!(
                    "add a row `{g},...` with its latency to every group"
                )),
            );
        }
    }
    finish(groups, latency, diags)
}

/// A spec when every pair has a latency and nothing else went wrong.
pub(crate) fn finish(
    groups: Vec<String>,
    latency: Vec<Option<Duration>>,
    diags: Vec<Diagnostic>,
) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    if !diags.is_empty() || latency.iter().any(Option::is_none) {
        return (None, diags);
    }
    let latency = latency.into_iter().flatten().collect();
    (Some(TopologySpec { groups, latency }), diags)
}

/// How instances are assigned to the topology's groups
/// (`topology_assign`).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub enum Assignment {
    /// Instance `i` joins group `(i - 1) mod groups` (the default).
    #[default]
    RoundRobin,
    /// Consecutive blocks of ids, each group its fraction of the instances
    /// (largest remainder), in the order written.
    Fractions(Vec<(String, f64)>),
}

impl Assignment {
    /// Parse `round_robin` or `europe:0.5, asia:0.5` (fractions summing to 1).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("round_robin") || t.eq_ignore_ascii_case("round-robin") {
            return Ok(Assignment::RoundRobin);
        }
        let bad = |why: &str| {
            format!(
                "bad value for `topology_assign`: {why}; expected `round_robin` or fractions like `europe:0.5, asia:0.3, north_america:0.2`, found `{t}`"
            )
        };
        let mut out: Vec<(String, f64)> = Vec::new();
        for part in t.split(',') {
            let (name, frac) = part
                .split_once(':')
                .ok_or_else(|| bad("a group without its fraction"))?;
            let name = name.trim();
            let f = parse_float(frac).map_err(|_| bad("a fraction that is not a number"))?;
            if name.is_empty() || !(0.0..=1.0).contains(&f) {
                return Err(bad("each fraction is from 0 to 1"));
            }
            if out.iter().any(|(n, _)| n == name) {
                return Err(bad(&format!("group `{name}` is named twice")));
            }
            out.push((name.to_string(), f));
        }
        let sum: f64 = out.iter().map(|(_, f)| f).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(bad(&format!("the fractions add up to {sum}, not 1")));
        }
        Ok(Assignment::Fractions(out))
    }
}

/// A topology with every instance in its group: what the instance runtime
/// applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub spec: TopologySpec,
    /// The group of instance `id` at `id - 1`.
    pub of_instance: Vec<u16>,
}

impl Topology {
    /// Assign `instances` instances; the error names a group the
    /// assignment gives that the topology does not have.
    pub fn assign(spec: TopologySpec, how: &Assignment, instances: u32) -> Result<Self, String> {
        let n = instances as usize;
        let of_instance = match how {
            Assignment::RoundRobin => (0..n).map(|i| (i % spec.groups.len()) as u16).collect(),
            Assignment::Fractions(parts) => {
                let mut index = Vec::with_capacity(parts.len());
                for (name, _) in parts {
                    let Some(g) = spec.group(name) else {
                        let hint = crate::suggest(name, spec.groups.iter().map(String::as_str))
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        return Err(format!(
                            "`topology_assign` names group `{name}`, which the topology does not have{hint}; its groups: {}",
                            spec.groups.join(", ")
                        ));
                    };
                    index.push(g as u16);
                }
                // Largest remainder: shares that add up to exactly n.
                let exact: Vec<f64> = parts.iter().map(|(_, f)| f * n as f64).collect();
                let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
                let mut left = n.saturating_sub(counts.iter().sum());
                let mut order: Vec<usize> = (0..parts.len()).collect();
                order.sort_by(|&a, &b| {
                    (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor()))
                });
                for &i in order.iter().cycle().take(parts.len() * 2) {
                    if left == 0 {
                        break;
                    }
                    counts[i] += 1;
                    left -= 1;
                }
                let mut out = Vec::with_capacity(n);
                for (g, c) in index.iter().zip(counts) {
                    out.extend(std::iter::repeat_n(*g, c));
                }
                out.truncate(n);
                out
            }
        };
        Ok(Topology { spec, of_instance })
    }

    /// The group instance `id` is in (`None`: not an instance of the run).
    pub fn group_of(&self, id: u32) -> Option<usize> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.of_instance.get(i).map(|&g| g as usize)
    }

    /// The one-way latency from instance `from` to instance `to`.
    pub fn latency(&self, from: u32, to: u32) -> Option<Duration> {
        Some(self.spec.latency(self.group_of(from)?, self.group_of(to)?))
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
