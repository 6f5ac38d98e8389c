//! The host context: the services a module reaches during every call.
//!
//! [`HostContext`] is the ABI-level trait object the host (the instance
//! runtime) implements; [`Host`] is the convenient Rust wrapper plugin code
//! receives. New services are only ever appended to [`HostContext`], after
//! its `last_prefix_field`, so plugins built against an older api keep
//! working on a newer host.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RMut;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};

use crate::metrics::MetricKind;
use crate::overlay::MessageSpec;
use crate::spec::Invocation;
use crate::value::{Value, Value_NE};

/// The services of one experiment instance, as seen by one module.
///
/// The host builds one context per call, so it knows which module a timer,
/// a message definition or a print belongs to. All methods are synchronous
/// and return quickly: sends and timers are queued on the host's event loop.
/// Errors are lowercase messages.
///
/// Evolution: methods are only appended, after `public_key`, and each new
/// one has a default body, which is what a newer plugin gets from an older
/// host that lacks it (the default should return an error saying so).
#[sabi_trait]
pub trait HostContext {
    /// This instance's id, 1-based (Gumby's `my_id`).
    fn instance_id(&self) -> u64;
    /// How many instances the experiment runs.
    fn instance_count(&self) -> u64;
    /// An experiment config key (e.g. `modulus`), as written in the `.conf`.
    fn config(&self, key: RStr<'_>) -> ROption<RString>;
    /// The seed of this instance's random stream (derived from the run seed
    /// and the instance id): seed a plugin-side RNG from it.
    fn seed(&self) -> u64;
    /// The next number of this instance's seeded random stream.
    fn random_u64(&mut self) -> u64;
    /// Scenario time in seconds since the experiment started.
    fn now(&self) -> f64;
    /// Print a line to the instance's output (`.out`); verdicts read these.
    fn print(&mut self, line: RStr<'_>);
    /// Write a line to the instance's log (`.err`).
    fn log(&mut self, line: RStr<'_>);
    /// Record an annotation (shown on plots) at the current time.
    fn annotate(&mut self, text: RStr<'_>);
    /// Add `value` to the counter statistic `name`.
    fn stat_add(&mut self, name: RStr<'_>, value: f64);
    /// Set the gauge statistic `name` to `value`.
    fn stat_set(&mut self, name: RStr<'_>, value: f64);
    /// Call this module's `on_timer(token)` after `delay` seconds of scenario
    /// time (scaled by the run's `--time-scale`, like every scenario time; an
    /// enormous delay means never).
    fn set_timer(&mut self, delay: f64, token: u64);
    /// Call a callback of another module loaded by this instance (Gumby's
    /// provider lookup). The host binds the arguments against the callee's
    /// spec. A module calling itself is an error.
    fn call_module(
        &mut self,
        module: RStr<'_>,
        callback: RStr<'_>,
        args: Invocation,
    ) -> RResult<ROption<Value_NE>, RString>;
    /// Set a scenario variable (Gumby's `set`).
    fn set_var(&mut self, name: RStr<'_>, value: RStr<'_>);
    /// A scenario variable set earlier with `set`.
    fn var(&self, name: RStr<'_>) -> ROption<RString>;
    /// Stop this instance once the current callback returns.
    fn stop(&mut self);

    /// Overlay: join the community derived privately from `name`.
    fn isolate_community(&mut self, name: RStr<'_>) -> RResult<(), RString>;
    /// Overlay: use this 20-byte community id.
    fn set_community_id(&mut self, id: RSlice<'_, u8>) -> RResult<(), RString>;
    /// Overlay: start the session (socket, walker).
    fn start_session(&mut self) -> RResult<(), RString>;
    /// Overlay: stop the session.
    fn stop_session(&mut self) -> RResult<(), RString>;
    /// Overlay: learn peers from the sync server's table, at most `max_peers`.
    fn introduce_peers(&mut self, max_peers: ROption<u64>) -> RResult<(), RString>;
    /// Overlay: set one walker parameter (`interval`: duration,
    /// `enabled`: bool, `targets`: integer); unknown names are an error.
    fn set_walker(&mut self, name: RStr<'_>, value: Value_NE) -> RResult<(), RString>;
    /// Overlay: reset message and byte counters.
    fn reset_overlay_statistics(&mut self) -> RResult<(), RString>;
    /// Overlay: define a message type; its deliveries reach this module.
    fn define_message(&mut self, spec: MessageSpec) -> RResult<(), RString>;
    /// Overlay: send a message of a defined type; `to` names instances for
    /// `Candidate` destinations and is ignored for `Community`.
    fn send(&mut self, message: RStr<'_>, payload: RVec<u8>, to: RVec<u64>)
    -> RResult<(), RString>;
    /// Overlay: the instances this one currently knows.
    fn known_peers(&self) -> RVec<u64>;
    /// Overlay: this instance's public key.
    #[sabi(last_prefix_field)]
    fn public_key(&self) -> RVec<u8>;

    /// Fault (since 1.2): this instance's outgoing datagrams are lost with
    /// probability `loss` and delayed by `delay` plus up to `jitter` seconds
    /// of scenario time (scaled like every scenario time; all zero: a clean
    /// network again).
    fn set_network(&mut self, _loss: f64, _delay: f64, _jitter: f64) -> RResult<(), RString> {
        RResult::RErr(RString::from("this host cannot change network conditions"))
    }
    /// Fault (since 1.2): only instances of the same group reach each other;
    /// each group lists ids as `1-3,5`; instances in no group form one more
    /// group. No groups: heal.
    fn partition(&mut self, _groups: RVec<RString>) -> RResult<(), RString> {
        RResult::RErr(RString::from("this host cannot partition the network"))
    }
    /// Fault (since 1.2): stop this instance at once, without a goodbye to
    /// anyone (no `on_stop`, no last packets).
    fn crash(&mut self) -> RResult<(), RString> {
        RResult::RErr(RString::from("this host cannot crash instances"))
    }
    /// Metric (since 1.4): record `value` for the metric `name` this module
    /// declared (its root module's `metrics` table) with kind `kind`: add
    /// to a counter, set a gauge, or record one observation. The host
    /// reports an undeclared name or a wrong kind itself (the first time,
    /// naming the module and the callback), so the result is only
    /// informative to the plugin.
    fn record_metric(
        &mut self,
        _kind: MetricKind,
        _name: RStr<'_>,
        _value: f64,
    ) -> RResult<(), RString> {
        RResult::RErr(RString::from(
            "this host does not record metrics (it is older than plugin-api 1.4)",
        ))
    }
    /// Fault (since 1.5): as `set_network`, and the instance's upload and
    /// download capacity in bits per scenario second: `0` keeps the run's
    /// default (`network_up`, `network_down`), infinity is unlimited.
    fn set_network_bandwidth(
        &mut self,
        _loss: f64,
        _delay: f64,
        _jitter: f64,
        _up: f64,
        _down: f64,
    ) -> RResult<(), RString> {
        RResult::RErr(RString::from(
            "this host cannot limit bandwidth (it is older than plugin-api 1.5)",
        ))
    }
    /// Network (since 1.5): from now on, this instance's driver writes
    /// every datagram it sends and receives to the instance's packet
    /// capture (a pcap file in the run folder, docs/network.md). Calling
    /// it again changes nothing.
    fn capture(&mut self) -> RResult<(), RString> {
        RResult::RErr(RString::from(
            "this host cannot capture packets (it is older than plugin-api 1.5)",
        ))
    }
}

/// The ABI form of a borrowed host context, as passed to every call.
pub type HostMut<'a> = HostContext_TO<'a, RMut<'a, ()>>;

/// What plugin code receives: the host context with Rust-friendly methods.
pub struct Host<'a> {
    ctx: HostMut<'a>,
}

fn res(r: RResult<(), RString>) -> Result<(), String> {
    r.into_result().map_err(String::from)
}

impl<'a> Host<'a> {
    /// Wrap the ABI object.
    pub fn new(ctx: HostMut<'a>) -> Self {
        Host { ctx }
    }

    /// Wrap any Rust implementation (the host runtime, or
    /// [`crate::testing::TestHost`]).
    pub fn from_impl<T: HostContext + 'a>(implementation: &'a mut T) -> Self {
        Host::new(HostContext_TO::from_ptr(implementation, TD_Opaque))
    }

    /// The ABI object, to pass on to another module (host side).
    pub fn raw(&mut self) -> HostMut<'_> {
        self.ctx.sabi_reborrow_mut()
    }

    /// This instance's id, 1-based.
    pub fn instance_id(&self) -> u64 {
        self.ctx.instance_id()
    }

    /// How many instances the experiment runs.
    pub fn instance_count(&self) -> u64 {
        self.ctx.instance_count()
    }

    /// A config key as written, if set.
    pub fn config(&self, key: &str) -> Option<String> {
        self.ctx.config(key.into()).into_option().map(String::from)
    }

    /// A config key parsed as `T`; `Ok(None)` when unset, an error naming
    /// the key when it does not parse.
    pub fn config_parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: Display,
    {
        match self.config(key) {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|e| format!("config key `{key}` = {s:?}: {e}")),
        }
    }

    /// The seed of this instance's random stream; seed a plugin-side RNG
    /// with it, e.g. `ChaCha8Rng::seed_from_u64(host.seed())`.
    pub fn seed(&self) -> u64 {
        self.ctx.seed()
    }

    /// The next number of this instance's seeded random stream.
    pub fn random_u64(&mut self) -> u64 {
        self.ctx.random_u64()
    }

    /// A seeded random number below `bound` (`bound` > 0), without modulo bias.
    pub fn random_below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "random_below needs a positive bound");
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let r = self.random_u64();
            if r < zone {
                return r % bound;
            }
        }
    }

    /// Scenario time in seconds.
    pub fn now(&self) -> f64 {
        self.ctx.now()
    }

    /// Print a line to the instance's output.
    pub fn print(&mut self, line: impl Display) {
        self.ctx.print(line.to_string().as_str().into())
    }

    /// Write a line to the instance's log.
    pub fn log(&mut self, line: impl Display) {
        self.ctx.log(line.to_string().as_str().into())
    }

    /// Record an annotation.
    pub fn annotate(&mut self, text: impl Display) {
        self.ctx.annotate(text.to_string().as_str().into())
    }

    /// Add to a counter statistic.
    pub fn stat_add(&mut self, name: &str, value: f64) {
        self.ctx.stat_add(name.into(), value)
    }

    /// Set a gauge statistic.
    pub fn stat_set(&mut self, name: &str, value: f64) {
        self.ctx.stat_set(name.into(), value)
    }

    /// Have `on_timer(token)` called after `delay` of scenario time (scaled
    /// by `--time-scale`; `Duration::MAX` means never).
    pub fn set_timer(&mut self, delay: Duration, token: u64) {
        self.ctx.set_timer(delay.as_secs_f64(), token)
    }

    /// Call another module's callback; returns what it returned.
    pub fn call_module(
        &mut self,
        module: &str,
        callback: &str,
        args: Invocation,
    ) -> Result<Option<Value>, String> {
        match self
            .ctx
            .call_module(module.into(), callback.into(), args)
            .into_result()
        {
            Ok(ROption::RSome(v)) => Ok(Value::from_ne(&v)),
            Ok(ROption::RNone) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Set a scenario variable.
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.ctx.set_var(name.into(), value.into())
    }

    /// A scenario variable.
    pub fn var(&self, name: &str) -> Option<String> {
        self.ctx.var(name.into()).into_option().map(String::from)
    }

    /// Stop this instance once the current callback returns.
    pub fn stop(&mut self) {
        self.ctx.stop()
    }

    /// The overlay services.
    pub fn overlay(&mut self) -> Overlay<'_, 'a> {
        Overlay { ctx: &mut self.ctx }
    }
}

/// The overlay services of a [`Host`] (see [`Host::overlay`]).
pub struct Overlay<'h, 'a> {
    ctx: &'h mut HostMut<'a>,
}

impl Overlay<'_, '_> {
    /// Join the community privately derived from `name`.
    pub fn isolate_community(&mut self, name: &str) -> Result<(), String> {
        res(self.ctx.isolate_community(name.into()))
    }

    /// Use this 20-byte community id.
    pub fn set_community_id(&mut self, id: &[u8]) -> Result<(), String> {
        res(self.ctx.set_community_id(id.into()))
    }

    /// Start the session.
    pub fn start_session(&mut self) -> Result<(), String> {
        res(self.ctx.start_session())
    }

    /// Stop the session.
    pub fn stop_session(&mut self) -> Result<(), String> {
        res(self.ctx.stop_session())
    }

    /// Learn peers from the sync server's table.
    pub fn introduce_peers(&mut self, max_peers: Option<u64>) -> Result<(), String> {
        res(self.ctx.introduce_peers(max_peers.into()))
    }

    /// Set a walker parameter.
    pub fn set_walker(&mut self, name: &str, value: Value) -> Result<(), String> {
        res(self.ctx.set_walker(name.into(), value.into_ne()))
    }

    /// Reset the overlay's counters.
    pub fn reset_statistics(&mut self) -> Result<(), String> {
        res(self.ctx.reset_overlay_statistics())
    }

    /// Define a message type.
    pub fn define_message(&mut self, spec: MessageSpec) -> Result<(), String> {
        res(self.ctx.define_message(spec))
    }

    /// Send a message (to `to` for `Candidate` destinations).
    pub fn send(&mut self, message: &str, payload: Vec<u8>, to: &[u64]) -> Result<(), String> {
        res(self
            .ctx
            .send(message.into(), payload.into(), to.to_vec().into()))
    }

    /// The instances this one knows.
    pub fn known_peers(&self) -> Vec<u64> {
        self.ctx.known_peers().into_vec()
    }

    /// This instance's public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.ctx.public_key().into_vec()
    }
}

impl Host<'_> {
    /// Fault: lose a `loss` fraction of this instance's outgoing datagrams
    /// and delay them by `delay` plus up to `jitter` (since api 1.2).
    pub fn set_network(
        &mut self,
        loss: f64,
        delay: Duration,
        jitter: Duration,
    ) -> Result<(), String> {
        res(self
            .ctx
            .set_network(loss, delay.as_secs_f64(), jitter.as_secs_f64()))
    }

    /// Fault: as [`Host::set_network`], and this instance's upload and
    /// download capacity in bits per second of scenario time (`None`: the
    /// run's default; infinity: unlimited) (since api 1.5).
    pub fn set_network_bandwidth(
        &mut self,
        loss: f64,
        delay: Duration,
        jitter: Duration,
        up: Option<f64>,
        down: Option<f64>,
    ) -> Result<(), String> {
        res(self.ctx.set_network_bandwidth(
            loss,
            delay.as_secs_f64(),
            jitter.as_secs_f64(),
            up.unwrap_or(0.0),
            down.unwrap_or(0.0),
        ))
    }

    /// Fault: split the network into groups of ids (`"1-3"`, `"4,5"`);
    /// an empty list heals (since api 1.2).
    pub fn partition(&mut self, groups: &[String]) -> Result<(), String> {
        res(self
            .ctx
            .partition(groups.iter().map(|g| RString::from(g.as_str())).collect()))
    }

    /// Fault: stop this instance at once, without a goodbye (since api 1.2).
    pub fn crash(&mut self) -> Result<(), String> {
        res(self.ctx.crash())
    }

    /// Network: capture this instance's datagrams from now on, into its
    /// pcap file in the run folder (since api 1.5).
    pub fn capture(&mut self) -> Result<(), String> {
        res(self.ctx.capture())
    }
}

/// Metrics (since api 1.4): each name must be one the module declared
/// (`#[module(metrics = [...])]`), with that kind. Recording is cheap (no
/// allocation on either side); a mistake is reported by the host, not
/// returned: the first undeclared name or wrong kind fails the instance
/// with an error naming the module, the callback and the name (in its
/// `.err` file and the run's summary), and every such call is counted in
/// the statistics as `metric_errors`.
impl Host<'_> {
    /// Add `value` (>= 0) to the counter `name`.
    pub fn counter_add(&mut self, name: &str, value: f64) {
        let _ = self
            .ctx
            .record_metric(MetricKind::COUNTER, name.into(), value);
    }

    /// Set the gauge `name` to `value`.
    pub fn gauge_set(&mut self, name: &str, value: f64) {
        let _ = self
            .ctx
            .record_metric(MetricKind::GAUGE, name.into(), value);
    }

    /// Record one sample (finite, >= 0, in the declared unit) of the
    /// observation `name`, e.g. a time-to-X in seconds.
    pub fn observe(&mut self, name: &str, value: f64) {
        let _ = self
            .ctx
            .record_metric(MetricKind::OBSERVATION, name.into(), value);
    }
}
