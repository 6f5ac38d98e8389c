//! The stable ABI between the peerlab host and experiment modules.
//!
//! This is the only crate a plugin depends on. **API boundary**: every type
//! here that crosses into a plugin is `abi_stable`; structs that may grow are
//! prefix types or `#[sabi_trait]` objects and only ever gain fields or
//! methods at the end; enums are `NonExhaustive` or integer newtypes. A host
//! built against a newer 1.x loads plugins built against an older 1.x.
//!
//! # Writing a plugin
//!
//! A plugin is a `cdylib` (plus `rlib`, so its tests link it directly):
//!
//! ```toml
//! [lib]
//! name = "greeter"                  # the host looks for libgreeter.so
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! peerlab-plugin-api = "1"
//! ```
//!
//! The module is a plain struct; its `#[callback]` methods are what scenario
//! lines call. Arguments are typed: the host converts and checks scenario
//! words before calling, so `peerlab check` reports a wrong argument.
//!
//! ```
//! use peerlab_plugin_api::{module, Host, Outputs, Verdict, IncomingMessage};
//!
//! #[derive(Default)]
//! pub struct Greeter {
//!     greeted: i64,
//! }
//!
//! #[module(name = "greeter")]
//! impl Greeter {
//!     /// Greet someone, `times` times (`greet bob times=2`).
//!     #[callback]
//!     fn greet(&mut self, host: &mut Host, who: String, #[kw(default = 1)] times: i64)
//!         -> Result<(), String>
//!     {
//!         if times < 0 {
//!             return Err(format!("times must be positive, got {times}"));
//!         }
//!         for _ in 0..times {
//!             host.print(format!("hello {who}"));
//!         }
//!         self.greeted += times;
//!         Ok(())
//!     }
//!
//!     /// Print every word (`say a b c`).
//!     #[callback]
//!     fn say(&mut self, host: &mut Host, #[rest] words: Vec<String>) {
//!         host.print(words.join(" "));
//!     }
//!
//!     /// A callback may return a value to a module calling it.
//!     #[callback]
//!     fn greeted(&self) -> i64 {
//!         self.greeted
//!     }
//!
//!     /// Verdict hook: every instance must have said hello.
//!     #[check]
//!     fn verdicts(outputs: &Outputs) -> Vec<Verdict> {
//!         let silent: Vec<u64> = outputs.instance_ids().into_iter()
//!             .filter(|&i| !outputs.lines(i).iter().any(|l| l.starts_with("hello")))
//!             .collect();
//!         vec![if silent.is_empty() {
//!             Verdict::pass("everyone greeted", "all instances printed a greeting")
//!         } else {
//!             Verdict::fail("everyone greeted", format!("silent instances: {silent:?}"))
//!         }]
//!     }
//! }
//!
//! // Unit test without the host:
//! let mut th = peerlab_plugin_api::testing::TestHost::new(1, 3);
//! let mut g = Greeter::default();
//! g.greet(&mut th.host(), "bob".into(), 2).unwrap();
//! assert_eq!(th.prints, ["hello bob", "hello bob"]);
//! ```
//!
//! Config keys: a module reads its own experiment-config keys with
//! `host.config("modulus")` / `host.config_parse::<u64>("modulus")`; declare
//! them, `#[module(name = "benaloh", config = ["modulus: the modulus M (default
//! 2^31-1)"])]`, so `peerlab check` does not call them unknown and `peerlab
//! modules` lists them (since 1.2).
//!
//! Churn: under `leave` or a churn model some instances are away at the
//! end of a run, and cannot have taken part in its last commands. A verdict
//! about the end judges the others: `outputs.online_at_end(id)` (since 1.5)
//! says which were online (docs/network.md, "Churn").
//!
//! # Metrics
//!
//! A module's results belong in metrics (since 1.4): declare each once, with
//! its kind, unit and a line of description, and record it cheaply from any
//! callback or hook:
//!
//! ```
//! use peerlab_plugin_api::{module, Host, Module};
//!
//! #[derive(Default)]
//! pub struct Pinger {
//!     sent_at: Option<f64>,
//! }
//!
//! #[module(name = "pinger", metrics = [
//!     counter(pongs, unit = "messages", "pongs received"),
//!     gauge(pending, unit = "pings", "pings not answered yet"),
//!     observation(rtt, unit = "s", headline, "round-trip time of a ping"),
//! ])]
//! impl Pinger {
//!     /// Note when a ping went out.
//!     #[callback]
//!     fn ping(&mut self, host: &mut Host) {
//!         self.sent_at = Some(host.now());
//!         host.gauge_set("pending", 1.0);
//!     }
//!
//!     /// A pong came back.
//!     #[callback]
//!     fn pong(&mut self, host: &mut Host) {
//!         if let Some(at) = self.sent_at.take() {
//!             host.counter_add("pongs", 1.0);
//!             host.observe("rtt", host.now() - at);
//!             host.gauge_set("pending", 0.0);
//!         }
//!     }
//! }
//!
//! let mut th = peerlab_plugin_api::testing::TestHost::new(1, 2).with_metrics(Pinger::METRICS);
//! let mut p = Pinger::default();
//! p.ping(&mut th.host());
//! th.now = 0.25;
//! p.pong(&mut th.host());
//! assert_eq!(th.counter("pongs"), 1.0);
//! assert_eq!(th.observations("rtt"), [0.25]);
//! assert_eq!(th.gauge("pending"), Some(0.0));
//! assert!(th.metric_errors.is_empty());
//! ```
//!
//! - A **counter** only grows (`host.counter_add(name, by)`); the statistics
//!   files hold its running total, reports show its rate per scenario
//!   second. A **gauge** is the last value set (`host.gauge_set`). An
//!   **observation** is one sample at a time (`host.observe`: a latency, a
//!   time-to-X, finite and >= 0); each statistics line holds the samples of
//!   its interval as a mergeable histogram (3 significant digits), and
//!   reports give count, min, p50, p90, p99, max and mean over every
//!   instance.
//! - Names are lower-case letters, digits and `_`; in the run folder the
//!   full name is `<module>.<name>` (`pinger.rtt`). A name ending in `/*`
//!   declares a family: `counter("sent_to/*", unit = "messages", "...")`
//!   lets the module record `sent_to/3`, `sent_to/4`, ...
//! - `headline` marks the module's main results: reports show them first.
//! - A typo cannot go unnoticed: recording a name the module did not declare
//!   (or with another kind's method, or a negative count) fails the
//!   instance the first time, with an error naming the module, the callback
//!   and the name in its `.err` file and the run's summary; every such call
//!   is counted as `metric_errors` in its statistics.
//! - Statistics are sampled every `stats_interval` scenario seconds (config
//!   key, default 1) and when the instance ends; `host.now()` is scenario
//!   time, so a time-to-X is in scenario seconds whatever `--time-scale`.
//! - `run.json` lists every loaded module's declarations (`metrics`);
//!   `peerlab modules` shows them by full name, kind and unit.
//! - Tests: [`testing::TestHost::with_metrics`] checks names and kinds as the
//!   host does; `counter`, `gauge` and `observations` read back what was
//!   recorded.
//! - The older `host.stat_add` / `host.stat_set` still work (undeclared,
//!   written as `stat/<name>`), for plugins built against 1.0 to 1.3.
//!
//! # Benchmark workload
//!
//! A module can declare the workload `peerlab bench <module>` measures it
//! with (since 1.5): `bench(..)` in its `#[module]`, next to the metrics
//! that time it. The host generates the scenario from it, runs it through
//! the real runner, instance runtime and UDP overlay, and reads every
//! figure from the run folder; it names nothing of the protocol itself.
//!
//! ```
//! use peerlab_plugin_api::{module, Host, Module};
//!
//! #[derive(Default)]
//! pub struct Ring {
//!     started: Option<f64>,
//! }
//!
//! #[module(
//!     name = "ring",
//!     config = ["ring_fanout: peers each ping goes to (default 3)"],
//!     metrics = [observation(ring_time, unit = "s", headline, "first ping_all to every pong back")],
//!     bench(
//!         about = "pings around the ring",            // the scenario's header, the help
//!         protocol = "the ring protocol",             // in errors: `.. needs at least 2 instances`
//!         modules = ["dispersy"],                     // loaded before this module
//!         community = "RingCommunity",                // @@ isolate_community (optional)
//!         start = "ping_all rounds=2",                // run at scenario second 1
//!         end = ["print_rtt"],                        // run at the deadline
//!         done = ring_time,                           // this module's observation
//!         messages = ["ping", "pong"],                // the message types counted
//!         fanout = "ring_fanout",                     // set to N-1 or --fanout (optional)
//!         help = "Each peer pings every other peer.", // more for `peerlab bench ring --help`
//!     )
//! )]
//! impl Ring {
//!     /// Ping every peer.
//!     #[callback]
//!     fn ping_all(&mut self, host: &mut Host, #[kw(default = 1)] rounds: i64) {
//!         self.started.get_or_insert(host.now());
//!         host.log(format!("{rounds} rounds"));
//!     }
//!
//!     /// Print the round-trip time.
//!     #[callback]
//!     fn print_rtt(&mut self, host: &mut Host) {
//!         // ... when the last pong is in:
//!         if let Some(at) = self.started {
//!             host.observe("ring_time", host.now() - at);
//!         }
//!     }
//! }
//!
//! let bench = Ring::BENCH.unwrap();
//! assert_eq!(bench.start_command(), "ping_all");
//! ```
//!
//! - `start`: the scenario line (command and arguments) that starts the
//!   protocol; the window starts at the earliest such command of any
//!   instance (its `command` event).
//! - `done`: an observation of this module (checked at compile time) that
//!   each instance records once, when it is done: the scenario seconds from
//!   its own first `start` command. The window ends at the last instance's
//!   start plus its observation (kept to the millisecond); an instance that
//!   never records it did not finish, and the measurement is not correct.
//! - `messages`: the message types (the names given to `define_message`)
//!   whose datagrams count as the protocol's (`msg_out/<type>`, resends
//!   included).
//! - `fanout`: a config key of this module (checked at compile time) that
//!   `peerlab bench` sets to N-1, or to `--fanout F`.
//! - The generated scenario: `&module` of `modules` and then this module,
//!   `@@ isolate_community` (when given), `@0 start_session`, `@0
//!   introduce_peers`, `@1 <start>`, and each of `end` at the deadline
//!   (`--deadline`, default 6 + N/50 s). The run passes when every instance
//!   finished, every instance was done and every verdict passed.
//! - `peerlab bench --list` shows the plugins that declare a workload;
//!   `peerlab bench <module> --help` shows what it measures. A plugin
//!   built against 1.0 to 1.4 declares none (`peerlab bench` says so).
//!
//! Who sent a message: `message.verified_author()` (since 1.3) is the
//! experiment instance whose key, as the run's peer table gives it, signed
//! the message, checked by the overlay; `None` for unsigned messages and
//! keys from outside the run. Believe it, not an instance id the payload
//! claims: anyone who can reach a peer's UDP port can send it a message
//! signed with a key of their own (docs/security.md).
//!
//! Method roles: `#[callback]` (or `#[callback(name = "other")]`; the first
//! doc line is its help), `#[create] fn new(host: &mut Host) -> Result<Self, E>`
//! (default: `Default::default()`), `#[on_timer] fn(&mut self, host, token: u64)`,
//! `#[on_message] fn(&mut self, host, message: &IncomingMessage)`,
//! `#[on_stop] fn(&mut self, host)`, `#[check] fn(outputs: &Outputs) -> Vec<Verdict>`.
//! Hooks and callbacks return `()`, a value, or `Result<_, E: Display>`.
//!
//! Parameters: `String`, `i64`, `f64`, `bool`, `std::time::Duration`;
//! `Option<T>` for optional ones; `#[kw]` makes one keyword-only
//! (`name=value` on the scenario line); `#[kw(default = EXPR)]` /
//! `#[arg(default = EXPR)]` give defaults; `#[rest] words: Vec<T>` takes the
//! remaining positional words. Anything else is a compile error.
//!
//! A panic inside any of these is caught on the plugin side and reported as
//! ``module `greeter` panicked in callback `greet`: MESSAGE (at src/lib.rs:LINE:COLUMN)``; the
//! instance refuses further calls rather than run on half-updated state.
//! (This needs unwinding: do not build a plugin with `panic = "abort"`.)
//!
//! Build with `cargo build`, then `&module greeter` in a scenario finds
//! `libgreeter.so` on `--plugin-path`, in the experiment's directory or in
//! the workspace's `target/`. `peerlab modules` lists what it finds.
//!
//! Randomness: use `host.random_u64()` or seed your own RNG from
//! `host.seed()` so runs repeat exactly; never the thread RNG. Time: use
//! `host.now()` and `host.set_timer(..)`, never sleep: callbacks must return
//! quickly and no async runtime crosses the boundary.

// abi_stable 0.11's derives put `impl InterfaceType` inside a const block.
#![allow(non_local_definitions)]
#![warn(missing_docs)]

pub mod bench;
pub mod host;
pub mod metrics;
pub mod module;
pub mod overlay;
pub mod payload;
#[doc(hidden)]
pub mod signature_errors;
pub mod spec;
pub mod testing;
pub mod value;

#[doc(hidden)]
pub use abi_stable;
/// serde, for typed payloads ([`payload`]) without a dependency of your own:
/// `#[derive(Serialize, Deserialize)] #[serde(crate = "peerlab_plugin_api::serde")]`.
pub use serde;

pub use bench::{Bench, BenchSpec, BenchSpec_Ref};
pub use host::{Host, HostContext, HostContext_TO, HostMut, Overlay};
pub use metrics::{MetricKind, MetricSpec, check_metric_name};
pub use module::{
    API_VERSION, Adapter, ConfigKey, Module, ModuleInstance, ModuleInstance_TO, ModuleInstanceBox,
    ModuleRoot, ModuleRoot_Ref, Outputs, RunOutputs, RunOutputs_TO, RunOutputsRef, Verdict, guard,
    new_instance, panic_message, root_module_for,
};
pub use overlay::{
    Authentication, Destination, Destination_NE, Distribution, IncomingMessage, MessageSpec,
};
pub use peerlab_plugin_api_macros::{export_module, module};
pub use spec::{
    BindError, CallArgs, CallbackSpec, Invocation, ParamKind, ParamSpec, RawArg, bind, closest,
};
pub use value::{ArgType, FromValue, IntoValue, Value, Value_NE};

/// What a callback's `Ok` value becomes: nothing for `()`, a [`Value`] for
/// the argument types (and `Option` of them).
pub trait ReturnValue {
    /// Convert.
    fn into_return_value(self) -> Option<Value>;
}

impl ReturnValue for () {
    fn into_return_value(self) -> Option<Value> {
        None
    }
}

impl<T: IntoValue> ReturnValue for Option<T> {
    fn into_return_value(self) -> Option<Value> {
        self.map(IntoValue::into_value)
    }
}

macro_rules! return_value {
    ($($t:ty),*) => {$(
        impl ReturnValue for $t {
            fn into_return_value(self) -> Option<Value> {
                Some(self.into_value())
            }
        }
    )*};
}
return_value!(String, i64, f64, bool, std::time::Duration, Value);
