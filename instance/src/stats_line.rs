//! One instance's statistics lines (`.stats.jsonl`, docs/outputs.md),
//! written without building a map of names per line: a simulated run
//! samples every instance every second, and building a `String` per
//! counter per line was most of a small run's CPU.
//!
//! [`LineWriter`] keeps the names of the last line (in the order they were
//! given) and the order they are written in (sorted, and a name given twice
//! written once with its last value, as a `BTreeMap` insert would). A line
//! whose names are the same as the last one's (nearly every line) only
//! compares them and writes values; new names rebuild the order once. The
//! bytes are those serde_json writes for `peerlab_run::schema::StatsLine`
//! over a `BTreeMap<String, f64>` (a test compares them).
//!
//! Must not: decide which values a line holds or when it is written
//! (`lib.rs` gathers them, `record.rs` stores the line), or do I/O.

use std::collections::BTreeMap;

use peerlab_run::metrics::Histogram;

/// Writes statistics lines; see the module docs.
#[derive(Debug, Default)]
pub struct LineWriter {
    /// The names of the line being gathered (then of the last line), in
    /// the order given.
    names: Vec<String>,
    /// Its values, in the same order.
    values: Vec<f64>,
    /// Names given so far for this line.
    given: usize,
    /// The names differ from the last line's from `given` on.
    changed: bool,
    /// What is written: per distinct name, sorted, its JSON key (quoted,
    /// escaped) and the index of its last value.
    order: Vec<(Box<[u8]>, usize)>,
}

impl LineWriter {
    /// Write one statistics line into `record`: the overlay's counters,
    /// then the metrics, then the module statistics (`stat/<name>`); a
    /// name given twice keeps its last value.
    pub fn sample(
        &mut self,
        t: f64,
        reset: bool,
        overlay: &peerlab_dispersy::stats::Stats,
        metrics: &mut crate::metrics::Metrics,
        record: &mut crate::record::Record,
    ) {
        self.begin();
        overlay.visit_counters(|p, n, v| self.push(p, n, v as f64));
        metrics.visit_values(|n, v| self.push("", n, v));
        let observations = metrics.take_observations();
        record.sample_with(|buf, custom| {
            for (k, v) in custom {
                self.push("stat/", k, *v);
            }
            self.write(buf, t, reset, &observations);
        });
    }

    /// Start gathering a line.
    pub fn begin(&mut self) {
        self.given = 0;
        self.changed = false;
        self.values.clear();
    }

    /// A value named `prefix` followed by `name`.
    pub fn push(&mut self, prefix: &str, name: &str, value: f64) {
        let i = self.given;
        self.given += 1;
        if !self.changed {
            let same = self.names.get(i).is_some_and(|n| {
                n.len() == prefix.len() + name.len() && n.starts_with(prefix) && n.ends_with(name)
            });
            if !same {
                self.changed = true;
                self.names.truncate(i);
            }
        }
        if self.changed {
            let mut n = String::with_capacity(prefix.len() + name.len());
            n.push_str(prefix);
            n.push_str(name);
            self.names.push(n);
        }
        self.values.push(value);
    }

    /// Write the gathered line into `buf`: `{"t":..,"reset":true,"counters":{..},"observations":{..}}`
    /// and a newline (`reset` only when true, `observations` only when
    /// there are some), as serde_json writes a `StatsLine`.
    pub fn write(
        &mut self,
        buf: &mut Vec<u8>,
        t: f64,
        reset: bool,
        observations: &BTreeMap<String, Histogram>,
    ) {
        if self.changed || self.given != self.names.len() {
            self.names.truncate(self.given);
            self.rebuild();
        }
        buf.extend_from_slice(b"{\"t\":");
        number(buf, t);
        if reset {
            buf.extend_from_slice(b",\"reset\":true");
        }
        buf.extend_from_slice(b",\"counters\":{");
        for (k, (key, i)) in self.order.iter().enumerate() {
            if k > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(key);
            buf.push(b':');
            number(buf, self.values[*i]);
        }
        buf.push(b'}');
        if !observations.is_empty() {
            buf.extend_from_slice(b",\"observations\":");
            // Writing into a Vec cannot fail; nor can serializing a map of
            // strings to histograms.
            let _ = serde_json::to_writer(&mut *buf, observations);
        }
        buf.extend_from_slice(b"}\n");
    }

    fn rebuild(&mut self) {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, n) in self.names.iter().enumerate() {
            last.insert(n, i);
        }
        self.order = last
            .into_iter()
            .map(|(n, i)| {
                let mut key = Vec::with_capacity(n.len() + 2);
                let _ = serde_json::to_writer(&mut key, n);
                (key.into_boxed_slice(), i)
            })
            .collect();
    }
}

/// A number as serde_json writes an `f64` (`null` when not finite).
fn number(buf: &mut Vec<u8>, v: f64) {
    let _ = serde_json::to_writer(&mut *buf, &v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_run::schema::StatsLine;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The line as it was written before: a map built per line.
    fn by_map(
        t: f64,
        reset: bool,
        values: &[(String, f64)],
        observations: BTreeMap<String, Histogram>,
    ) -> Vec<u8> {
        let counters: BTreeMap<String, f64> = values.iter().cloned().collect();
        let mut buf = serde_json::to_vec(&StatsLine {
            t,
            reset,
            counters: &counters,
            observations,
        })
        .unwrap();
        buf.push(b'\n');
        buf
    }

    #[test]
    fn lines_are_the_bytes_a_map_gave_as_names_come_change_and_repeat() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let pool = [
            ("msg_in/", "rumor"),
            ("bytes_in/", "rumor"),
            ("drop/", "duplicate"),
            ("", "peers"),
            ("", "msg_in/rumor"),
            ("stat/", "a \"quoted\"\nname"),
            ("stat/", "é"),
            ("", "metric_errors"),
            ("gossip.", "held"),
            ("", "zz"),
        ];
        let mut w = LineWriter::default();
        let mut names: Vec<(&str, &str)> = pool[..4].to_vec();
        for step in 0..400 {
            // Mostly the same names as the last line; now and then one more,
            // one fewer, or another order.
            match rng.random_range(0..10) {
                0 => names.push(pool[rng.random_range(0..pool.len())]),
                1 if !names.is_empty() => {
                    names.remove(rng.random_range(0..names.len()));
                }
                2 if names.len() > 1 => {
                    let last = names.len() - 1;
                    names.swap(0, last);
                }
                _ => {}
            }
            let values: Vec<(String, f64)> = names
                .iter()
                .map(|(p, n)| {
                    let v = match rng.random_range(0..8) {
                        0 => f64::NAN,
                        1 => 0.1 + 0.2,
                        2 => -3.0,
                        3 => 1e21,
                        _ => rng.random_range(0..1000) as f64,
                    };
                    (format!("{p}{n}"), v)
                })
                .collect();
            let mut observations = BTreeMap::new();
            if step % 7 == 0 {
                let mut h = Histogram::new();
                h.record(0.25).unwrap();
                observations.insert("ping.rtt".to_string(), h);
            }
            let t = step as f64 * 0.5 + 0.000001;
            let reset = step % 50 == 3;
            w.begin();
            for ((p, n), (_, v)) in names.iter().zip(&values) {
                w.push(p, n, *v);
            }
            let mut buf = Vec::new();
            w.write(&mut buf, t, reset, &observations);
            let want = by_map(t, reset, &values, observations);
            assert_eq!(
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&want),
                "step {step}"
            );
        }
    }
}
