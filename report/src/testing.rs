//! Checks for tests: point [`check_processed_run`] at any run folder that
//! [`crate::process_run`] has processed (a synthetic one or a real
//! `peerlab run` output) and it verifies the outputs independently.
//!
//! The totals are recomputed here from the raw `<ID>.stats.jsonl` files with
//! a separate, deliberately plain implementation (through
//! `serde_json::Value`, sharing no code with the loader or the analysis), so
//! a bug in the pipeline cannot hide by agreeing with itself. Not a stable
//! API; the test suites use it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

/// Totals recomputed from the raw statistics files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTotals {
    /// Counter name (`msg_out/<type>`, ...) -> sum over instances.
    pub counters: BTreeMap<String, u64>,
    /// Instance id -> counter name -> its total.
    pub per_instance: BTreeMap<u32, BTreeMap<String, u64>>,
}

/// What [`check_processed_run`] looked at, for a test to print or assert on.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// (file name, width, height) of every plot.
    pub plots: Vec<(String, u32, u32)>,
    pub instances: usize,
    pub messages_sent: u64,
    pub messages_received: u64,
}

/// Plots every processed run must have.
pub const EXPECTED_PLOTS: [&str; 8] = [
    "messages_sent.png",
    "messages_received.png",
    "bytes.png",
    "drops.png",
    "cpu.png",
    "memory.png",
    "peers.png",
    "messages_per_instance.png",
];

/// Recomputes counter totals from every `<host>/node<NNN>/<ID>.stats.jsonl`.
/// Cumulative counters add up their increases; a `"reset": true` line, or a
/// value lower than the one before, starts again from zero; a name missing
/// from a line counts as 0; malformed lines are skipped.
pub fn raw_totals(run_dir: &Path) -> Result<RawTotals, String> {
    let mut out = RawTotals::default();
    for host in read_dir_sorted(run_dir)? {
        if !host.is_dir() || host.file_name().is_some_and(|n| n == "plots") {
            continue;
        }
        for node in read_dir_sorted(&host)? {
            let is_node = node
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("node"));
            if !is_node || !node.is_dir() {
                continue;
            }
            for file in read_dir_sorted(&node)? {
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let Some(id) = name
                    .strip_suffix(".stats.jsonl")
                    .and_then(|i| i.parse::<u32>().ok())
                else {
                    continue;
                };
                let text =
                    fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let totals = file_totals(&text);
                for (k, v) in &totals {
                    *out.counters.entry(k.clone()).or_default() += v;
                }
                out.per_instance.insert(id, totals);
            }
        }
    }
    Ok(out)
}

fn file_totals(text: &str) -> BTreeMap<String, u64> {
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut sum: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if !v.get("t").is_some_and(Value::is_number) {
            continue;
        }
        let Some(counters) = v.get("counters").and_then(Value::as_object) else {
            continue;
        };
        if counters.values().any(|x| !x.is_number()) {
            continue;
        }
        if v.get("reset").and_then(Value::as_bool) == Some(true) {
            last.clear();
        }
        let counting = |k: &str| {
            ["msg_out/", "bytes_out/", "msg_in/", "bytes_in/", "drop/"]
                .iter()
                .any(|p| k.starts_with(p))
        };
        let mut now: BTreeMap<String, f64> = BTreeMap::new();
        for (k, x) in counters {
            if counting(k) {
                now.insert(k.clone(), x.as_f64().unwrap_or(0.0));
            }
        }
        for (k, &x) in &now {
            let before = last.get(k).copied().unwrap_or(0.0);
            let inc = if x >= before { x - before } else { x };
            *sum.entry(k.clone()).or_default() += inc;
        }
        last = now;
    }
    sum.into_iter()
        .map(|(k, v)| (k, v.round() as u64))
        .collect()
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Decodes a PNG fully and returns its size.
pub fn png_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG: {e}"))?;
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or("PNG too large to decode")?
    ];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG does not decode: {e}"))?;
    Ok((info.width, info.height))
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return 0,
        }
    }
    cur.as_u64().unwrap_or(0)
}

/// Checks a processed run folder: every plot of [`EXPECTED_PLOTS`] exists
/// and decodes as a PNG of at least 400×300 pixels and 2 kB (not blank),
/// `report.html` exists and embeds them, and `summary.json`'s aggregates
/// equal the totals recomputed from the statistics files (per type, per
/// drop reason, per instance). Returns every problem found, not just the first.
pub fn check_processed_run(run_dir: &Path) -> Result<CheckReport, Vec<String>> {
    let mut problems = Vec::new();
    let mut plots = Vec::new();
    for name in EXPECTED_PLOTS {
        let path = run_dir.join("plots").join(name);
        match fs::read(&path) {
            Err(e) => problems.push(format!("{}: {e}", path.display())),
            Ok(bytes) => match png_size(&bytes) {
                Err(e) => problems.push(format!("{}: {e}", path.display())),
                Ok((w, h)) => {
                    if w < 400 || h < 300 {
                        problems.push(format!("{}: only {w}x{h} pixels", path.display()));
                    }
                    if bytes.len() < 2_000 {
                        problems.push(format!(
                            "{}: only {} bytes, probably blank",
                            path.display(),
                            bytes.len()
                        ));
                    }
                    plots.push((name.to_string(), w, h));
                }
            },
        }
    }
    match fs::read_to_string(run_dir.join("report.html")) {
        Err(e) => problems.push(format!("report.html: {e}")),
        Ok(html) => {
            let embedded = html.matches("src=\"data:image/png;base64,").count();
            if embedded != EXPECTED_PLOTS.len() {
                problems.push(format!(
                    "report.html embeds {embedded} images, expected {}",
                    EXPECTED_PLOTS.len()
                ));
            }
        }
    }

    let summary: Value =
        match fs::read_to_string(run_dir.join("summary.json")).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err([problems, vec![format!("summary.json: {e}")]].concat()),
            Err(e) => return Err([problems, vec![format!("summary.json: {e}")]].concat()),
        };
    let Some(agg) = summary.get("aggregates") else {
        problems.push("summary.json has no aggregates".into());
        return Err(problems);
    };
    let raw = match raw_totals(run_dir) {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            return Err(problems);
        }
    };

    // Totals per type and direction, and per drop reason.
    let mut expected_sent = 0;
    let mut expected_received = 0;
    for (name, &v) in &raw.counters {
        let (kind, ty) = name.split_once('/').unwrap_or((name, ""));
        let got = match kind {
            "msg_out" => {
                expected_sent += v;
                u64_at(agg, &["messages", "sent", "by_type", ty, "messages"])
            }
            "bytes_out" => u64_at(agg, &["messages", "sent", "by_type", ty, "bytes"]),
            "msg_in" => {
                expected_received += v;
                u64_at(agg, &["messages", "received", "by_type", ty, "messages"])
            }
            "bytes_in" => u64_at(agg, &["messages", "received", "by_type", ty, "bytes"]),
            "drop" => u64_at(agg, &["drops", "by_reason", ty]),
            _ => continue,
        };
        if got != v {
            problems.push(format!(
                "{name}: summary says {got}, the statistics files add up to {v}"
            ));
        }
    }
    let sent = u64_at(agg, &["messages", "sent", "messages"]);
    let received = u64_at(agg, &["messages", "received", "messages"]);
    if sent != expected_sent {
        problems.push(format!(
            "messages sent: summary says {sent}, the statistics files add up to {expected_sent}"
        ));
    }
    if received != expected_received {
        problems.push(format!(
            "messages received: summary says {received}, the statistics files add up to {expected_received}"
        ));
    }

    // Per instance.
    let rows = agg
        .get("per_instance")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rows.len() != raw.per_instance.len() {
        problems.push(format!(
            "summary lists {} instances, the folder has {} statistics files",
            rows.len(),
            raw.per_instance.len()
        ));
    }
    for row in &rows {
        let id = row.get("id").and_then(Value::as_u64).unwrap_or(0) as u32;
        let Some(mine) = raw.per_instance.get(&id) else {
            problems.push(format!(
                "summary lists instance {id}, which has no statistics file"
            ));
            continue;
        };
        let sum_of = |prefix: &str| {
            mine.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v)
                .sum::<u64>()
        };
        for (field, prefix) in [
            ("messages_sent", "msg_out/"),
            ("bytes_sent", "bytes_out/"),
            ("messages_received", "msg_in/"),
            ("bytes_received", "bytes_in/"),
            ("drops", "drop/"),
        ] {
            let got = u64_at(row, &[field]);
            let want = sum_of(prefix);
            if got != want {
                problems.push(format!("instance {id} {field}: summary says {got}, its statistics file adds up to {want}"));
            }
        }
    }

    if problems.is_empty() {
        Ok(CheckReport {
            plots,
            instances: rows.len(),
            messages_sent: sent,
            messages_received: received,
        })
    } else {
        Err(problems)
    }
}
