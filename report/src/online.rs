//! "Peers online": how many instances were online over time, summed from
//! the `core` module's `online` gauge (1 online, 0 away after `leave` or a
//! churn departure) that instances record in their statistics lines when
//! the scenario uses presence commands; the series the report writes to
//! `peers_online.csv` and its figure, with the presence events (`leave`,
//! `join`, `restart`, `churn`, `crash`) marked where they happened.
//!
//! An instance counts from its first statistics line to its last (its
//! end); one whose last line is within a second of the run's last counts
//! to the end of the chart (everyone stops at the end; the chart does not
//! drop to zero for it).
//!
//! Must not: read or write files (the loader reads, the pipeline writes)
//! or draw ([`crate::draw`] does).

use std::fmt::Write as _;

use crate::analyse::Analysis;
use crate::plot::{Chart, Figure, Line, LineChart, Marker, MarkerKind};

/// The gauge's full name in the statistics lines (`core`'s are unprefixed).
pub const ONLINE_METRIC: &str = "online";

/// The file name of the chart under `plots/`.
pub const FIGURE_FILE: &str = "peers_online.png";

/// The fault events that change who is online (their first word).
const PRESENCE_EVENTS: [&str; 5] = ["leave", "join", "restart", "churn", "crash"];

/// How many instances were online: `(t, count)` at every change, in order
/// (the count holds until the next point). `None` when no instance recorded
/// the gauge (a run without presence commands).
pub fn series(an: &Analysis) -> Option<Vec<(f64, f64)>> {
    let m = an
        .metrics
        .metrics
        .iter()
        .find(|m| m.name == ONLINE_METRIC)?;
    if m.series.is_empty() {
        return None;
    }
    let run_end = m
        .series
        .iter()
        .filter_map(|(_, s)| s.last().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut changes: Vec<(f64, f64)> = Vec::new();
    for (_, points) in &m.series {
        let mut prev = 0.0;
        for &(t, v) in points {
            if v != prev {
                changes.push((t, v - prev));
                prev = v;
            }
        }
        if let Some(&(last, _)) = points.last()
            && last < run_end - 1.0
            && prev != 0.0
        {
            // Ended (or crashed) before the run did: no longer online.
            changes.push((last, -prev));
        }
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut count = 0.0;
    for (t, d) in changes {
        count += d;
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = count,
            _ => out.push((t, count)),
        }
    }
    // One leaving as another returns is no change.
    out.dedup_by(|later, earlier| later.1 == earlier.1);
    if let Some(&(_, c)) = out.last()
        && out.last().is_some_and(|l| l.0 < run_end)
    {
        out.push((run_end, c));
    }
    Some(out)
}

/// `peers_online.csv`: `t,online` at every change (scenario seconds).
pub fn csv(points: &[(f64, f64)]) -> String {
    let mut out = String::from("t,online\n");
    for (t, c) in points {
        let _ = writeln!(out, "{t},{c}");
    }
    out
}

/// The "peers online" figure: the count as a step line, and the presence
/// events from the first to the last instance they happened to.
pub fn figure(an: &Analysis, frame: &LineChart) -> Option<Figure> {
    let points = series(an)?;
    let mut steps = Vec::with_capacity(points.len() * 2);
    let mut prev: Option<f64> = None;
    for &(t, c) in &points {
        if let Some(p) = prev {
            steps.push((t, p));
        }
        steps.push((t, c));
        prev = Some(c);
    }
    let markers: Vec<Marker> = an
        .aggregates
        .events
        .iter()
        .filter(|e| e.kind == "fault")
        .filter(|e| {
            let first = e.text.split_whitespace().next().unwrap_or("");
            PRESENCE_EVENTS.contains(&first)
        })
        .map(|e| Marker {
            label: e.text.clone(),
            from: e.first_t * an.wall_to_plot,
            to: e.last_t * an.wall_to_plot,
            kind: MarkerKind::Fault,
        })
        .collect();
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let chart = LineChart {
        y_label: "instances online".into(),
        y_integer: true,
        empty: "no data: no instance recorded the online gauge".into(),
        lines: vec![Line {
            name: "online".into(),
            points: steps,
        }],
        markers,
        ..frame.clone()
    };
    Some(Figure {
        file: FIGURE_FILE.into(),
        metric: None,
        title: "Peers online over time".into(),
        caption: format!(
            "Instances online (not away after leave or a churn departure, not yet ended), from each instance's online gauge; between {lo:.0} and {hi:.0}. Presence events are marked from the first to the last instance they happened to."
        ),
        chart: Chart::Lines(chart),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricData, Metrics};

    fn analysis(series: Vec<(u32, Vec<(f64, f64)>)>) -> Analysis {
        let mut an = crate::analyse::Aggregator::new(1.0).finish(None, None, &[], vec![], 100);
        an.metrics = Metrics {
            metrics: vec![MetricData {
                name: ONLINE_METRIC.into(),
                decl: Default::default(),
                summary: Default::default(),
                finals: vec![],
                series,
                merged: Default::default(),
                per_instance: vec![],
                reduced: Default::default(),
            }],
            ..Metrics::default()
        };
        an
    }

    #[test]
    fn the_count_sums_instances_and_drops_those_that_ended_early() {
        let an = analysis(vec![
            (
                1,
                vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (10.0, 1.0)],
            ),
            // away from 2 to 5
            (
                2,
                vec![(0.0, 1.0), (1.0, 1.0), (2.0, 0.0), (5.0, 1.0), (10.0, 1.0)],
            ),
            // ended (crashed) at 4
            (3, vec![(0.0, 1.0), (4.0, 1.0)]),
            // away from 7 to 8 while 4 returns at 7: no change at 7
            (4, vec![(0.0, 1.0), (6.0, 0.0), (7.0, 1.0), (10.0, 1.0)]),
            (5, vec![(0.0, 1.0), (7.0, 0.0), (8.0, 1.0), (10.0, 1.0)]),
        ]);
        assert_eq!(
            series(&an).unwrap(),
            vec![
                (0.0, 5.0),
                (2.0, 4.0),
                (4.0, 3.0),
                (5.0, 4.0),
                (6.0, 3.0),
                (8.0, 4.0),
                (10.0, 4.0)
            ]
        );
        assert_eq!(
            csv(&series(&an).unwrap()),
            "t,online\n0,5\n2,4\n4,3\n5,4\n6,3\n8,4\n10,4\n"
        );
        let fig = figure(&an, &LineChart::default()).unwrap();
        assert_eq!(fig.file, FIGURE_FILE);
        assert!(analysis(vec![]).metrics.metrics[0].series.is_empty());
        assert!(series(&analysis(vec![])).is_none());
    }
}
