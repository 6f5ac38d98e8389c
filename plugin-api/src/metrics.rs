//! Metrics a module declares and records (since 1.4): what crosses the
//! boundary ([`MetricSpec`], the declaration table on the root module;
//! [`MetricKind`], an integer newtype so later versions may add kinds) and
//! the checks both sides apply to a declared name ([`check_metric_name`]).
//!
//! Must not: keep or aggregate values (the host records them; the run
//! folder's histograms are `peerlab-run`'s).

use abi_stable::StableAbi;
use abi_stable::std_types::RStr;

/// What a metric is (an integer newtype: a newer api may add kinds, and an
/// older host refuses a kind it does not know).
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricKind(pub u8);

impl MetricKind {
    /// Only grows: [`crate::Host::counter_add`]. Sampled cumulatively;
    /// reports show it per scenario second.
    pub const COUNTER: MetricKind = MetricKind(0);
    /// The last value set: [`crate::Host::gauge_set`].
    pub const GAUGE: MetricKind = MetricKind(1);
    /// One sample at a time (a latency, a time-to-X):
    /// [`crate::Host::observe`]. Kept as a distribution per interval.
    pub const OBSERVATION: MetricKind = MetricKind(2);

    /// `counter`, `gauge`, `observation` (`None` for a kind this api does
    /// not know).
    pub fn name(self) -> Option<&'static str> {
        match self {
            MetricKind::COUNTER => Some("counter"),
            MetricKind::GAUGE => Some("gauge"),
            MetricKind::OBSERVATION => Some("observation"),
            _ => None,
        }
    }

    /// The verb a module records this kind with, for error messages.
    pub fn recorder(self) -> &'static str {
        match self {
            MetricKind::COUNTER => "counter_add",
            MetricKind::GAUGE => "gauge_set",
            MetricKind::OBSERVATION => "observe",
            _ => "record_metric",
        }
    }
}

/// One metric a module declares (since 1.4), in the root module's
/// `metrics` table: the host knows every metric before the run starts and
/// records the declarations in `run.json`.
///
/// In statistics files and reports the metric's full name is
/// `<module>.<name>` (`benaloh.time_to_total`). A name ending in `/*`
/// declares a family: `sent_to/*` lets the module record `sent_to/3`,
/// `sent_to/4`, ... (one metric each, all of this declaration's kind and
/// unit).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct MetricSpec {
    /// Lower-case letters, digits and `_`, optionally `/*` at the end.
    pub name: RStr<'static>,
    /// Counter, gauge or observation.
    pub kind: MetricKind,
    /// Free text unit shown on axes: `s`, `ms`, `bytes`, `messages`.
    pub unit: RStr<'static>,
    /// One line: what it measures.
    pub description: RStr<'static>,
    /// One of the module's headline results (reports show it first).
    pub headline: bool,
}

impl MetricSpec {
    const fn new(
        name: &'static str,
        kind: MetricKind,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        MetricSpec {
            name: RStr::from_str(name),
            kind,
            unit: RStr::from_str(unit),
            description: RStr::from_str(description),
            headline: false,
        }
    }

    /// A counter (`const`, for [`crate::Module::METRICS`]).
    pub const fn counter(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::COUNTER, unit, description)
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        Self::new(name, MetricKind::GAUGE, unit, description)
    }

    /// An observation.
    pub const fn observation(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::OBSERVATION, unit, description)
    }

    /// The same, named one of the module's headline results.
    pub const fn headline(mut self) -> Self {
        self.headline = true;
        self
    }

    /// Whether this declaration is a family (`name/*`).
    pub fn is_family(&self) -> bool {
        self.name.as_str().ends_with("/*")
    }

    /// Whether `name`, as a module records it, is this metric (or a member
    /// of this family: `sent_to/3` for `sent_to/*`, not `sent_to/`).
    pub fn matches(&self, name: &str) -> bool {
        match self.name.as_str().strip_suffix('*') {
            Some(prefix) if self.is_family() => {
                name.len() > prefix.len() && name.starts_with(prefix)
            }
            _ => self.name.as_str() == name,
        }
    }
}

/// Why a declared metric name is refused: `None` when it is fine. Names
/// are lower-case letters, digits, `_` (and `/` between words of the
/// built-in overlay's names), at most 64 bytes, optionally ending in `/*`
/// (a family). The `#[module]` macro checks at compile time, the host again
/// when it loads a plugin.
pub fn check_metric_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix("/*").unwrap_or(name);
    if stem.is_empty() {
        return Some(format!("metric `{name}`: the name is empty"));
    }
    if name.len() > 64 {
        return Some(format!("metric `{name}`: names are at most 64 bytes"));
    }
    let ok = stem
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '/');
    if !ok || stem.starts_with('/') || stem.ends_with('/') || stem.contains("//") {
        return Some(format!(
            "metric `{name}`: names are lower-case letters, digits and `_` (a family ends in `/*`)"
        ));
    }
    None
}

/// Why `value` cannot be recorded for a metric of `kind`: `None` when it
/// can. Counters only grow (finite, >= 0); gauges are finite;
/// observations are finite and >= 0.
pub fn check_value(kind: MetricKind, name: &str, value: f64) -> Option<String> {
    let ok = match kind {
        MetricKind::GAUGE => value.is_finite(),
        _ => value.is_finite() && value >= 0.0,
    };
    (!ok).then(|| {
        format!(
            "{}(`{name}`, {value}): {} values must be finite{}",
            kind.recorder(),
            kind.name().unwrap_or("metric"),
            if kind == MetricKind::GAUGE {
                ""
            } else {
                " and >= 0"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_families() {
        assert_eq!(check_metric_name("time_to_total"), None);
        assert_eq!(check_metric_name("sent_to/*"), None);
        assert_eq!(check_metric_name("bytes_in/*"), None);
        for bad in ["", "/*", "Time", "a b", "a.b", "a/", "x-y", &"a".repeat(65)] {
            assert!(check_metric_name(bad).is_some(), "{bad:?}");
        }
        let fam = MetricSpec::counter("sent_to/*", "messages", "");
        assert!(fam.matches("sent_to/3"));
        assert!(!fam.matches("sent_to/"));
        assert!(!fam.matches("sent_tox"));
        let one = MetricSpec::gauge("peers", "peers", "").headline();
        assert!(one.headline && one.matches("peers") && !one.matches("peers2"));
        assert_eq!(MetricKind::OBSERVATION.name(), Some("observation"));
        assert_eq!(MetricKind(9).name(), None);
    }
}
