//! A grid point's experiment config: the experiment's own `.conf` text with
//! the swept keys set to the point's values (their original lines kept as
//! comments) and `scenario_file` made absolute, since the point's config
//! lives in the sweep folder, not beside the original. Every run of the
//! point runs this file, so its run folder records the values like any
//! other key.
//!
//! Pure: text in, text out (parsed with peerlab-lang). Must not: read or
//! write files.

use std::path::Path;

use peerlab_lang::{Severity, parse_config};

use crate::error::SweepError;
use crate::grid::Point;

/// Quote a value for a config line.
fn quoted(v: &str) -> String {
    format!("\"{v}\"")
}

/// The point's config from the experiment's `.conf` (`name`: its path, for
/// errors; `dir`: its folder, which a relative `scenario_file` is relative
/// to).
pub fn point_conf(
    original: &str,
    name: &str,
    dir: &Path,
    point: &Point,
) -> Result<String, SweepError> {
    let (raw, diags) = parse_config(name, original);
    if let Some(d) = diags.iter().find(|d| d.severity == Severity::Error) {
        let line = d.location.as_ref().map(|l| l.line).unwrap_or(1);
        return Err(SweepError::Conf {
            path: name.into(),
            message: format!(
                "line {line}: {}; fix it (`peerlab check {name}` shows every problem)",
                d.message
            ),
        });
    }
    let line_of = |offset: usize| original[..offset.min(original.len())].matches('\n').count() + 1;
    // Lines (1-based, inclusive) to comment out, and a new scenario_file.
    let mut drop: Vec<(usize, usize)> = Vec::new();
    let mut scenario: Option<String> = None;
    for e in &raw.entries {
        let swept = point.0.iter().any(|(k, _)| *k == e.key);
        let is_scenario = e.key == "scenario_file";
        if swept || is_scenario {
            drop.push((line_of(e.key_loc.span.start), line_of(e.value_loc.span.end)));
        }
        if is_scenario && !swept {
            let file = e.value.as_str().unwrap_or_default();
            let abs = if Path::new(file).is_absolute() {
                Path::new(file).to_path_buf()
            } else {
                dir.join(file)
            };
            scenario = Some(abs.to_string_lossy().into_owned());
        }
    }
    let mut out = format!("# peerlab sweep: the grid point {point} of {name}\n");
    for (k, v) in &point.0 {
        out.push_str(&format!("{k} = {}\n", quoted(v)));
    }
    if let Some(s) = scenario {
        out.push_str(&format!("scenario_file = {}\n", quoted(&s)));
    }
    out.push_str("# the experiment's own config:\n");
    for (i, line) in original.lines().enumerate() {
        let n = i + 1;
        if drop.iter().any(|(a, b)| (*a..=*b).contains(&n)) {
            out.push_str("# (set above) ");
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// A point's config for an experiment given as a bare `.scenario`.
pub fn scenario_conf(scenario: &Path, experiment: &str, point: &Point) -> String {
    let mut out = format!(
        "# peerlab sweep: the grid point {point} of {}\nexperiment_name = {}\nscenario_file = {}\n",
        scenario.display(),
        quoted(experiment),
        quoted(&scenario.to_string_lossy())
    );
    for (k, v) in &point.0 {
        out.push_str(&format!("{k} = {}\n", quoted(v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(kv: &[(&str, &str)]) -> Point {
        Point(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn swept_keys_are_replaced_and_the_scenario_made_absolute() {
        let original = "experiment_name = bench\nscenario_file = b.scenario\ninstances_to_run = 8 # few\nexperiment_time = 60\n";
        let text = point_conf(
            original,
            "/x/b.conf",
            Path::new("/x"),
            &pt(&[("instances_to_run", "20")]),
        )
        .unwrap();
        let (raw, diags) = parse_config("p.conf", &text);
        assert!(diags.is_empty(), "{diags:?}\n{text}");
        let get = |k: &str| {
            raw.entries
                .iter()
                .find(|e| e.key == k)
                .and_then(|e| e.value.as_str().map(String::from))
        };
        assert_eq!(get("instances_to_run").as_deref(), Some("20"));
        assert_eq!(get("scenario_file").as_deref(), Some("/x/b.scenario"));
        assert_eq!(get("experiment_time").as_deref(), Some("60"));
        assert!(
            text.contains("# (set above) instances_to_run = 8 # few"),
            "{text}"
        );
    }

    #[test]
    fn a_key_the_file_lacks_is_added_and_a_broken_file_is_refused() {
        let text = point_conf(
            "scenario_file = /abs/s.scenario\n",
            "c.conf",
            Path::new("/x"),
            &pt(&[("fanout", "3")]),
        )
        .unwrap();
        assert!(text.contains("fanout = \"3\"\n"), "{text}");
        assert!(
            text.contains("scenario_file = \"/abs/s.scenario\""),
            "{text}"
        );
        let e = point_conf("x = \"open\n", "bad.conf", Path::new("/"), &pt(&[])).unwrap_err();
        assert!(e.to_string().contains("bad.conf"), "{e}");
        let s = scenario_conf(
            Path::new("/s/g.scenario"),
            "g",
            &pt(&[("instances_to_run", "4")]),
        );
        let (raw, diags) = parse_config("s.conf", &s);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(raw.entries.len(), 3);
    }
}
