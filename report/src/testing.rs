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
    for (id, file) in stats_files(run_dir)? {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let totals = file_totals(&text);
        for (k, v) in &totals {
            *out.counters.entry(k.clone()).or_default() += v;
        }
        out.per_instance.insert(id, totals);
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

/// Every instance's statistics file, `<host>/node<NNN>/<ID>.stats.jsonl`,
/// by id, in path order (named as peerlab-run's layout names them).
fn stats_files(run_dir: &Path) -> Result<Vec<(u32, std::path::PathBuf)>, String> {
    let mut files = Vec::new();
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
                    .unwrap_or_default();
                if let Some((id, peerlab_run::layout::InstanceFile::Stats)) =
                    peerlab_run::layout::instance_file(name)
                {
                    files.push((id, file));
                }
            }
        }
    }
    Ok(files)
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
    // Every PNG has its SVG beside it.
    let pngs: Vec<String> = read_dir_sorted(&run_dir.join("plots"))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".png")
                .map(str::to_string)
        })
        .collect();
    for stem in &pngs {
        let svg = run_dir.join("plots").join(format!("{stem}.svg"));
        match fs::read_to_string(&svg) {
            Ok(text) if text.starts_with("<svg") && text.trim_end().ends_with("</svg>") => {}
            Ok(_) => problems.push(format!("{}: not an SVG document", svg.display())),
            Err(e) => problems.push(format!("{}: {e}", svg.display())),
        }
    }
    // The page embeds every plot (the general ones and one or two per
    // metric); images post_process_cmd drew are extra.
    match fs::read_to_string(run_dir.join("report.html")) {
        Err(e) => problems.push(format!("report.html: {e}")),
        Ok(html) => {
            let embedded = html.matches("src=\"data:image/png;base64,").count();
            let extra = html.split("id=\"post-process\"").nth(1).map_or(0, |rest| {
                rest.matches("src=\"data:image/png;base64,").count()
            });
            let expected = pngs.len().max(EXPECTED_PLOTS.len());
            if embedded - extra.min(embedded) != expected {
                problems.push(format!(
                    "report.html embeds {embedded} images, expected {expected}",
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

/// Declared metrics recomputed from the raw files: run.json's `metrics`
/// and every `<ID>.stats.jsonl` (through `serde_json::Value`, as
/// [`raw_totals`] does; histograms decoded and merged with peerlab-run's
/// `Histogram`, the exact merge the contract names).
#[derive(Debug, Clone, Default)]
pub struct RawMetrics {
    /// Counter or gauge name -> instance -> its (t, value) per line, a
    /// counter's value counting on across resets.
    pub series: BTreeMap<String, BTreeMap<u32, Vec<(f64, f64)>>>,
    /// Observation name -> instance -> its samples.
    pub observations: BTreeMap<String, BTreeMap<u32, peerlab_run::metrics::Histogram>>,
    /// Name -> kind (`counter`, `gauge`, `observation`), declared.
    pub kinds: BTreeMap<String, String>,
    /// The last statistics line's `t` of any instance.
    pub last_t: f64,
}

/// Recomputes every declared metric from the raw files.
pub fn raw_metrics(run_dir: &Path) -> Result<RawMetrics, String> {
    let run: Value = serde_json::from_str(
        &fs::read_to_string(run_dir.join("run.json")).map_err(|e| format!("run.json: {e}"))?,
    )
    .map_err(|e| format!("run.json: {e}"))?;
    let decls: Vec<(String, String)> = run
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("name")?.as_str()?.to_string(),
                d.get("kind")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let kind_of = |name: &str| -> Option<String> {
        decls
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| {
                decls.iter().find(|(n, _)| {
                    n.strip_suffix("/*")
                        .is_some_and(|p| name.starts_with(&format!("{p}/")))
                })
            })
            .map(|(_, k)| k.clone())
    };
    let mut out = RawMetrics::default();
    for (id, file) in stats_files(run_dir)? {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut base: BTreeMap<String, f64> = BTreeMap::new();
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(t) = v.get("t").and_then(Value::as_f64) else {
                continue;
            };
            let Some(counters) = v.get("counters").and_then(Value::as_object) else {
                continue;
            };
            if counters.values().any(|x| !x.is_number()) {
                continue;
            }
            out.last_t = out.last_t.max(t);
            if v.get("reset").and_then(Value::as_bool) == Some(true) {
                for (k, l) in last.iter_mut() {
                    *base.entry(k.clone()).or_default() += *l;
                    *l = 0.0;
                }
            }
            for (k, x) in counters {
                let Some(kind) = kind_of(k) else { continue };
                let x = x.as_f64().unwrap_or(0.0);
                let value = if kind == "counter" {
                    let before = last.get(k).copied().unwrap_or(0.0);
                    if x < before {
                        *base.entry(k.clone()).or_default() += before;
                    }
                    last.insert(k.clone(), x);
                    base.get(k).copied().unwrap_or(0.0) + x
                } else {
                    x
                };
                out.kinds.insert(k.clone(), kind);
                out.series
                    .entry(k.clone())
                    .or_default()
                    .entry(id)
                    .or_default()
                    .push((t, value));
            }
            if let Some(obs) = v.get("observations").and_then(Value::as_object) {
                for (k, h) in obs {
                    let Some(kind) = kind_of(k) else { continue };
                    let h = peerlab_run::metrics::Histogram::from_base64(
                        h.as_str().unwrap_or_default(),
                    )
                    .map_err(|e| format!("{}: {k}: {e}", file.display()))?;
                    out.kinds.insert(k.clone(), kind);
                    out.observations
                        .entry(k.clone())
                        .or_default()
                        .entry(id)
                        .or_default()
                        .merge(&h);
                }
            }
        }
    }
    Ok(out)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Checks a processed run's metrics against [`raw_metrics`]: every
/// declared metric's `aggregates.metrics` entry in summary.json, the last
/// value and line count of each instance in `timeseries.csv`, and every row
/// of `observations.csv`. Returns every problem found.
pub fn check_metrics(run_dir: &Path) -> Result<RawMetrics, Vec<String>> {
    let raw = raw_metrics(run_dir).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let summary: Value = fs::read_to_string(run_dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let agg = &summary["aggregates"]["metrics"];
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    for (name, per) in &raw.series {
        let m = &agg[name];
        let finals: Vec<f64> = per.values().filter_map(|s| s.last().map(|p| p.1)).collect();
        let total: f64 = finals.iter().sum();
        let min = finals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let want = [
            ("instances", finals.len() as f64),
            ("total", total),
            ("mean", total / finals.len() as f64),
            ("min", min),
            ("max", max),
        ];
        for (k, w) in want {
            // summary.json rounds to 4 decimals.
            if (f(m, k) - w).abs() > 1e-4 * w.abs().max(1.0) {
                problems.push(format!(
                    "{name} {k}: summary says {}, the files say {w}",
                    m[k]
                ));
            }
        }
        if raw.kinds[name] == "counter" {
            let rate = total / raw.last_t;
            if (f(m, "rate_per_s") - rate).abs() > 1e-4 * rate.max(1.0) {
                problems.push(format!(
                    "{name} rate_per_s: summary says {}, the files say {rate}",
                    m["rate_per_s"]
                ));
            }
        }
    }
    for (name, per) in &raw.observations {
        let mut all = peerlab_run::metrics::Histogram::new();
        per.values().for_each(|h| all.merge(h));
        let d = &agg[name]["distribution"];
        let s = all.stats();
        for (k, w) in [
            ("count", s.count as f64),
            ("min", s.min),
            ("p50", s.p50),
            ("p90", s.p90),
            ("p99", s.p99),
            ("max", s.max),
            ("mean", s.mean),
        ] {
            if (f(d, k) - w).abs() > 1e-4 * w.abs().max(1.0) {
                problems.push(format!(
                    "{name} {k}: summary says {}, the files say {w}",
                    d[k]
                ));
            }
        }
        if f(&agg[name], "instances") != per.len() as f64 {
            problems.push(format!(
                "{name}: summary counts {} instances, the files {}",
                agg[name]["instances"],
                per.len()
            ));
        }
    }

    // timeseries.csv: every line of every instance, the last value right.
    match fs::read_to_string(run_dir.join("timeseries.csv")) {
        Err(e) => problems.push(format!("timeseries.csv: {e}")),
        Ok(text) => {
            let mut lines = text.lines();
            if lines.next() != Some("run,instance,t,metric,value") {
                problems.push("timeseries.csv: wrong header".into());
            }
            let mut got: BTreeMap<(String, u32), Vec<(f64, f64)>> = BTreeMap::new();
            for l in lines {
                let c: Vec<&str> = l.split(',').collect();
                if c.len() != 5 {
                    problems.push(format!("timeseries.csv: bad row {l}"));
                    continue;
                }
                let (Ok(id), Ok(t), Ok(v)) = (c[1].parse(), c[2].parse(), c[4].parse()) else {
                    problems.push(format!("timeseries.csv: bad row {l}"));
                    continue;
                };
                got.entry((c[3].to_string(), id)).or_default().push((t, v));
            }
            for (name, per) in &raw.series {
                for (id, series) in per {
                    match got.get(&(name.clone(), *id)) {
                        Some(rows) if rows == series => {}
                        Some(rows) => problems.push(format!(
                            "timeseries.csv: {name} of instance {id}: {} rows ending {:?}, the files have {} ending {:?}",
                            rows.len(), rows.last(), series.len(), series.last()
                        )),
                        None => problems.push(format!("timeseries.csv: no {name} for instance {id}")),
                    }
                }
            }
        }
    }

    // observations.csv: each instance's and the merged row.
    match fs::read_to_string(run_dir.join("observations.csv")) {
        Err(e) => problems.push(format!("observations.csv: {e}")),
        Ok(text) => {
            let rows: BTreeMap<(String, String), Vec<f64>> = text
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let c: Vec<&str> = l.split(',').collect();
                    let nums = c.get(3..)?.iter().filter_map(|x| x.parse().ok()).collect();
                    Some(((c.get(2)?.to_string(), c.get(1)?.to_string()), nums))
                })
                .collect();
            for (name, per) in &raw.observations {
                let mut all = peerlab_run::metrics::Histogram::new();
                let mut check = |who: String, h: &peerlab_run::metrics::Histogram| {
                    let s = h.stats();
                    let want = [s.count as f64, s.min, s.p50, s.p90, s.p99, s.max, s.mean];
                    match rows.get(&(name.clone(), who.clone())) {
                        Some(got)
                            if got.len() == 7
                                && got.iter().zip(want).all(|(a, b)| close(*a, b)) => {}
                        other => problems.push(format!(
                            "observations.csv: {name} {who}: {other:?}, the files say {want:?}"
                        )),
                    }
                };
                for (id, h) in per {
                    check(id.to_string(), h);
                    all.merge(h);
                }
                check("all".into(), &all);
            }
        }
    }
    if problems.is_empty() {
        Ok(raw)
    } else {
        Err(problems)
    }
}
