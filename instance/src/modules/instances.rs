//! One experiment instance's module instances and the dispatch of calls,
//! timers and messages to them.
//!
//! The runtime implements [`Services`] (plain Rust, no abi_stable); this
//! module wraps it into the `HostContext` each call receives, adding
//! module-to-module calls. While a module runs, its slot is taken out, so
//! a module calling itself (directly or in a cycle) is refused instead of
//! aliasing `&mut`. No I/O here.

use std::sync::Arc;

use peerlab_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use peerlab_plugin_api::abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use peerlab_plugin_api::{
    HostContext, HostContext_TO, IncomingMessage, Invocation, MessageSpec, MetricKind,
    ModuleInstanceBox, Value, Value_NE,
};

use super::BoundCall;
use super::Registry;

/// How deep module-to-module calls may nest.
pub const MAX_CALL_DEPTH: u32 = 16;

/// What the runtime provides to modules. `module` arguments are indices into
/// the [`Registry`], so the runtime can route timers, messages and output.
pub trait Services {
    /// This instance's id, 1-based.
    fn instance_id(&self) -> u64;
    /// How many instances the experiment runs.
    fn instance_count(&self) -> u64;
    /// An experiment config key.
    fn config(&self, key: &str) -> Option<String>;
    /// This instance's random seed.
    fn seed(&self) -> u64;
    /// The next number of this instance's seeded random stream.
    fn random_u64(&mut self) -> u64;
    /// Scenario time in seconds.
    fn now(&self) -> f64;
    /// A line for the instance's output.
    fn print(&mut self, module: usize, line: &str);
    /// A line for the instance's log.
    fn log(&mut self, module: usize, line: &str);
    /// An annotation at the current time.
    fn annotate(&mut self, module: usize, text: &str);
    /// Add to a counter statistic.
    fn stat_add(&mut self, module: usize, name: &str, value: f64);
    /// Set a gauge statistic.
    fn stat_set(&mut self, module: usize, name: &str, value: f64);
    /// Call `on_timer(token)` of `module` after `delay` seconds.
    fn set_timer(&mut self, module: usize, delay: f64, token: u64);
    /// Set a scenario variable.
    fn set_var(&mut self, name: &str, value: &str);
    /// A scenario variable.
    fn var(&self, name: &str) -> Option<String>;
    /// Stop this instance after the current callback.
    fn stop(&mut self);
    /// A top-level callback of `module` (`what`: the callback's name) is
    /// about to run: the runtime writes it down, so a hang can be named.
    fn entering(&mut self, _module: usize, _what: &str) {}
    /// That callback returned.
    fn left(&mut self) {}

    /// Overlay: join the community derived from `name`.
    fn isolate_community(&mut self, _name: &str) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: use this 20-byte community id.
    fn set_community_id(&mut self, _id: &[u8]) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: start the session.
    fn start_session(&mut self) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: stop the session.
    fn stop_session(&mut self) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: learn peers from the sync server's table.
    fn introduce_peers(&mut self, _max_peers: Option<u64>) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: set a walker parameter.
    fn set_walker(&mut self, _name: &str, _value: &Value) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: reset the counters.
    fn reset_overlay_statistics(&mut self) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: `module` defines a message type (deliveries go to it).
    fn define_message(&mut self, _module: usize, _spec: MessageSpec) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: `module` sends a message.
    fn send(
        &mut self,
        _module: usize,
        _message: &str,
        _payload: Vec<u8>,
        _to: Vec<u64>,
    ) -> Result<(), String> {
        Err(no_overlay())
    }
    /// Overlay: the instances this one knows.
    fn known_peers(&self) -> Vec<u64> {
        Vec::new()
    }
    /// Overlay: this instance's public key.
    fn public_key(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Fault: loss and delay on this instance's outgoing traffic.
    fn set_network(&mut self, _loss: f64, _delay: f64, _jitter: f64) -> Result<(), String> {
        Err("network faults need a real or simulated run".into())
    }
    /// Fault: as `set_network`, and the upload/download capacity (bits per
    /// scenario second; `None`: the run's default; infinity: unlimited).
    fn set_network_bandwidth(
        &mut self,
        _loss: f64,
        _delay: f64,
        _jitter: f64,
        _up: Option<f64>,
        _down: Option<f64>,
    ) -> Result<(), String> {
        Err("network faults need a real or simulated run".into())
    }
    /// Fault: partition the network into groups of ids; none heals.
    fn partition(&mut self, _groups: Vec<String>) -> Result<(), String> {
        Err("network faults need a real or simulated run".into())
    }
    /// Fault: stop this instance at once, without a goodbye.
    fn crash(&mut self) -> Result<(), String> {
        Err("crash needs a real or simulated run".into())
    }
    /// Network: capture this instance's datagrams from now on (its driver
    /// writes them).
    fn capture(&mut self) -> Result<(), String> {
        Err("packet capture needs a real or simulated run".into())
    }
    /// Metric (api 1.4): `module` records `value` for its metric `name`.
    /// The runtime checks it against the module's declarations and reports
    /// a mistake itself; the error is only informative to the module.
    fn record_metric(
        &mut self,
        _module: usize,
        _kind: MetricKind,
        _name: &str,
        _value: f64,
    ) -> Result<(), String> {
        Err("metrics need a real or simulated run".into())
    }
}

fn no_overlay() -> String {
    "the overlay is not available in this host (load `&module dispersy` in a real run)".into()
}

/// One instance of every module of a [`Registry`], for one experiment instance.
pub struct Instances {
    registry: Arc<Registry>,
    slots: Vec<Option<ModuleInstanceBox>>,
}

impl std::fmt::Debug for Instances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .registry
            .modules()
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        f.debug_struct("Instances")
            .field("modules", &names)
            .finish()
    }
}

struct Context<'a> {
    services: &'a mut dyn Services,
    slots: &'a mut Vec<Option<ModuleInstanceBox>>,
    registry: &'a Registry,
    module: usize,
    depth: u32,
}

fn r(res: Result<(), String>) -> RResult<(), RString> {
    res.map_err(RString::from).into()
}

impl Context<'_> {
    fn run<T>(
        services: &mut dyn Services,
        slots: &mut Vec<Option<ModuleInstanceBox>>,
        registry: &Registry,
        module: usize,
        depth: u32,
        f: impl FnOnce(&mut ModuleInstanceBox, peerlab_plugin_api::HostMut<'_>) -> RResult<T, RString>,
    ) -> Result<T, String> {
        let name = registry
            .modules()
            .get(module)
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let Some(mut inst) = slots.get_mut(module).and_then(Option::take) else {
            return Err(format!(
                "module `{name}` is busy: it is already running further up this call chain"
            ));
        };
        let res = {
            let mut ctx = Context {
                services,
                slots,
                registry,
                module,
                depth,
            };
            let host = HostContext_TO::from_ptr(&mut ctx, TD_Opaque);
            f(&mut inst, host)
        };
        slots[module] = Some(inst);
        res.into_result().map_err(String::from)
    }
}

impl HostContext for Context<'_> {
    fn instance_id(&self) -> u64 {
        self.services.instance_id()
    }
    fn instance_count(&self) -> u64 {
        self.services.instance_count()
    }
    fn config(&self, key: RStr<'_>) -> ROption<RString> {
        self.services.config(key.as_str()).map(RString::from).into()
    }
    fn seed(&self) -> u64 {
        self.services.seed()
    }
    fn random_u64(&mut self) -> u64 {
        self.services.random_u64()
    }
    fn now(&self) -> f64 {
        self.services.now()
    }
    fn print(&mut self, line: RStr<'_>) {
        self.services.print(self.module, line.as_str())
    }
    fn log(&mut self, line: RStr<'_>) {
        self.services.log(self.module, line.as_str())
    }
    fn annotate(&mut self, text: RStr<'_>) {
        self.services.annotate(self.module, text.as_str())
    }
    fn stat_add(&mut self, name: RStr<'_>, value: f64) {
        self.services.stat_add(self.module, name.as_str(), value)
    }
    fn stat_set(&mut self, name: RStr<'_>, value: f64) {
        self.services.stat_set(self.module, name.as_str(), value)
    }
    fn record_metric(
        &mut self,
        kind: MetricKind,
        name: RStr<'_>,
        value: f64,
    ) -> RResult<(), RString> {
        self.services
            .record_metric(self.module, kind, name.as_str(), value)
            .map_err(RString::from)
            .into()
    }
    fn set_timer(&mut self, delay: f64, token: u64) {
        let delay = if delay.is_finite() && delay > 0.0 {
            delay
        } else {
            0.0
        };
        self.services.set_timer(self.module, delay, token)
    }
    fn call_module(
        &mut self,
        module: RStr<'_>,
        callback: RStr<'_>,
        args: Invocation,
    ) -> RResult<ROption<Value_NE>, RString> {
        let caller = self.registry.modules()[self.module].name.clone();
        let res = (|| {
            let Some((target, m)) = self.registry.module(module.as_str()) else {
                let loaded: Vec<&str> = self
                    .registry
                    .modules()
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                return Err(format!(
                    "module `{caller}` called `{module}.{callback}`, but no module `{module}` is loaded (loaded: {})",
                    loaded.join(", ")
                ));
            };
            if target == self.module {
                return Err(format!(
                    "module `{caller}` called its own callback `{callback}` through the host; call the method directly"
                ));
            }
            if self.depth >= MAX_CALL_DEPTH {
                return Err(format!("module calls nest deeper than {MAX_CALL_DEPTH}"));
            }
            let written = format!("{}.{}", m.name, callback);
            let bound = self
                .registry
                .bind(&written, &args.to_raw())
                .map_err(|e| format!("module `{caller}` called {e}"))?;
            let out = Context::run(
                self.services,
                self.slots,
                self.registry,
                target,
                self.depth + 1,
                |inst, host| inst.call(host, bound.callback.as_str().into(), bound.args.clone()),
            )?;
            Ok(out)
        })();
        res.map_err(RString::from).into()
    }
    fn set_var(&mut self, name: RStr<'_>, value: RStr<'_>) {
        self.services.set_var(name.as_str(), value.as_str())
    }
    fn var(&self, name: RStr<'_>) -> ROption<RString> {
        self.services.var(name.as_str()).map(RString::from).into()
    }
    fn stop(&mut self) {
        self.services.stop()
    }
    fn isolate_community(&mut self, name: RStr<'_>) -> RResult<(), RString> {
        r(self.services.isolate_community(name.as_str()))
    }
    fn set_community_id(&mut self, id: RSlice<'_, u8>) -> RResult<(), RString> {
        r(self.services.set_community_id(id.as_slice()))
    }
    fn start_session(&mut self) -> RResult<(), RString> {
        r(self.services.start_session())
    }
    fn stop_session(&mut self) -> RResult<(), RString> {
        r(self.services.stop_session())
    }
    fn introduce_peers(&mut self, max_peers: ROption<u64>) -> RResult<(), RString> {
        r(self.services.introduce_peers(max_peers.into_option()))
    }
    fn set_walker(&mut self, name: RStr<'_>, value: Value_NE) -> RResult<(), RString> {
        match Value::from_ne(&value) {
            Some(v) => r(self.services.set_walker(name.as_str(), &v)),
            None => r(Err(format!(
                "walker parameter `{name}` has a value type this host does not know"
            ))),
        }
    }
    fn reset_overlay_statistics(&mut self) -> RResult<(), RString> {
        r(self.services.reset_overlay_statistics())
    }
    fn define_message(&mut self, spec: MessageSpec) -> RResult<(), RString> {
        r(self.services.define_message(self.module, spec))
    }
    fn send(
        &mut self,
        message: RStr<'_>,
        payload: RVec<u8>,
        to: RVec<u64>,
    ) -> RResult<(), RString> {
        r(self.services.send(
            self.module,
            message.as_str(),
            payload.into_vec(),
            to.into_vec(),
        ))
    }
    fn known_peers(&self) -> RVec<u64> {
        self.services.known_peers().into()
    }
    fn public_key(&self) -> RVec<u8> {
        self.services.public_key().into()
    }
    fn set_network(&mut self, loss: f64, delay: f64, jitter: f64) -> RResult<(), RString> {
        r(self.services.set_network(loss, delay, jitter))
    }
    fn set_network_bandwidth(
        &mut self,
        loss: f64,
        delay: f64,
        jitter: f64,
        up: f64,
        down: f64,
    ) -> RResult<(), RString> {
        let rate = |r: f64| (r != 0.0).then_some(r);
        r(self
            .services
            .set_network_bandwidth(loss, delay, jitter, rate(up), rate(down)))
    }
    fn partition(&mut self, groups: RVec<RString>) -> RResult<(), RString> {
        r(self
            .services
            .partition(groups.into_iter().map(String::from).collect()))
    }
    fn crash(&mut self) -> RResult<(), RString> {
        r(self.services.crash())
    }
    fn capture(&mut self) -> RResult<(), RString> {
        r(self.services.capture())
    }
}

impl Instances {
    /// Make one instance of every module (in registry order, `core` first).
    /// A module whose constructor fails is reported as `module \`x\`: why`.
    pub fn new(registry: Arc<Registry>, services: &mut dyn Services) -> Result<Self, String> {
        let n = registry.modules().len();
        let mut slots: Vec<Option<ModuleInstanceBox>> = (0..n).map(|_| None).collect();
        for i in 0..n {
            let m = &registry.modules()[i];
            let new_instance = m.root().new_instance();
            services.entering(i, "create");
            let mut ctx = Context {
                services,
                slots: &mut slots,
                registry: &registry,
                module: i,
                depth: 0,
            };
            let host = HostContext_TO::from_ptr(&mut ctx, TD_Opaque);
            let made = new_instance(host);
            services.left();
            let inst = made
                .into_result()
                .map_err(|e| format!("module `{}`: {e}", m.name))?;
            slots[i] = Some(inst);
        }
        Ok(Instances { registry, slots })
    }

    /// The registry these instances belong to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Run a bound call; returns what the callback returned.
    pub fn call(
        &mut self,
        services: &mut dyn Services,
        call: &BoundCall,
    ) -> Result<Option<Value>, String> {
        let registry = Arc::clone(&self.registry);
        services.entering(call.module, &call.callback);
        let res = Context::run(
            services,
            &mut self.slots,
            &registry,
            call.module,
            0,
            |inst, host| inst.call(host, call.callback.as_str().into(), call.args.clone()),
        );
        services.left();
        res.map(|v| v.into_option().and_then(|v| Value::from_ne(&v)))
            .map_err(|e| format!("{call}: {e}"))
    }

    /// Deliver a timer to `module`.
    pub fn on_timer(
        &mut self,
        services: &mut dyn Services,
        module: usize,
        token: u64,
    ) -> Result<(), String> {
        let registry = Arc::clone(&self.registry);
        services.entering(module, "on_timer");
        let res = Context::run(
            services,
            &mut self.slots,
            &registry,
            module,
            0,
            |inst, host| inst.on_timer(host, token),
        );
        services.left();
        res
    }

    /// Deliver an overlay message to the module that defined its type.
    pub fn on_message(
        &mut self,
        services: &mut dyn Services,
        module: usize,
        message: IncomingMessage,
    ) -> Result<(), String> {
        let registry = Arc::clone(&self.registry);
        services.entering(module, "on_message");
        let res = Context::run(
            services,
            &mut self.slots,
            &registry,
            module,
            0,
            |inst, host| inst.on_message_with_author(host, message),
        );
        services.left();
        res
    }

    /// Tell every module the experiment started; returns each failure.
    pub fn on_start(&mut self, services: &mut dyn Services) -> Vec<String> {
        self.each(services, "on_start", |inst, host| inst.on_start(host))
    }

    /// Tell every module the instance stops; returns each failure.
    pub fn on_stop(&mut self, services: &mut dyn Services) -> Vec<String> {
        self.each(services, "on_stop", |inst, host| inst.on_stop(host))
    }

    fn each(
        &mut self,
        services: &mut dyn Services,
        what: &str,
        f: impl Fn(&mut ModuleInstanceBox, peerlab_plugin_api::HostMut<'_>) -> RResult<(), RString>,
    ) -> Vec<String> {
        let registry = Arc::clone(&self.registry);
        let mut errors = Vec::new();
        for i in 0..self.slots.len() {
            services.entering(i, what);
            let res = Context::run(services, &mut self.slots, &registry, i, 0, &f);
            services.left();
            if let Err(e) = res {
                errors.push(format!(
                    "module `{}` {what}: {e}",
                    registry.modules()[i].name
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::{LoadedModule, Registry};
    use peerlab_plugin_api::{Host, Invocation, RawArg, module};

    /// A provider module another module calls through the host.
    #[derive(Default)]
    struct Counter {
        n: i64,
    }

    #[module(name = "counter", export = false)]
    impl Counter {
        /// Add and return the new count.
        #[callback]
        fn bump(&mut self, by: i64) -> i64 {
            self.n += by;
            self.n
        }

        /// Call the caller back (a cycle).
        #[callback]
        fn call_back(&mut self, host: &mut Host) -> Result<(), String> {
            host.call_module("client", "use_counter", Invocation::new())
                .map(|_| ())
        }
    }

    #[derive(Default)]
    struct Client;

    #[module(name = "client", export = false)]
    impl Client {
        /// Ask the counter module, print its answer.
        #[callback]
        fn use_counter(&mut self, host: &mut Host) -> Result<(), String> {
            let v = host.call_module("counter", "bump", Invocation::new().kwarg("by", "2"))?;
            host.print(format!(
                "counter says {}",
                v.map(|v| v.to_string()).unwrap_or_default()
            ));
            Ok(())
        }

        /// Call itself through the host.
        #[callback]
        fn selfish(&mut self, host: &mut Host) -> Result<(), String> {
            host.call_module("client", "use_counter", Invocation::new())
                .map(|_| ())
        }

        /// Start a cycle through the counter.
        #[callback]
        fn cycle(&mut self, host: &mut Host) -> Result<(), String> {
            host.call_module("counter", "call_back", Invocation::new())
                .map(|_| ())
        }
    }

    struct Recorder {
        prints: Vec<(usize, String)>,
    }

    impl Services for Recorder {
        fn instance_id(&self) -> u64 {
            1
        }
        fn instance_count(&self) -> u64 {
            1
        }
        fn config(&self, _key: &str) -> Option<String> {
            None
        }
        fn seed(&self) -> u64 {
            7
        }
        fn random_u64(&mut self) -> u64 {
            4
        }
        fn now(&self) -> f64 {
            0.0
        }
        fn print(&mut self, module: usize, line: &str) {
            self.prints.push((module, line.into()));
        }
        fn log(&mut self, _module: usize, _line: &str) {}
        fn annotate(&mut self, _module: usize, _text: &str) {}
        fn stat_add(&mut self, _module: usize, _name: &str, _value: f64) {}
        fn stat_set(&mut self, _module: usize, _name: &str, _value: f64) {}
        fn set_timer(&mut self, _module: usize, _delay: f64, _token: u64) {}
        fn set_var(&mut self, _name: &str, _value: &str) {}
        fn var(&self, _name: &str) -> Option<String> {
            None
        }
        fn stop(&mut self) {}
    }

    fn setup() -> (Instances, Recorder) {
        let mut reg = Registry::core_only();
        reg.modules.push(LoadedModule::builtin::<Counter>());
        reg.modules.push(LoadedModule::builtin::<Client>());
        let mut rec = Recorder { prints: Vec::new() };
        let inst = Instances::new(Arc::new(reg), &mut rec).unwrap();
        (inst, rec)
    }

    fn call(inst: &mut Instances, rec: &mut Recorder, line: &str) -> Result<Option<Value>, String> {
        let bound = inst.registry().bind(line, &[]).map_err(|e| e.to_string())?;
        inst.call(rec, &bound)
    }

    #[test]
    fn modules_call_each_other_through_the_host() {
        let (mut inst, mut rec) = setup();
        call(&mut inst, &mut rec, "use_counter").unwrap();
        call(&mut inst, &mut rec, "use_counter").unwrap();
        assert_eq!(
            rec.prints,
            [(2, "counter says 2".into()), (2, "counter says 4".into())]
        );
        let b = inst
            .registry()
            .bind("bump", &[RawArg::from_word("3")])
            .unwrap();
        assert_eq!(inst.call(&mut rec, &b), Ok(Some(Value::Int(7))));
    }

    #[test]
    fn self_calls_and_cycles_are_refused_not_aliased() {
        let (mut inst, mut rec) = setup();
        let e = call(&mut inst, &mut rec, "selfish").unwrap_err();
        assert!(e.contains("called its own callback `use_counter`"), "{e}");
        let e = call(&mut inst, &mut rec, "cycle").unwrap_err();
        assert!(e.contains("module `client` is busy"), "{e}");
        // and everything still works afterwards
        call(&mut inst, &mut rec, "use_counter").unwrap();
    }
}
