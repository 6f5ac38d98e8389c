//! The metrics one instance's modules record (plugin-api 1.4): checked
//! against each module's declarations, kept cheaply (a lookup by name per
//! record, no allocation once a name was seen), and sampled into each
//! statistics line: counters (running totals) and gauges (last values) by
//! full name, observations as one histogram per metric of the samples since
//! the previous line.
//!
//! Must not: write files or know the time (the caller samples and writes);
//! decide what a module may record beyond its declarations.

use std::collections::{BTreeMap, HashMap, HashSet};

use peerlab_plugin_api::{MetricKind, MetricSpec, check_metric_name};
use peerlab_run::metrics::Histogram;

/// The built-in modules whose metrics keep the names the statistics files
/// always had: the overlay's (`msg_in/<type>`, `drop/<reason>`, `peers`)
/// and the host's own `core` ([`METRIC_ERRORS`]).
pub const UNPREFIXED_MODULES: [&str; 2] = ["core", "dispersy"];

/// Counted (every refused record) in each statistics line that follows one;
/// declared by the built-in `core` module, which every instance loads.
pub const METRIC_ERRORS: &str = "metric_errors";

/// A metric's name in the statistics files and `run.json`:
/// `<module>.<metric>`, except the built-in modules' ([`UNPREFIXED_MODULES`]).
pub fn full_name(module: &str, metric: &str) -> String {
    if UNPREFIXED_MODULES.contains(&module) {
        metric.to_string()
    } else {
        format!("{module}.{metric}")
    }
}

/// Why a module's declaration table is refused (the module does not load).
pub fn check_declarations(module: &str, specs: &[MetricSpec]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for s in specs {
        let name = s.name.as_str();
        if let Some(why) = check_metric_name(name) {
            return Err(format!("module `{module}` declares a bad metric: {why}"));
        }
        if s.kind.name().is_none() {
            return Err(format!(
                "module `{module}` declares metric `{name}` of a kind this host does not know ({}): is the plugin built against a newer plugin-api?",
                s.kind.0
            ));
        }
        if !seen.insert(name) {
            return Err(format!("module `{module}` declares metric `{name}` twice"));
        }
    }
    Ok(())
}

/// One recorded metric.
struct Slot {
    full: String,
    kind: MetricKind,
    value: f64,
    /// Observations since the last sample (observations only).
    samples: Option<Histogram>,
}

/// The metrics of one instance. See the module docs.
pub struct Metrics {
    /// Each module's declarations and its name, by module index.
    modules: Vec<(String, Vec<MetricSpec>)>,
    /// Per module: name as recorded -> slot.
    index: Vec<HashMap<Box<str>, usize>>,
    slots: Vec<Slot>,
    /// (module, name) already reported as refused.
    reported: HashSet<(usize, Box<str>)>,
    /// Every refused record.
    errors: u64,
}

impl Metrics {
    /// `modules`: every module's name and declarations, by module index.
    pub fn new(modules: Vec<(String, Vec<MetricSpec>)>) -> Self {
        let index = modules.iter().map(|_| HashMap::new()).collect();
        Metrics {
            modules,
            index,
            slots: Vec::new(),
            reported: HashSet::new(),
            errors: 0,
        }
    }

    /// Record `value` for module `module`'s metric `name`. `Err(Some(why))`
    /// the first time a name is refused (undeclared, another kind, a bad
    /// value), `Err(None)` when it was refused before; every refusal is
    /// counted.
    pub fn record(
        &mut self,
        module: usize,
        kind: MetricKind,
        name: &str,
        value: f64,
    ) -> Result<(), Option<String>> {
        let slot = match self.index.get(module).and_then(|m| m.get(name)) {
            Some(&i) => Some(i),
            None => self.declare(module, name),
        };
        let refused = match slot {
            None => Some(format!("metric `{name}` is not declared")),
            Some(i) if self.slots[i].kind != kind => Some(format!(
                "metric `{name}` is declared a {}, but recorded with {}",
                self.slots[i].kind.name().unwrap_or("?"),
                kind.recorder()
            )),
            Some(i) => {
                let s = &mut self.slots[i];
                match peerlab_plugin_api::metrics::check_value(kind, name, value) {
                    Some(why) => Some(why),
                    None => {
                        match kind {
                            MetricKind::COUNTER => s.value += value,
                            MetricKind::GAUGE => s.value = value,
                            _ => {
                                let h = s.samples.get_or_insert_with(Histogram::new);
                                if let Err(e) = h.record(value) {
                                    return self.refuse(module, name, e.to_string());
                                }
                            }
                        }
                        None
                    }
                }
            }
        };
        match refused {
            None => Ok(()),
            Some(why) => self.refuse(module, name, why),
        }
    }

    fn refuse(&mut self, module: usize, name: &str, why: String) -> Result<(), Option<String>> {
        self.errors += 1;
        if self.reported.insert((module, name.into())) {
            let declared: Vec<&str> = self
                .modules
                .get(module)
                .map(|(_, d)| d.iter().map(|s| s.name.as_str()).collect())
                .unwrap_or_default();
            let hint = if declared.is_empty() {
                " (the module declares no metrics: declare it in #[module(metrics = [...])])"
                    .to_string()
            } else {
                format!(" (declared: {})", declared.join(", "))
            };
            Err(Some(format!("{why}{hint}")))
        } else {
            Err(None)
        }
    }

    /// A slot for a name seen for the first time, if the module declared it.
    fn declare(&mut self, module: usize, name: &str) -> Option<usize> {
        let (module_name, specs) = self.modules.get(module)?;
        let spec = specs.iter().find(|s| s.matches(name))?;
        let i = self.slots.len();
        self.slots.push(Slot {
            full: full_name(module_name, name),
            kind: spec.kind,
            value: 0.0,
            samples: None,
        });
        self.index[module].insert(name.into(), i);
        Some(i)
    }

    /// The values for one statistics line: counters and gauges into
    /// `counters` by full name (and `metric_errors` once there were any);
    /// the observations since the previous line, taken out.
    pub fn sample(&mut self, counters: &mut BTreeMap<String, f64>) -> BTreeMap<String, Histogram> {
        self.visit_values(|name, v| {
            counters.insert(name.to_string(), v);
        });
        self.take_observations()
    }

    /// Counters and gauges by full name, in the order [`Metrics::sample`]
    /// inserts them (`metric_errors` last, once there were any), without
    /// building a name.
    pub fn visit_values(&self, mut f: impl FnMut(&str, f64)) {
        for s in &self.slots {
            if s.kind != MetricKind::OBSERVATION {
                f(&s.full, s.value);
            }
        }
        if self.errors > 0 {
            f(METRIC_ERRORS, self.errors as f64);
        }
    }

    /// The observations since the previous line, taken out, by full name
    /// (an empty map, which allocates nothing, when there were none).
    pub fn take_observations(&mut self) -> BTreeMap<String, Histogram> {
        let mut observations = BTreeMap::new();
        for s in &mut self.slots {
            if s.kind == MetricKind::OBSERVATION
                && let Some(h) = s.samples.take().filter(|h| !h.is_empty())
            {
                observations.insert(s.full.clone(), h);
            }
        }
        observations
    }

    /// Counters start again from zero (`reset_dispersy_statistics`; the
    /// line sampled just before keeps what they counted). Gauges keep their
    /// value.
    pub fn reset_counters(&mut self) {
        for s in &mut self.slots {
            if s.kind == MetricKind::COUNTER {
                s.value = 0.0;
            }
        }
        self.errors = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(vec![
            (
                "dispersy".into(),
                vec![MetricSpec::counter("msg_in/*", "messages", "")],
            ),
            (
                "ping".into(),
                vec![
                    MetricSpec::counter("pongs", "messages", ""),
                    MetricSpec::gauge("pending", "pings", ""),
                    MetricSpec::observation("rtt", "s", "").headline(),
                    MetricSpec::counter("to/*", "messages", ""),
                ],
            ),
        ])
    }

    #[test]
    fn each_kind_is_kept_and_sampled_by_full_name() {
        let mut m = metrics();
        let c = MetricKind::COUNTER;
        m.record(1, c, "pongs", 2.0).unwrap();
        m.record(1, c, "pongs", 0.5).unwrap();
        m.record(1, c, "to/3", 1.0).unwrap();
        m.record(1, MetricKind::GAUGE, "pending", 4.0).unwrap();
        m.record(1, MetricKind::GAUGE, "pending", -1.0).unwrap();
        m.record(1, MetricKind::OBSERVATION, "rtt", 0.25).unwrap();
        m.record(1, MetricKind::OBSERVATION, "rtt", 1.5).unwrap();
        let mut counters = BTreeMap::new();
        let obs = m.sample(&mut counters);
        assert_eq!(counters["ping.pongs"], 2.5);
        assert_eq!(counters["ping.to/3"], 1.0);
        assert_eq!(counters["ping.pending"], -1.0);
        assert!(!counters.contains_key("ping.rtt"));
        let hist = |vs: &[f64]| {
            let mut h = Histogram::new();
            vs.iter().for_each(|&v| h.record(v).unwrap());
            h
        };
        assert_eq!(obs["ping.rtt"], hist(&[0.25, 1.5]));
        // The next line holds only what came after.
        m.record(1, MetricKind::OBSERVATION, "rtt", 3.0).unwrap();
        let mut counters = BTreeMap::new();
        let obs = m.sample(&mut counters);
        assert_eq!(obs["ping.rtt"], hist(&[3.0]));
        assert_eq!(counters["ping.pongs"], 2.5, "counters are running totals");
        let mut counters = BTreeMap::new();
        assert!(
            m.sample(&mut counters).is_empty(),
            "no samples, no histogram"
        );
        m.reset_counters();
        let mut counters = BTreeMap::new();
        m.sample(&mut counters);
        assert_eq!(
            (counters["ping.pongs"], counters["ping.pending"]),
            (0.0, -1.0)
        );
        assert_eq!(full_name("dispersy", "msg_in/*"), "msg_in/*");
    }

    #[test]
    fn mistakes_are_reported_once_each_and_all_counted() {
        let mut m = metrics();
        let c = MetricKind::COUNTER;
        let e = m.record(1, c, "pongz", 1.0).unwrap_err().unwrap();
        assert_eq!(
            e,
            "metric `pongz` is not declared (declared: pongs, pending, rtt, to/*)"
        );
        assert_eq!(m.record(1, c, "pongz", 1.0), Err(None));
        let e = m
            .record(1, MetricKind::GAUGE, "pongs", 1.0)
            .unwrap_err()
            .unwrap();
        assert!(
            e.starts_with("metric `pongs` is declared a counter, but recorded with gauge_set"),
            "{e}"
        );
        let e = m
            .record(1, MetricKind::OBSERVATION, "rtt", -2.0)
            .unwrap_err()
            .unwrap();
        assert!(
            e.starts_with("observe(`rtt`, -2): observation values must be finite and >= 0"),
            "{e}"
        );
        let e = m.record(1, c, "to/", 1.0).unwrap_err().unwrap();
        assert!(e.contains("`to/` is not declared"), "{e}");
        // Another module's metric is not this one's.
        assert!(m.record(0, c, "pongs", 1.0).is_err());
        let mut counters = BTreeMap::new();
        m.sample(&mut counters);
        assert_eq!(counters[METRIC_ERRORS], 6.0);
        assert!(!counters.contains_key("ping.pongz"));
    }

    #[test]
    fn bad_declarations_are_refused() {
        let ok = [
            MetricSpec::counter("a", "", ""),
            MetricSpec::counter("b/*", "", ""),
        ];
        assert_eq!(check_declarations("m", &ok), Ok(()));
        let twice = [
            MetricSpec::counter("a", "", ""),
            MetricSpec::gauge("a", "", ""),
        ];
        assert_eq!(
            check_declarations("m", &twice),
            Err("module `m` declares metric `a` twice".into())
        );
        let bad = [MetricSpec::counter("A b", "", "")];
        assert!(
            check_declarations("m", &bad)
                .unwrap_err()
                .contains("lower-case")
        );
        let mut odd = MetricSpec::counter("a", "", "");
        odd.kind = MetricKind(7);
        assert!(check_declarations("m", &[odd]).is_err());
    }
}
