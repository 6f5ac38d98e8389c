//! The JSON topology file: a latency matrix (`latency_ms`) or coordinates
//! whose distances give the latency (`coordinates`, `ms_per_unit`,
//! `intra_ms`); see docs/network.md.
//!
//! Owns: reading that JSON into a [`TopologySpec`] with diagnostics at the
//! line of the group they are about. Must not: read files.

use std::time::Duration;

use serde_json::Value;

use crate::diag::{Diagnostic, Location, SourceFile};
use crate::network::{MAX_GROUPS, TopologySpec, finish, latency_value};

/// Where `"name"` first appears after `from` as the key of an object or
/// a list (`"name": {` or `"name": [`: the line a problem with that group
/// is reported at), else as any key, else the file's start.
fn key_loc(file: &SourceFile, name: &str, from: usize) -> Location {
    let needle = format!("\"{name}\"");
    let text = file.text();
    let rest = text.get(from..).unwrap_or("");
    let opens = |i: usize| {
        let after = rest[i + needle.len()..].trim_start();
        after
            .strip_prefix(':')
            .is_some_and(|a| a.trim_start().starts_with(['{', '[']))
    };
    let hits: Vec<usize> = rest.match_indices(&needle).map(|(i, _)| i).collect();
    match hits.iter().find(|&&i| opens(i)).or(hits.first()) {
        Some(&i) => file.location(from + i..from + i + needle.len()),
        None => file.location(0..0),
    }
}

fn err(msg: String, loc: Location) -> Diagnostic {
    Diagnostic::error(msg).with_code("bad-topology").at(loc)
}

/// A latency given as a JSON number (milliseconds) or a string (`"40ms"`).
fn json_latency(v: &Value) -> Result<Duration, String> {
    match v {
        Value::Number(n) => latency_value(&n.to_string()),
        Value::String(s) => latency_value(s),
        other => Err(format!(
            "expected a latency in milliseconds, found `{other}`"
        )),
    }
}

pub(crate) fn parse_json(file: &SourceFile) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    let value: Value = match serde_json::from_str(file.text()) {
        Ok(v) => v,
        Err(e) => {
            // serde_json counts lines and columns from 1, like Location.
            let line_start = file
                .text()
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(str::len)
                .sum::<usize>();
            let at = line_start + e.column().saturating_sub(1);
            return (
                None,
                vec![err(format!("not valid JSON: {e}"), file.location(at..at))],
            );
        }
    };
    let top = file.location(0..0);
    let Some(obj) = value.as_object() else {
        return (
            None,
            vec![err(
                "expected a JSON object with `latency_ms` or `coordinates`".into(),
                top,
            )],
        );
    };
    if let Some(m) = obj.get("latency_ms") {
        matrix(file, m)
    } else if let Some(c) = obj.get("coordinates") {
        coordinates(file, obj, c)
    } else {
        (
            None,
            vec![
                err(
                    "expected `latency_ms` (a matrix) or `coordinates`".into(),
                    top,
                )
                .with_help("see docs/network.md, Topology files"),
            ],
        )
    }
}

/// `{"latency_ms": {"a": {"a": 10, "b": 40}, "b": {...}}}`.
fn matrix(file: &SourceFile, m: &Value) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let Some(rows) = m.as_object() else {
        return (
            None,
            vec![err(
                "`latency_ms` must be an object of rows".into(),
                key_loc(file, "latency_ms", 0),
            )],
        );
    };
    let groups: Vec<String> = rows.keys().cloned().collect();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        return (
            None,
            vec![err(
                format!(
                    "`latency_ms` has {} groups: from 1 to {MAX_GROUPS}",
                    groups.len()
                ),
                key_loc(file, "latency_ms", 0),
            )],
        );
    }
    let n = groups.len();
    let mut latency = vec![None; n * n];
    let body = file.text().find("\"latency_ms\"").unwrap_or(0);
    for (from, g) in groups.iter().enumerate() {
        let loc = key_loc(file, g, body);
        let Some(row) = rows[g].as_object() else {
            diags.push(err(
                format!("the row of `{g}` must be an object: {{\"{g}\": 10, ...}}"),
                loc,
            ));
            continue;
        };
        for (to, h) in groups.iter().enumerate() {
            match row.get(h) {
                None => diags.push(
                    Diagnostic::error(format!(
                        "no latency from `{g}` to `{h}`: every pair of groups needs one"
                    ))
                    .with_code("topology-missing-pair")
                    .at(loc.clone())
                    .with_help(format!("add \"{h}\": <milliseconds> to the row of `{g}`")),
                ),
                Some(v) => match json_latency(v) {
                    Ok(d) => latency[from * n + to] = Some(d),
                    Err(why) => diags.push(err(format!("from `{g}` to `{h}`: {why}"), loc.clone())),
                },
            }
        }
        for k in row.keys().filter(|k| !rows.contains_key(*k)) {
            diags.push(err(
                format!("the row of `{g}` names `{k}`, which has no row of its own"),
                loc.clone(),
            ));
        }
    }
    finish(groups, latency, diags)
}

/// `{"coordinates": {"a": [0, 0], "b": [3, 4]}, "ms_per_unit": 10, "intra_ms": 2}`:
/// the latency between two groups is their Euclidean distance times
/// `ms_per_unit` (default 1); inside a group it is `intra_ms` (default 0).
fn coordinates(
    file: &SourceFile,
    obj: &serde_json::Map<String, Value>,
    c: &Value,
) -> (Option<TopologySpec>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let number = |key: &str, default: f64, diags: &mut Vec<Diagnostic>| match obj.get(key) {
        None => default,
        Some(v) => match v.as_f64() {
            Some(f) if f >= 0.0 && f.is_finite() => f,
            _ => {
                diags.push(err(
                    format!("`{key}` must be a number of milliseconds, not negative"),
                    key_loc(file, key, 0),
                ));
                default
            }
        },
    };
    let per_unit = number("ms_per_unit", 1.0, &mut diags);
    let intra = number("intra_ms", 0.0, &mut diags);
    let Some(points) = c.as_object() else {
        return (
            None,
            vec![err(
                "`coordinates` must be an object: {\"europe\": [x, y], ...}".into(),
                key_loc(file, "coordinates", 0),
            )],
        );
    };
    let body = file.text().find("\"coordinates\"").unwrap_or(0);
    let groups: Vec<String> = points.keys().cloned().collect();
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        diags.push(err(
            format!(
                "`coordinates` has {} groups: from 1 to {MAX_GROUPS}",
                groups.len()
            ),
            key_loc(file, "coordinates", 0),
        ));
        return (None, diags);
    }
    let mut xy = Vec::with_capacity(groups.len());
    for g in &groups {
        let p: Option<Vec<f64>> = points[g]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect());
        match p {
            Some(p) if !p.is_empty() && p.len() == points[g].as_array().map_or(0, Vec::len) => {
                xy.push(p)
            }
            _ => {
                diags.push(err(
                    format!(
                        "the coordinates of `{g}` must be a list of numbers, e.g. [52.5, 13.4]"
                    ),
                    key_loc(file, g, body),
                ));
                xy.push(Vec::new());
            }
        }
    }
    let n = groups.len();
    let mut latency = vec![None; n * n];
    for a in 0..n {
        for b in 0..n {
            let ms = if a == b {
                intra
            } else if xy[a].len() != xy[b].len() {
                diags.push(err(
                    format!(
                        "`{}` and `{}` have coordinates of different dimensions",
                        groups[a], groups[b]
                    ),
                    key_loc(file, &groups[b], body),
                ));
                continue;
            } else {
                xy[a]
                    .iter()
                    .zip(&xy[b])
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt()
                    * per_unit
            };
            latency[a * n + b] = Duration::try_from_secs_f64(ms / 1000.0).ok();
        }
    }
    finish(groups, latency, diags)
}
