//! Metrics as the run folder spells them: what a module declares
//! ([`MetricDecl`], recorded in `run.json`), the distribution an
//! observation metric keeps ([`Histogram`], in each `<ID>.stats.jsonl`
//! line, one per interval) and the per-run aggregate of every metric
//! ([`MetricSummary`], in `summary.json`'s `aggregates.metrics`, which the
//! sweep and compare views read).
//!
//! One definition shared by the writer (the instance runtime records,
//! samples and writes), the readers (report, bench, sweep) and the tests.
//!
//! Must not: decide how a metric is recorded or drawn; read or write
//! files (that is [`crate::write`] / [`crate::read`]).

use std::fmt;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize, Serializer};

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Only grows (`add`); sampled cumulatively; rates are per scenario second.
    Counter,
    /// The last value set (`set`).
    Gauge,
    /// One sample at a time (`record`): a latency, a time-to-X. Kept as a
    /// [`Histogram`] per interval, merged exactly across instances.
    Observation,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Observation => "observation",
        }
    }
}

/// A metric a module declared, as `run.json` records it (`metrics`).
///
/// `name` is the full name as it appears in the statistics files: a
/// module's metric is `<module>.<metric>` (e.g. `benaloh.time_to_total`);
/// a name ending in `/*` declares a family (the overlay's
/// `bytes_in/*`: one counter per message name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricDecl {
    pub name: String,
    pub module: String,
    pub kind: Option<MetricKind>,
    /// Free text unit shown on axes: `s`, `ms`, `bytes`, `messages`, ...
    pub unit: String,
    pub description: String,
    /// The module names this one of its headline results (shown first).
    pub headline: bool,
}

impl MetricDecl {
    /// Whether `name` (a recorded metric's full name) is this declaration,
    /// or a member of the family it declares.
    pub fn matches(&self, name: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) if self.name.ends_with("/*") => name.starts_with(prefix),
            _ => self.name == name,
        }
    }
}

/// Observations are recorded in units of 1/[`SCALE`] of the declared unit
/// (a time-to-X in `s` is kept to the millisecond), with
/// [`SIGNIFICANT_DIGITS`] significant digits: a quantile read back is
/// within 0.1% (relative) or 1/SCALE (absolute) of the true one.
pub const SCALE: f64 = 1000.0;
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Why a sample was not recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleError {
    /// Observations are non-negative and finite.
    NotRecordable(f64),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleError::NotRecordable(v) => write!(
                f,
                "observation {v} cannot be recorded: observations must be finite and >= 0"
            ),
        }
    }
}

impl std::error::Error for SampleError {}

/// A mergeable distribution of observations (an HDR histogram).
/// Serialized as base64 of the HdrHistogram V2 encoding, so any HDR
/// library (Java, Python `hdrhistogram`) can read it.
#[derive(Clone)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        let mut h = hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
            .expect("3 significant digits is a valid precision");
        h.auto(true);
        Histogram(h)
    }

    /// Record one sample, in the metric's declared unit.
    pub fn record(&mut self, value: f64) -> Result<(), SampleError> {
        if !value.is_finite() || value < 0.0 {
            return Err(SampleError::NotRecordable(value));
        }
        let scaled = (value * SCALE).round();
        if scaled > u64::MAX as f64 / 2.0 {
            return Err(SampleError::NotRecordable(value));
        }
        self.0
            .record(scaled as u64)
            .map_err(|_| SampleError::NotRecordable(value))
    }

    /// Add every sample of `other` (exact).
    pub fn merge(&mut self, other: &Histogram) {
        // auto-resize is on, so adding never fails for lack of range.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1), in the declared unit.
    pub fn quantile(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / SCALE
    }

    pub fn min(&self) -> f64 {
        self.0.min() as f64 / SCALE
    }

    pub fn max(&self) -> f64 {
        self.0.max() as f64 / SCALE
    }

    pub fn mean(&self) -> f64 {
        self.0.mean() / SCALE
    }

    /// The summary statistics of this distribution.
    pub fn stats(&self) -> ObservationStats {
        if self.is_empty() {
            return ObservationStats::default();
        }
        ObservationStats {
            count: self.count(),
            min: self.min(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.max(),
            mean: self.mean(),
        }
    }

    /// Every distinct recorded value with its count, ascending (for a CDF).
    pub fn values(&self) -> Vec<(f64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to() as f64 / SCALE, v.count_at_value()))
            .collect()
    }

    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .expect("serializing into a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not base64: {e}"))?;
        let mut h: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram is not an HdrHistogram V2 encoding: {e:?}"))?;
        h.auto(true);
        Ok(Histogram(h))
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("stats", &self.stats())
            .finish()
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Histogram::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// Summary statistics of an observation's distribution (in its unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObservationStats {
    pub count: u64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// One metric over a whole run, as `summary.json`'s
/// `aggregates.metrics[name]` holds it. For counters and gauges the
/// figures are over instances' final values (`total` is their sum); for
/// observations `distribution` is over every sample of every instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSummary {
    pub kind: Option<MetricKind>,
    pub unit: String,
    pub module: String,
    /// Written only when true (summary.json lists dozens of metrics).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub headline: bool,
    /// Instances that recorded it.
    pub instances: u32,
    /// Counters/gauges: sum, mean, min, max of the instances' final values.
    pub total: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Counters: `total` per scenario second of the run (absent for others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// Observations: the merged distribution's statistics (absent for others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<ObservationStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_and_merges_exactly() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in [0.001, 0.5, 1.25, 3.0] {
            a.record(v).unwrap();
        }
        for v in [2.0, 1000.0] {
            b.record(v).unwrap();
        }
        let text = serde_json::to_string(&a).unwrap();
        let back: Histogram = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        a.merge(&b);
        assert_eq!(a.count(), 6);
        assert_eq!(a.min(), 0.001);
        assert!((a.max() - 1000.0).abs() / 1000.0 < 1e-3);
        assert!((a.quantile(0.5) - 1.25).abs() < 0.01);
    }

    #[test]
    fn bad_samples_are_refused() {
        let mut h = Histogram::new();
        assert!(h.record(-1.0).is_err());
        assert!(h.record(f64::NAN).is_err());
        assert!(h.record(f64::INFINITY).is_err());
        assert!(h.is_empty());
        assert!(Histogram::from_base64("not base64!").is_err());
        assert!(Histogram::from_base64("AAAA").is_err());
    }

    #[test]
    fn families_match_their_members_only() {
        let fam = MetricDecl {
            name: "bytes_in/*".into(),
            ..Default::default()
        };
        assert!(fam.matches("bytes_in/sync-request"));
        assert!(!fam.matches("bytes_out/sync-request"));
        let one = MetricDecl {
            name: "benaloh.time_to_total".into(),
            ..Default::default()
        };
        assert!(one.matches("benaloh.time_to_total"));
        assert!(!one.matches("benaloh.time_to_total2"));
    }
}
