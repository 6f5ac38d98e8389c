//! A sweep's grid: the swept config keys and their values (`--param
//! KEY=v1,v2`), the grid points (their cartesian product, in the order the
//! keys were given), the jobs (every point × every repetition) and each
//! job's seed, derived from the sweep's base seed, the point's values and
//! the repetition (so adding a value or a repetition leaves every other
//! job's seed, and its finished run, as it was).
//!
//! Pure: no I/O. Must not: know how a run is started.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::SweepError;

/// One swept key and its values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Param {
    pub key: String,
    pub values: Vec<String>,
}

impl Param {
    /// `KEY=v1,v2,...` (spaces around items are trimmed).
    pub fn parse(text: &str) -> Result<Param, SweepError> {
        let bad = |why: &str| SweepError::BadParam {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (key, values) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=v1,v2,... (e.g. instances_to_run=10,50)"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(bad(
                "the key must be a config key: letters, digits, `_`, `-` or `.`",
            ));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(|v| v.is_empty()) {
            return Err(bad("an empty value: give values separated by commas"));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(bad(&format!("`{v}` is given twice")));
            }
            if v.contains(['\n', '#', '"']) {
                return Err(bad(&format!(
                    "`{v}` holds a character a config value cannot (newline, # or \")"
                )));
            }
        }
        Ok(Param {
            key: key.to_string(),
            values,
        })
    }
}

/// One grid point: a value for every swept key, in the keys' order.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Point(pub Vec<(String, String)>);

impl Point {
    /// The value of `key` at this point.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The point without `keys` (for matching points across sweeps).
    pub fn without(&self, keys: &[&str]) -> Point {
        Point(
            self.0
                .iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .cloned()
                .collect(),
        )
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(one point)");
        }
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Every point of the grid, the first key varying slowest.
pub fn points(params: &[Param]) -> Vec<Point> {
    let mut out = vec![Point(Vec::new())];
    for p in params {
        out = out
            .into_iter()
            .flat_map(|pt| {
                p.values.iter().map(move |v| {
                    let mut next = pt.0.clone();
                    next.push((p.key.clone(), v.clone()));
                    Point(next)
                })
            })
            .collect();
    }
    out
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Index of its point in [`points`].
    pub point_index: usize,
    pub point: Point,
    /// 1-based.
    pub repeat: u32,
    pub seed: u64,
}

impl Job {
    /// `p03-r2`: the job's short name (log files, progress lines).
    pub fn key(&self) -> String {
        format!("p{:02}-r{}", self.point_index + 1, self.repeat)
    }
}

/// The seed of one run: SHA-256 of the base seed, the point's keys and
/// values, and the repetition, cut to 63 bits (every seed fits where a
/// signed 64-bit integer is read).
pub fn derive_seed(base: u64, point: &Point, repeat: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(b"peerlab sweep seed v1\0");
    h.update(base.to_le_bytes());
    for (k, v) in &point.0 {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    h.update(repeat.to_le_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")) >> 1
}

/// Every job: each point `repeat` times, point by point.
pub fn jobs(params: &[Param], repeat: u32, base_seed: u64) -> Vec<Job> {
    let mut out = Vec::new();
    for (i, point) in points(params).into_iter().enumerate() {
        for r in 1..=repeat {
            out.push(Job {
                point_index: i,
                seed: derive_seed(base_seed, &point, r),
                point: point.clone(),
                repeat: r,
            });
        }
    }
    out
}

/// A short stable hash of the words that make a sweep the same sweep (its
/// folder's suffix: the same command finds the same folder and resumes).
pub fn identity_hash(words: &[String]) -> String {
    let mut h = Sha256::new();
    for w in words {
        h.update(w.as_bytes());
        h.update(b"\0");
    }
    h.finalize()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_bad_ones_say_why() {
        let p = Param::parse("instances_to_run=5, 10,20").unwrap();
        assert_eq!(p.key, "instances_to_run");
        assert_eq!(p.values, ["5", "10", "20"]);
        for bad in ["noequals", "=1,2", "k=1,,2", "k=1,1", "k y=1", "k=a#b"] {
            let e = Param::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_grid_is_the_product_first_key_slowest() {
        let params = [
            Param::parse("a=1,2").unwrap(),
            Param::parse("b=x,y,z").unwrap(),
        ];
        let pts = points(&params);
        assert_eq!(pts.len(), 6);
        assert_eq!(pts[0].to_string(), "a=1 b=x");
        assert_eq!(pts[1].to_string(), "a=1 b=y");
        assert_eq!(pts[5].to_string(), "a=2 b=z");
        assert_eq!(points(&[]), vec![Point(Vec::new())]);
        let js = jobs(&params, 3, 7);
        assert_eq!(js.len(), 18);
        assert_eq!(js[4].key(), "p02-r2");
    }

    #[test]
    fn seeds_differ_per_job_and_stay_when_the_grid_grows() {
        let small = jobs(&[Param::parse("a=1,2").unwrap()], 2, 42);
        let mut seeds: Vec<u64> = small.iter().map(|j| j.seed).collect();
        seeds.sort();
        seeds.dedup();
        assert_eq!(seeds.len(), 4, "every run its own seed");
        let grown = jobs(&[Param::parse("a=0,1,2").unwrap()], 3, 42);
        for j in &small {
            assert!(
                grown
                    .iter()
                    .any(|g| g.point == j.point && g.repeat == j.repeat && g.seed == j.seed),
                "{j:?} keeps its seed"
            );
        }
        assert_ne!(jobs(&[], 1, 1)[0].seed, jobs(&[], 1, 2)[0].seed);
        assert!(small.iter().all(|j| j.seed <= i64::MAX as u64));
    }
}
