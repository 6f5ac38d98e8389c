//! Modules across the boundary: the root module a plugin exports
//! ([`ModuleRoot`]), the per-instance trait object ([`ModuleInstance`]), the
//! run outputs a verdict hook reads ([`RunOutputs`]), and the Rust-side
//! [`Module`] trait with the adapter that turns it into all of these while
//! catching every panic on the plugin side.
//!
//! Invariant: no panic unwinds out of any function this module hands to the
//! host; each becomes an error naming the module, the entry point and the
//! panic message.

// abi_stable's generated names (`ModuleRoot_Ref`, `ModuleInstance_TO`) are kept as they are.
#![allow(non_camel_case_types)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings};

use crate::bench::{Bench, BenchSpec_Ref};
use crate::host::{Host, HostMut};
use crate::metrics::MetricSpec;
use crate::overlay::{IncomingMessage, v1};
use crate::spec::{CallArgs, CallbackSpec};
use crate::value::{Value, Value_NE};

/// One module instance, owned by one experiment instance.
///
/// Methods are only ever appended (after `last_prefix_field`), each with a
/// default body: a newer host calling it on an instance from a plugin built
/// against an older api gets that default (as `on_start` shows).
#[sabi_trait]
pub trait ModuleInstance: Send {
    /// Run the callback `callback` with arguments already bound and
    /// converted against its [`CallbackSpec`]. May return a value (for
    /// module-to-module calls).
    fn call(
        &mut self,
        host: HostMut<'_>,
        callback: RStr<'_>,
        args: CallArgs,
    ) -> RResult<ROption<Value_NE>, RString>;
    /// A timer set with `set_timer(.., token)` fired.
    fn on_timer(&mut self, host: HostMut<'_>, token: u64) -> RResult<(), RString>;
    /// A message of a type this module defined arrived (as plugin-api 1.0
    /// to 1.2 lay it out; a 1.3 host calls
    /// [`on_message_with_author`](Self::on_message_with_author) instead).
    fn on_message(
        &mut self,
        host: HostMut<'_>,
        message: v1::IncomingMessage,
    ) -> RResult<(), RString>;
    /// The instance is stopping.
    #[sabi(last_prefix_field)]
    fn on_stop(&mut self, host: HostMut<'_>) -> RResult<(), RString>;
    /// Since 1.1: the experiment started (scenario time 0, after the
    /// barrier). Plugins built against 1.0 get this default.
    fn on_start(&mut self, _host: HostMut<'_>) -> RResult<(), RString> {
        RResult::ROk(())
    }
    /// Since 1.3: a message of a type this module defined arrived, with its
    /// verified author instance. Plugins built against 1.0 to 1.2 get this
    /// default: the message as they know it, through `on_message`.
    fn on_message_with_author(
        &mut self,
        host: HostMut<'_>,
        message: IncomingMessage,
    ) -> RResult<(), RString> {
        self.on_message(host, message.into())
    }
}

/// An owned module instance.
pub type ModuleInstanceBox = ModuleInstance_TO<'static, RBox<()>>;

/// What an instance printed and how it ended, for the verdict hook
/// ([`ModuleRoot::check`]). Implemented by the host over the run folder.
#[sabi_trait]
pub trait RunOutputs {
    /// The ids of the experiment's instances, ascending.
    fn instance_ids(&self) -> RVec<u64>;
    /// Every line the instance printed to its output, in order.
    fn lines(&self, instance: u64) -> RVec<RString>;
    /// Whether the instance ended cleanly (exit status 0, no error).
    fn succeeded(&self, instance: u64) -> bool;
    /// How the instance ended, in words (`exit status 0`, `killed by signal 9`,
    /// `timed out`).
    fn status(&self, instance: u64) -> RString;
    /// An experiment config key.
    fn config(&self, key: RStr<'_>) -> ROption<RString>;
    /// All config keys that are set.
    #[sabi(last_prefix_field)]
    fn config_keys(&self) -> RVec<RString>;
    /// Since 1.5: whether the instance was online at its end (`false`:
    /// away after `leave` or a churn departure, so it could not take part
    /// at the end; a verdict about the end judges it apart). Hosts before
    /// 1.5 know no churn: every instance was online.
    fn online_at_end(&self, _instance: u64) -> bool {
        true
    }
}

/// A borrowed [`RunOutputs`] object.
pub type RunOutputsRef<'a> = RunOutputs_TO<'a, RRef<'a, ()>>;

/// A named pass/fail judgement a module makes about a run.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What was checked, e.g. `totals agree`.
    pub name: RString,
    /// Whether it held.
    pub passed: bool,
    /// Why, in one line.
    pub message: RString,
}

impl Verdict {
    /// A passing verdict.
    pub fn pass(name: &str, message: impl Into<String>) -> Self {
        Verdict {
            name: name.into(),
            passed: true,
            message: RString::from(message.into()),
        }
    }

    /// A failing verdict.
    pub fn fail(name: &str, message: impl Into<String>) -> Self {
        Verdict {
            passed: false,
            ..Verdict::pass(name, message)
        }
    }
}

/// The root module every plugin exports (an abi_stable prefix type).
///
/// Fields are only ever appended after `last_prefix_field`; the host reads
/// newer fields as optional.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModuleRoot_Ref)))]
pub struct ModuleRoot {
    /// The module's name (`benaloh`), used in `&module` and `module.callback`.
    pub name: RStr<'static>,
    /// The module's own version.
    pub version: RStr<'static>,
    /// The plugin-api version it was built against.
    pub api_version: RStr<'static>,
    /// The callback table.
    pub describe: extern "C" fn() -> RResult<RVec<CallbackSpec>, RString>,
    /// Make the instance for one experiment instance.
    pub new_instance: extern "C" fn(host: HostMut<'_>) -> RResult<ModuleInstanceBox, RString>,
    /// The verdict hook, called after a run with every instance's outputs.
    #[sabi(last_prefix_field)]
    pub check: extern "C" fn(outputs: RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString>,
    /// Since 1.1: one line about the module, for `peerlab modules`
    /// (`None` from the accessor for plugins built against 1.0).
    pub about: RStr<'static>,
    /// Since 1.2: the experiment-config keys the module reads, so
    /// `peerlab check` knows them (`None` from the accessor before 1.2).
    pub config_keys: RSlice<'static, ConfigKey>,
    /// Since 1.4: the metrics the module records, so the host checks names
    /// and records the declarations in `run.json` (`None` from the
    /// accessor before 1.4).
    pub metrics: RSlice<'static, MetricSpec>,
    /// Since 1.5: the benchmark workload the module declares, for `peerlab
    /// bench <module>` (`RNone`: none; `None` from the accessor before 1.5).
    pub bench: ROption<BenchSpec_Ref>,
}

/// An experiment-config key a module reads (since 1.2).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct ConfigKey {
    /// The key, as written in a `.conf` (`modulus`).
    pub name: RStr<'static>,
    /// One line: what it means and its default.
    pub help: RStr<'static>,
}

impl RootModule for ModuleRoot_Ref {
    declare_root_module_statics! {ModuleRoot_Ref}
    const BASE_NAME: &'static str = "peerlab_module";
    const NAME: &'static str = "peerlab plugin-api";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The plugin-api version this crate is (and a plugin was built against).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A Rust read-only view of a run's outputs, for [`Module::check`].
pub struct Outputs<'a> {
    raw: RunOutputsRef<'a>,
}

impl<'a> Outputs<'a> {
    /// Wrap the ABI object.
    pub fn new(raw: RunOutputsRef<'a>) -> Self {
        Outputs { raw }
    }

    /// Wrap any Rust implementation.
    pub fn from_impl<T: RunOutputs + 'a>(implementation: &'a T) -> Self {
        Outputs::new(RunOutputs_TO::from_ptr(implementation, TD_Opaque))
    }

    /// The instance ids, ascending.
    pub fn instance_ids(&self) -> Vec<u64> {
        self.raw.instance_ids().into_vec()
    }

    /// The lines an instance printed.
    pub fn lines(&self, instance: u64) -> Vec<String> {
        self.raw
            .lines(instance)
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Whether the instance ended cleanly.
    pub fn succeeded(&self, instance: u64) -> bool {
        self.raw.succeeded(instance)
    }

    /// How the instance ended, in words.
    pub fn status(&self, instance: u64) -> String {
        self.raw.status(instance).into()
    }

    /// A config key.
    pub fn config(&self, key: &str) -> Option<String> {
        self.raw.config(key.into()).into_option().map(String::from)
    }

    /// Whether the instance was online at its end (since 1.5; see
    /// [`RunOutputs::online_at_end`]).
    pub fn online_at_end(&self, instance: u64) -> bool {
        self.raw.online_at_end(instance)
    }

    /// All config keys that are set.
    pub fn config_keys(&self) -> Vec<String> {
        self.raw
            .config_keys()
            .into_iter()
            .map(String::from)
            .collect()
    }
}

/// A module written in plain Rust. Usually implemented by the
/// [`macro@crate::module`] attribute; [`crate::export_module!`] turns it into a
/// plugin.
pub trait Module: Send + Sized + 'static {
    /// The module's name (`&module NAME`).
    const NAME: &'static str;
    /// The module's version.
    const VERSION: &'static str;
    /// One line about the module (since 1.1).
    const ABOUT: &'static str = "";
    /// The experiment-config keys the module reads, as (name, help) (since 1.2).
    const CONFIG_KEYS: &'static [(&'static str, &'static str)] = &[];
    /// The metrics the module records (since 1.4).
    const METRICS: &'static [MetricSpec] = &[];
    /// The benchmark workload `peerlab bench <module>` runs (since 1.5).
    const BENCH: Option<Bench> = None;
    /// The callback table.
    fn describe() -> Vec<CallbackSpec>;
    /// Make the instance for one experiment instance.
    fn create(host: &mut Host<'_>) -> Result<Self, String>;
    /// Run a callback with bound, converted arguments.
    fn call(
        &mut self,
        host: &mut Host<'_>,
        callback: &str,
        args: &CallArgs,
    ) -> Result<Option<Value>, String>;
    /// A timer fired.
    fn on_timer(&mut self, _host: &mut Host<'_>, _token: u64) -> Result<(), String> {
        Ok(())
    }
    /// A message of a type this module defined arrived.
    fn on_message(
        &mut self,
        _host: &mut Host<'_>,
        _message: &IncomingMessage,
    ) -> Result<(), String> {
        Ok(())
    }
    /// The instance is stopping.
    fn on_stop(&mut self, _host: &mut Host<'_>) -> Result<(), String> {
        Ok(())
    }
    /// The experiment started (since 1.1).
    fn on_start(&mut self, _host: &mut Host<'_>) -> Result<(), String> {
        Ok(())
    }
    /// The verdict hook: judge a finished run from its outputs.
    fn check(_outputs: &Outputs<'_>) -> Result<Vec<Verdict>, String> {
        Ok(Vec::new())
    }
}

/// The panic payload as text.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

thread_local! {
    /// Where the last panic on this thread happened (`file:line:column`).
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Chain a panic hook (once per copy of std: each plugin has its own) that
/// notes where a panic happened, so [`guard`] can name the line; the hook
/// that was there before still runs (it prints the message and backtrace
/// to stderr).
fn note_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                let at = format!("{}:{}:{}", l.file(), l.line(), l.column());
                let _ = PANIC_AT.try_with(|p| p.replace(Some(at)));
            }
            previous(info);
        }));
    });
}

/// Run `f`, turning a panic into the error
/// `module \`NAME\` panicked in WHAT: MESSAGE (at FILE:LINE:COLUMN)`.
pub fn guard<T>(
    module: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    note_panic_locations();
    let _ = PANIC_AT.try_with(|p| p.take());
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let at = PANIC_AT
                .try_with(|p| p.take())
                .ok()
                .flatten()
                .map(|at| format!(" (at {at})"))
                .unwrap_or_default();
            Err(format!(
                "module `{module}` panicked in {what}: {}{at}",
                panic_message(payload.as_ref())
            ))
        }
    }
}

/// Adapts a [`Module`] to [`ModuleInstance`], catching panics.
pub struct Adapter<M: Module> {
    inner: Option<M>,
}

impl<M: Module> Adapter<M> {
    fn with<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut M) -> Result<T, String>,
    ) -> RResult<T, RString> {
        let Some(inner) = self.inner.as_mut() else {
            return RResult::RErr(
                format!("module `{}` is unusable after an earlier panic", M::NAME).into(),
            );
        };
        let r = guard(M::NAME, what, || f(inner));
        if r.as_ref()
            .is_err_and(|e| e.starts_with(&format!("module `{}` panicked", M::NAME)))
        {
            // state may be half-updated: refuse further calls rather than guess
            self.inner = None;
        }
        r.map_err(RString::from).into()
    }
}

impl<M: Module> ModuleInstance for Adapter<M> {
    fn call(
        &mut self,
        host: HostMut<'_>,
        callback: RStr<'_>,
        args: CallArgs,
    ) -> RResult<ROption<Value_NE>, RString> {
        let what = format!("callback `{callback}`");
        self.with(&what, |m| {
            let mut host = Host::new(host);
            m.call(&mut host, callback.as_str(), &args)
                .map(|v| v.map(Value::into_ne).into())
        })
    }

    fn on_timer(&mut self, host: HostMut<'_>, token: u64) -> RResult<(), RString> {
        self.with("on_timer", |m| m.on_timer(&mut Host::new(host), token))
    }

    fn on_message(
        &mut self,
        host: HostMut<'_>,
        message: v1::IncomingMessage,
    ) -> RResult<(), RString> {
        self.on_message_with_author(host, message.into())
    }

    fn on_message_with_author(
        &mut self,
        host: HostMut<'_>,
        message: IncomingMessage,
    ) -> RResult<(), RString> {
        let what = format!("on_message `{}`", message.name);
        self.with(&what, |m| m.on_message(&mut Host::new(host), &message))
    }

    fn on_stop(&mut self, host: HostMut<'_>) -> RResult<(), RString> {
        self.with("on_stop", |m| m.on_stop(&mut Host::new(host)))
    }

    fn on_start(&mut self, host: HostMut<'_>) -> RResult<(), RString> {
        self.with("on_start", |m| m.on_start(&mut Host::new(host)))
    }
}

/// Make a boxed instance of `M` (used by built-in modules and tests too).
pub fn new_instance<M: Module>(host: HostMut<'_>) -> Result<ModuleInstanceBox, String> {
    let m = guard(M::NAME, "its constructor", || {
        M::create(&mut Host::new(host))
    })?;
    Ok(ModuleInstance_TO::from_value(
        Adapter { inner: Some(m) },
        TD_Opaque,
    ))
}

extern "C" fn describe_shim<M: Module>() -> RResult<RVec<CallbackSpec>, RString> {
    guard(M::NAME, "describe", || Ok(M::describe()))
        .map(RVec::from)
        .map_err(RString::from)
        .into()
}

extern "C" fn new_instance_shim<M: Module>(
    host: HostMut<'_>,
) -> RResult<ModuleInstanceBox, RString> {
    new_instance::<M>(host).map_err(RString::from).into()
}

extern "C" fn check_shim<M: Module>(outputs: RunOutputsRef<'_>) -> RResult<RVec<Verdict>, RString> {
    let outputs = Outputs::new(outputs);
    guard(M::NAME, "check", || M::check(&outputs))
        .map(RVec::from)
        .map_err(RString::from)
        .into()
}

/// Build the root module of `M` (leaked once; libraries are never unloaded).
pub fn root_module_for<M: Module>() -> ModuleRoot_Ref {
    ModuleRoot {
        name: RStr::from_str(M::NAME),
        version: RStr::from_str(M::VERSION),
        api_version: RStr::from_str(API_VERSION),
        describe: describe_shim::<M>,
        new_instance: new_instance_shim::<M>,
        check: check_shim::<M>,
        about: RStr::from_str(M::ABOUT),
        config_keys: RSlice::from_slice(Box::leak(
            M::CONFIG_KEYS
                .iter()
                .map(|&(name, help)| ConfigKey {
                    name: RStr::from_str(name),
                    help: RStr::from_str(help),
                })
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )),
        metrics: RSlice::from_slice(M::METRICS),
        bench: M::BENCH.map(|b| b.to_spec()).into(),
    }
    .leak_into_prefix()
}
