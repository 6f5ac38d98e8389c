//! [`TestHost`]: an in-memory [`HostContext`] that records everything a
//! module does, so plugin authors can unit-test modules without the host.
//!
//! Timers and messages are only recorded; a test fires them itself
//! (`module.on_timer(&mut host.host(), token)`), so tests never wait.

use std::collections::BTreeMap;

use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};

use crate::host::{Host, HostContext};
use crate::metrics::{MetricKind, MetricSpec};
use crate::overlay::MessageSpec;
use crate::spec::Invocation;
use crate::value::{Value, Value_NE};

/// A statistic update recorded by [`TestHost`].
#[derive(Debug, Clone, PartialEq)]
pub enum StatUpdate {
    /// `stat_add(name, value)`.
    Add(String, f64),
    /// `stat_set(name, value)`.
    Set(String, f64),
}

/// A metric recorded through [`TestHost`] (since 1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricUpdate {
    /// Counter, gauge or observation.
    pub kind: MetricKind,
    /// The name as the module recorded it.
    pub name: String,
    /// The value added, set or observed.
    pub value: f64,
    /// Scenario time ([`TestHost::now`]) when it was recorded.
    pub at: f64,
}

/// A message sent through [`TestHost`]'s overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// The message type.
    pub name: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The named receivers (empty for community gossip).
    pub to: Vec<u64>,
}

/// A module-to-module call handler for [`TestHost::on_call_module`].
pub type CallHandler = Box<dyn FnMut(&str, &str, &Invocation) -> Result<Option<Value>, String>>;

/// An in-memory host that records prints, logs, annotations, statistics,
/// timers, variables and overlay use.
pub struct TestHost {
    /// This instance's id.
    pub instance_id: u64,
    /// The instance count.
    pub instance_count: u64,
    /// Config keys returned by `config`.
    pub config: BTreeMap<String, String>,
    /// Scenario time returned by `now` (set it to simulate time passing).
    pub now: f64,
    /// The seed returned by `seed`.
    pub seed: u64,
    rng_state: u64,
    /// Printed lines.
    pub prints: Vec<String>,
    /// Logged lines.
    pub logs: Vec<String>,
    /// Annotations as (time, text).
    pub annotations: Vec<(f64, String)>,
    /// Statistic updates in order.
    pub stats: Vec<StatUpdate>,
    /// Metrics recorded, in order (accepted ones only).
    pub metrics: Vec<MetricUpdate>,
    /// The declarations `record_metric` checks against (set them with
    /// [`TestHost::with_metrics`]); `None`: every name is accepted.
    pub declared_metrics: Option<Vec<MetricSpec>>,
    /// Metrics refused (an undeclared name, a wrong kind, a bad value), in
    /// the host's words; a test asserts it stays empty.
    pub metric_errors: Vec<String>,
    /// Timers set, as (due time, token); due = now + delay.
    pub timers: Vec<(f64, u64)>,
    /// Variables set with `set_var`.
    pub vars: BTreeMap<String, String>,
    /// Whether `stop` was called.
    pub stopped: bool,
    /// Faults asked for (`set_network`, `partition`, `crash`), in order.
    pub faults: Vec<String>,
    /// Whether `capture` was called (since 1.5).
    pub capturing: bool,
    /// The community name or hex id last joined.
    pub community: Option<String>,
    /// Whether a session is running.
    pub session_started: bool,
    /// The `max_peers` of each `introduce_peers`.
    pub introductions: Vec<Option<u64>>,
    /// Walker parameters set.
    pub walker: Vec<(String, Value)>,
    /// Message types defined.
    pub messages: Vec<MessageSpec>,
    /// Messages sent.
    pub sent: Vec<SentMessage>,
    /// Peers returned by `known_peers` (default: every other instance).
    pub peers: Vec<u64>,
    /// The public key returned by `public_key`.
    pub public_key: Vec<u8>,
    /// How many times overlay statistics were reset.
    pub statistics_resets: u32,
    call_handler: Option<CallHandler>,
}

impl TestHost {
    /// Instance `instance_id` of `instance_count`, seed derived from the id.
    pub fn new(instance_id: u64, instance_count: u64) -> Self {
        let seed = 0x5eed_0000_0000_0000 ^ instance_id;
        TestHost {
            instance_id,
            instance_count,
            config: BTreeMap::new(),
            now: 0.0,
            seed,
            rng_state: seed,
            prints: Vec::new(),
            logs: Vec::new(),
            annotations: Vec::new(),
            stats: Vec::new(),
            metrics: Vec::new(),
            declared_metrics: None,
            metric_errors: Vec::new(),
            timers: Vec::new(),
            vars: BTreeMap::new(),
            stopped: false,
            faults: Vec::new(),
            capturing: false,
            community: None,
            session_started: false,
            introductions: Vec::new(),
            walker: Vec::new(),
            messages: Vec::new(),
            sent: Vec::new(),
            peers: (1..=instance_count).filter(|&i| i != instance_id).collect(),
            public_key: instance_id.to_be_bytes().to_vec(),
            statistics_resets: 0,
            call_handler: None,
        }
    }

    /// Set a config key.
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Check recorded metrics against these declarations, as the host does:
    /// `TestHost::new(1, 3).with_metrics(MyModule::METRICS)` (the
    /// `#[module]` macro implements [`crate::Module`]).
    pub fn with_metrics(mut self, declared: &[MetricSpec]) -> Self {
        self.declared_metrics = Some(declared.to_vec());
        self
    }

    /// A counter's total so far (0 when never added to).
    pub fn counter(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .filter(|m| m.kind == MetricKind::COUNTER && m.name == name)
            .map(|m| m.value)
            .sum()
    }

    /// A gauge's last value.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .rev()
            .find(|m| m.kind == MetricKind::GAUGE && m.name == name)
            .map(|m| m.value)
    }

    /// Every sample of an observation, in order.
    pub fn observations(&self, name: &str) -> Vec<f64> {
        self.metrics
            .iter()
            .filter(|m| m.kind == MetricKind::OBSERVATION && m.name == name)
            .map(|m| m.value)
            .collect()
    }

    /// Answer `call_module` with `handler` (by default it is an error).
    pub fn on_call_module(
        &mut self,
        handler: impl FnMut(&str, &str, &Invocation) -> Result<Option<Value>, String> + 'static,
    ) {
        self.call_handler = Some(Box::new(handler));
    }

    /// The [`Host`] view plugin code takes.
    pub fn host(&mut self) -> Host<'_> {
        Host::from_impl(self)
    }

    /// The current value of a statistic after all recorded updates.
    pub fn stat(&self, name: &str) -> Option<f64> {
        let mut v = None;
        for u in &self.stats {
            match u {
                StatUpdate::Add(n, x) if n == name => v = Some(v.unwrap_or(0.0) + x),
                StatUpdate::Set(n, x) if n == name => v = Some(*x),
                _ => {}
            }
        }
        v
    }
}

fn ok() -> RResult<(), RString> {
    RResult::ROk(())
}

impl HostContext for TestHost {
    fn instance_id(&self) -> u64 {
        self.instance_id
    }
    fn instance_count(&self) -> u64 {
        self.instance_count
    }
    fn config(&self, key: RStr<'_>) -> ROption<RString> {
        self.config
            .get(key.as_str())
            .map(|s| RString::from(s.as_str()))
            .into()
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    fn random_u64(&mut self) -> u64 {
        // splitmix64: deterministic per seed
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn now(&self) -> f64 {
        self.now
    }
    fn print(&mut self, line: RStr<'_>) {
        self.prints.push(line.into());
    }
    fn log(&mut self, line: RStr<'_>) {
        self.logs.push(line.into());
    }
    fn annotate(&mut self, text: RStr<'_>) {
        self.annotations.push((self.now, text.into()));
    }
    fn stat_add(&mut self, name: RStr<'_>, value: f64) {
        self.stats.push(StatUpdate::Add(name.into(), value));
    }
    fn stat_set(&mut self, name: RStr<'_>, value: f64) {
        self.stats.push(StatUpdate::Set(name.into(), value));
    }
    fn set_timer(&mut self, delay: f64, token: u64) {
        self.timers.push((self.now + delay, token));
    }
    fn call_module(
        &mut self,
        module: RStr<'_>,
        callback: RStr<'_>,
        args: Invocation,
    ) -> RResult<ROption<Value_NE>, RString> {
        match &mut self.call_handler {
            Some(h) => h(module.as_str(), callback.as_str(), &args)
                .map(|v| ROption::from(v.map(Value::into_ne)))
                .map_err(RString::from)
                .into(),
            None => RResult::RErr(
                format!("TestHost has no module `{module}` (set one with on_call_module)").into(),
            ),
        }
    }
    fn set_var(&mut self, name: RStr<'_>, value: RStr<'_>) {
        self.vars.insert(name.into(), value.into());
    }
    fn var(&self, name: RStr<'_>) -> ROption<RString> {
        self.vars
            .get(name.as_str())
            .map(|s| RString::from(s.as_str()))
            .into()
    }
    fn stop(&mut self) {
        self.stopped = true;
    }
    fn isolate_community(&mut self, name: RStr<'_>) -> RResult<(), RString> {
        self.community = Some(name.into());
        ok()
    }
    fn set_community_id(&mut self, id: RSlice<'_, u8>) -> RResult<(), RString> {
        if id.len() != 20 {
            return RResult::RErr(format!("a community id has 20 bytes, got {}", id.len()).into());
        }
        self.community = Some(id.iter().map(|b| format!("{b:02x}")).collect());
        ok()
    }
    fn start_session(&mut self) -> RResult<(), RString> {
        self.session_started = true;
        ok()
    }
    fn stop_session(&mut self) -> RResult<(), RString> {
        self.session_started = false;
        ok()
    }
    fn introduce_peers(&mut self, max_peers: ROption<u64>) -> RResult<(), RString> {
        self.introductions.push(max_peers.into_option());
        ok()
    }
    fn set_walker(&mut self, name: RStr<'_>, value: Value_NE) -> RResult<(), RString> {
        match Value::from_ne(&value) {
            Some(v) => {
                self.walker.push((name.into(), v));
                ok()
            }
            None => RResult::RErr("unknown value type".into()),
        }
    }
    fn reset_overlay_statistics(&mut self) -> RResult<(), RString> {
        self.statistics_resets += 1;
        ok()
    }
    fn define_message(&mut self, spec: MessageSpec) -> RResult<(), RString> {
        if self.messages.iter().any(|m| m.name == spec.name) {
            return RResult::RErr(format!("message `{}` is already defined", spec.name).into());
        }
        self.messages.push(spec);
        ok()
    }
    fn send(
        &mut self,
        message: RStr<'_>,
        payload: RVec<u8>,
        to: RVec<u64>,
    ) -> RResult<(), RString> {
        if !self
            .messages
            .iter()
            .any(|m| m.name.as_str() == message.as_str())
        {
            return RResult::RErr(format!("message `{message}` is not defined").into());
        }
        self.sent.push(SentMessage {
            name: message.into(),
            payload: payload.into_vec(),
            to: to.into_vec(),
        });
        ok()
    }
    fn known_peers(&self) -> RVec<u64> {
        self.peers.clone().into()
    }
    fn public_key(&self) -> RVec<u8> {
        self.public_key.clone().into()
    }
    fn set_network(&mut self, loss: f64, delay: f64, jitter: f64) -> RResult<(), RString> {
        self.faults.push(format!(
            "set_network loss={loss} delay={delay} jitter={jitter}"
        ));
        ok()
    }
    fn set_network_bandwidth(
        &mut self,
        loss: f64,
        delay: f64,
        jitter: f64,
        up: f64,
        down: f64,
    ) -> RResult<(), RString> {
        self.faults.push(format!(
            "set_network loss={loss} delay={delay} jitter={jitter} up={up} down={down}"
        ));
        ok()
    }
    fn partition(&mut self, groups: RVec<RString>) -> RResult<(), RString> {
        let groups: Vec<String> = groups.into_iter().map(String::from).collect();
        self.faults
            .push(format!("partition {}", groups.join(" | ")));
        ok()
    }
    fn crash(&mut self) -> RResult<(), RString> {
        self.faults.push("crash".into());
        self.stopped = true;
        ok()
    }
    fn capture(&mut self) -> RResult<(), RString> {
        self.capturing = true;
        ok()
    }
    fn record_metric(
        &mut self,
        kind: MetricKind,
        name: RStr<'_>,
        value: f64,
    ) -> RResult<(), RString> {
        let name = name.as_str();
        let refused = match &self.declared_metrics {
            Some(declared) => match declared.iter().find(|d| d.matches(name)) {
                None => Some(format!("metric `{name}` is not declared")),
                Some(d) if d.kind != kind => Some(format!(
                    "metric `{name}` is declared a {}, recorded with {}",
                    d.kind.name().unwrap_or("?"),
                    kind.recorder()
                )),
                Some(_) => None,
            },
            None => None,
        }
        .or_else(|| crate::metrics::check_value(kind, name, value));
        if let Some(why) = refused {
            self.metric_errors.push(why.clone());
            return RResult::RErr(why.into());
        }
        self.metrics.push(MetricUpdate {
            kind,
            name: name.into(),
            value,
            at: self.now,
        });
        ok()
    }
}
