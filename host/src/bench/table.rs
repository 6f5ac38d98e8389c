//! The measurements as the table `peerlab bench` prints without `--json`.
//!
//! Must not: compute figures (they come measured).

use super::Measurement;

/// The measurements as a table.
pub fn table(results: &[Measurement]) -> String {
    let mut rows = vec![
        [
            "N",
            "procs",
            "pool",
            "wall s",
            "messages",
            "msgs/s",
            "cpu s",
            "peak RSS MB",
            "KiB/inst",
            "correct",
            "others",
        ]
        .map(String::from),
    ];
    for m in results {
        rows.push([
            m.peers.to_string(),
            m.processes.to_string(),
            if m.shared_verification { "on" } else { "off" }.to_string(),
            m.protocol_wall_s.map_or("-".into(), |w| format!("{w:.3}")),
            thousands(m.messages),
            m.msgs_per_s.map_or("-".into(), |r| thousands(r as u64)),
            m.cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
            format!("{:.1}", m.peak_rss_mb),
            format!("{:.0}", m.kib_per_instance),
            if m.correct { "yes" } else { "no" }.to_string(),
            m.other_load.map_or("-".into(), |l| format!("{l:.2}")),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `1234567` -> `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_and_groups_digits() {
        let m = Measurement {
            peers: 400,
            processes: 1,
            shared_verification: true,
            fanout: 399,
            protocol_wall_s: Some(1.5),
            messages: 1_234_567,
            msgs_per_s: Some(823_045.0),
            cpu_s: Some(2.5),
            peak_rss_mb: 80.25,
            kib_per_instance: 205.4,
            totals_known: 400,
            other_load: Some(0.04),
            correct: true,
            run_dir: String::new(),
        };
        let t = table(&[m]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("  N  procs  pool"), "{t}");
        assert!(
            lines[1].contains("1,234,567") && lines[1].contains("823,045"),
            "{t}"
        );
        assert!(lines[1].ends_with("yes    0.04"), "{t}");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
