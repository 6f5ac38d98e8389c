//! One experiment instance as a state machine: its modules, its overlay
//! core, its share of the scenario, its timers and its output files.
//!
//! Like the overlay core it drives, an [`Instance`] does no socket I/O and
//! reads no clock: time comes in as an argument, datagrams come in through
//! [`Instance::handle_datagrams`] and leave through the core's
//! `poll_transmit`. A driver (real UDP in [`super::process`], or a
//! simulated network) feeds it. This is what makes a simulated run behave
//! exactly like a real one.
//!
//! Poll order after any input: `core_mut().poll_transmit` until `None`,
//! then [`Instance::poll_timeout`]; call [`Instance::handle_timeout`] when it
//! passes. [`Instance::finished`] says when to stop driving it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlab_dispersy::{self as dispersy, Core, MetaId, PeerDirectory};
use peerlab_lang::PeerSpec;
use peerlab_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use peerlab_plugin_api::abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use peerlab_plugin_api::{
    CallArgs, CallbackSpec, HostContext, HostContext_TO, IncomingMessage, Invocation, MessageSpec,
    ModuleInstanceBox, ModuleRoot_Ref, Value_NE,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::record::{Event, Record};

/// Where a scenario command stands in the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// `@!`: when the instance is created.
    Load,
    /// `@@`: after loading, before the barrier.
    Setup,
    /// `@t`: t scenario seconds after the common start.
    At(f64),
}

/// A scenario command resolved against the loaded modules.
#[derive(Debug, Clone)]
pub struct ResolvedCommand {
    pub when: When,
    /// Index into [`Shared::modules`].
    pub module: usize,
    pub callback: String,
    pub args: CallArgs,
    pub peers: PeerSpec,
    /// Where it was written, for error messages (`file:line`).
    pub file: Arc<str>,
    pub line: u32,
}

/// A loaded module: its root (to make instances) and its callback table.
#[derive(Clone)]
pub struct LoadedModule {
    pub name: String,
    pub root: ModuleRoot_Ref,
    pub callbacks: Vec<CallbackSpec>,
}

/// What every instance of a process shares.
pub struct Shared {
    pub modules: Vec<LoadedModule>,
    /// Sorted: load, setup, then the timeline by time (file order kept).
    pub commands: Vec<ResolvedCommand>,
    /// Every config key of the experiment.
    pub config: BTreeMap<String, String>,
    pub instances: u32,
    pub run_seed: u64,
    /// Scenario seconds are multiplied by this to get wall seconds.
    pub time_scale: f64,
    /// Mixed into `isolate_community` ids so no two runs share a community.
    pub run_identity: Vec<u8>,
}

impl Shared {
    /// The index of the first timeline command.
    fn first_timed(&self) -> usize {
        self.commands
            .iter()
            .position(|c| matches!(c.when, When::At(_)))
            .unwrap_or(self.commands.len())
    }
}

/// Derive a 64-bit seed for `purpose` from the run seed and an instance id,
/// so every random choice of a run follows from `--seed`.
pub fn derive_seed(run_seed: u64, instance: u32, purpose: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"peerlab seed v1\0");
    h.update(run_seed.to_be_bytes());
    h.update(instance.to_be_bytes());
    h.update(purpose.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The 32-byte key seed of an instance's member key.
pub fn key_seed(run_seed: u64, instance: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"peerlab member key v1\0");
    h.update(run_seed.to_be_bytes());
    h.update(instance.to_be_bytes());
    h.finalize().into()
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    module: usize,
    token: u64,
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Failed(String),
}

/// One experiment instance. See the module docs.
pub struct Instance {
    id: u32,
    shared: Arc<Shared>,
    core: Core,
    modules: Vec<Option<ModuleInstanceBox>>,
    /// Which module defined each message type.
    message_owner: HashMap<MetaId, usize>,
    /// Next timeline command to consider.
    cursor: usize,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    rng: ChaCha8Rng,
    seed: u64,
    vars: BTreeMap<String, String>,
    record: Record,
    /// Wall-clock instant of scenario time 0, once the barrier released us.
    zero: Option<Instant>,
    directory: Option<Arc<PeerDirectory>>,
    stop_requested: bool,
    failures: Vec<String>,
    next_sample: Option<Instant>,
    reset_pending: bool,
    /// The instant the last input or timeout was handled at.
    now: Instant,
}

impl Instance {
    /// Create the instance: its overlay core and one instance of every module.
    /// Module constructors may already use the host (e.g. define messages).
    pub fn new(
        id: u32,
        shared: Arc<Shared>,
        overlay: dispersy::Config,
        record: Record,
        now: Instant,
    ) -> Self {
        let seed = derive_seed(shared.run_seed, id, "modules");
        let mut inst = Self {
            id,
            core: Core::new(overlay),
            modules: Vec::new(),
            message_owner: HashMap::new(),
            cursor: shared.first_timed(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            vars: BTreeMap::new(),
            record,
            zero: None,
            directory: None,
            stop_requested: false,
            failures: Vec::new(),
            next_sample: None,
            reset_pending: false,
            now,
            shared,
        };
        for index in 0..inst.shared.modules.len() {
            let root = inst.shared.modules[index].root;
            let made = {
                let mut ctx = Ctx {
                    inst: &mut inst,
                    module: index,
                };
                let host = HostContext_TO::from_ptr(&mut ctx, TD_Opaque);
                (root.new_instance())(host)
            };
            match made.into_result() {
                Ok(m) => inst.modules.push(Some(m)),
                Err(e) => {
                    let name = inst.shared.modules[index].name.clone();
                    inst.fail(format!("module `{name}` could not be created: {e}"));
                    inst.modules.push(None);
                }
            }
        }
        inst
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.record
    }

    /// This instance's member key, in py-ipv8's key format.
    pub fn public_key(&self) -> &dispersy::PublicKey {
        self.core.public_key()
    }

    /// Scenario seconds since the start (negative before it).
    pub fn scenario_time(&self, now: Instant) -> f64 {
        match self.zero {
            Some(z) if now >= z => now.duration_since(z).as_secs_f64() / self.shared.time_scale,
            Some(z) => -(z.duration_since(now).as_secs_f64()) / self.shared.time_scale,
            None => 0.0,
        }
    }

    /// Wall seconds since the start, as the output files count time.
    fn wall_t(&self, now: Instant) -> f64 {
        match self.zero {
            Some(z) if now >= z => now.duration_since(z).as_secs_f64(),
            Some(z) => -(z.duration_since(now).as_secs_f64()),
            None => 0.0,
        }
    }

    /// Run the `@!` (load) or `@@` (setup) commands that select this instance.
    pub fn run_phase(&mut self, now: Instant, setup: bool) {
        self.now = now;
        let want = if setup { When::Setup } else { When::Load };
        let indices: Vec<usize> = (0..self.shared.commands.len())
            .filter(|&i| self.shared.commands[i].when == want)
            .collect();
        for i in indices {
            self.fire(i);
        }
        self.deliver_events();
    }

    /// The barrier released us: scenario time 0 is `zero`, these are the
    /// experiment's instances.
    pub fn start(&mut self, now: Instant, zero: Instant, directory: Arc<PeerDirectory>) {
        self.now = now;
        self.zero = Some(zero);
        self.directory = Some(directory);
        self.next_sample = Some(zero.max(now));
        for index in 0..self.modules.len() {
            self.with_module(index, "on_start", |m, host| m.on_start(host));
        }
        self.deliver_events();
    }

    /// Whether the instance is done: `stop` was called, or its last command
    /// ran and nothing else is scheduled for it.
    pub fn finished(&self) -> bool {
        self.stop_requested
    }

    /// How it went (meaningful once finished).
    pub fn outcome(&self) -> Outcome {
        if self.failures.is_empty() {
            Outcome::Finished
        } else {
            Outcome::Failed(self.failures.join("; "))
        }
    }

    /// The next instant `handle_timeout` must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stop_requested {
            return None;
        }
        let command = self.next_command_at();
        let timer = self.timers.peek().map(|Reverse(t)| t.at);
        [command, timer, self.core.poll_timeout(), self.next_sample]
            .into_iter()
            .flatten()
            .min()
    }

    fn next_command_at(&self) -> Option<Instant> {
        let zero = self.zero?;
        self.shared.commands[self.cursor..]
            .iter()
            .find_map(|c| match c.when {
                When::At(t) => Some(zero + scaled(t, self.shared.time_scale)),
                _ => None,
            })
    }

    /// Datagrams arrived.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        self.now = now;
        self.core.handle_batch(now, datagrams);
        self.deliver_events();
    }

    /// The driver fed the core directly (e.g. `UdpDriver::feed`): deliver
    /// what it produced.
    pub fn after_input(&mut self, now: Instant) {
        self.now = now;
        self.deliver_events();
    }

    /// Fire whatever is due at `now`: scenario commands, module timers, the
    /// overlay's timers, the statistics sample.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Some(zero) = self.zero {
            while self.cursor < self.shared.commands.len() && !self.stop_requested {
                let When::At(t) = self.shared.commands[self.cursor].when else {
                    self.cursor += 1;
                    continue;
                };
                if zero + scaled(t, self.shared.time_scale) > now {
                    break;
                }
                let i = self.cursor;
                self.cursor += 1;
                self.fire(i);
                self.deliver_events();
            }
            if self.cursor >= self.shared.commands.len() && !self.stop_requested {
                // The scenario is over for this instance: an implicit `stop`.
                self.stop_requested = true;
            }
        }
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > now || self.stop_requested {
                break;
            }
            let Reverse(t) = self.timers.pop().expect("peeked");
            self.with_module(t.module, "on_timer", |m, host| m.on_timer(host, t.token));
            self.deliver_events();
        }
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
            self.deliver_events();
        }
        if self.next_sample.is_some_and(|t| t <= now) {
            self.sample(now);
            self.next_sample = Some(now + Duration::from_secs(1));
        }
    }

    /// Write one statistics line now.
    pub fn sample(&mut self, now: Instant) {
        let t = self.wall_t(now);
        let reset = std::mem::take(&mut self.reset_pending);
        let counters: Vec<(String, f64)> = self
            .core
            .stats()
            .counters()
            .map(|(k, v)| (k, v as f64))
            .collect();
        self.record.sample(t, reset, counters);
    }

    /// Stop now (end of run, abort): call every module's `on_stop`, write the
    /// last sample and the end event.
    pub fn shut_down(&mut self, now: Instant, status: &str) {
        self.now = now;
        self.stop_requested = true;
        for index in 0..self.modules.len() {
            self.with_module(index, "on_stop", |m, host| m.on_stop(host));
        }
        self.sample(now);
        let t = self.wall_t(now);
        let mut e = Event::new(t, "end");
        e.status = Some(status);
        self.record.event(&e);
        self.record.flush();
    }

    /// Run command `index` if it selects this instance.
    fn fire(&mut self, index: usize) {
        let shared = self.shared.clone();
        let cmd = &shared.commands[index];
        if !cmd.peers.selects(self.id, shared.instances) {
            return;
        }
        let t = self.wall_t(self.now);
        let module_name = &shared.modules[cmd.module].name;
        let mut e = Event::new(t, "command");
        e.callback = Some(&cmd.callback);
        e.module = Some(module_name);
        e.file = Some(&cmd.file);
        e.line = Some(cmd.line);
        self.record.event(&e);
        let result = self.call(cmd.module, &cmd.callback, cmd.args.clone());
        if let Err(err) = result {
            self.fail(format!(
                "{}:{}: `{}` failed: {err}",
                cmd.file, cmd.line, cmd.callback
            ));
        }
    }

    /// Call a callback of module `index` with bound arguments.
    fn call(
        &mut self,
        index: usize,
        callback: &str,
        args: CallArgs,
    ) -> Result<Option<Value_NE>, String> {
        let Some(mut module) = self.modules.get_mut(index).and_then(Option::take) else {
            let name = &self.shared.modules[index].name;
            return Err(format!(
                "module `{name}` is not available (it failed earlier or is already running)"
            ));
        };
        let result = {
            let mut ctx = Ctx {
                inst: self,
                module: index,
            };
            let host = HostContext_TO::from_ptr(&mut ctx, TD_Opaque);
            module.call(host, callback.into(), args)
        };
        self.modules[index] = Some(module);
        result
            .into_result()
            .map(ROption::into_option)
            .map_err(String::from)
    }

    /// Run a hook of module `index`; an error fails the instance.
    fn with_module(
        &mut self,
        index: usize,
        hook: &str,
        f: impl FnOnce(&mut ModuleInstanceBox, peerlab_plugin_api::HostMut<'_>) -> RResult<(), RString>,
    ) {
        let Some(mut module) = self.modules.get_mut(index).and_then(Option::take) else {
            return;
        };
        let result = {
            let mut ctx = Ctx {
                inst: self,
                module: index,
            };
            let host = HostContext_TO::from_ptr(&mut ctx, TD_Opaque);
            f(&mut module, host)
        };
        self.modules[index] = Some(module);
        if let Err(e) = result.into_result() {
            let name = self.shared.modules[index].name.clone();
            self.fail(format!("module `{name}` failed in {hook}: {e}"));
        }
    }

    /// Hand the overlay's events to the modules that defined the messages.
    fn deliver_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            let dispersy::Event::Message(d) = event else {
                continue;
            };
            let Some(&owner) = self.message_owner.get(&d.meta) else {
                continue;
            };
            let message = IncomingMessage {
                name: RString::from(&*d.name),
                sender: u64::from(d.author_instance.or(d.from_instance).unwrap_or(0)),
                author: d
                    .author
                    .map(|k| RVec::from(k.as_bytes().to_vec()))
                    .unwrap_or_default(),
                global_time: d.global_time,
                payload: RVec::from(d.payload),
            };
            self.with_module(owner, "on_message", |m, host| m.on_message(host, message));
        }
    }

    fn fail(&mut self, why: String) {
        self.record.error(&format!("error: {why}"));
        self.failures.push(why);
    }

    fn annotate(&mut self, text: &str) {
        let t = self.wall_t(self.now);
        let mut e = Event::new(t, "annotation");
        e.text = Some(text);
        self.record.event(&e);
    }
}

fn scaled(scenario_secs: f64, scale: f64) -> Duration {
    Duration::from_secs_f64((scenario_secs * scale).max(0.0))
}

fn hexlify(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host context of one call: the instance plus which module is calling.
struct Ctx<'a> {
    inst: &'a mut Instance,
    module: usize,
}

fn err<T>(e: impl std::fmt::Display) -> RResult<T, RString> {
    RResult::RErr(RString::from(e.to_string()))
}

impl Ctx<'_> {
    fn module_name(&self) -> &str {
        &self.inst.shared.modules[self.module].name
    }
}

impl HostContext for Ctx<'_> {
    fn instance_id(&self) -> u64 {
        u64::from(self.inst.id)
    }

    fn instance_count(&self) -> u64 {
        u64::from(self.inst.shared.instances)
    }

    fn config(&self, key: RStr<'_>) -> ROption<RString> {
        self.inst
            .shared
            .config
            .get(key.as_str())
            .map(|v| RString::from(v.as_str()))
            .into()
    }

    fn seed(&self) -> u64 {
        derive_seed(self.inst.seed, self.module as u32, self.module_name())
    }

    fn random_u64(&mut self) -> u64 {
        self.inst.rng.next_u64()
    }

    fn now(&self) -> f64 {
        self.inst.scenario_time(self.inst.now)
    }

    fn print(&mut self, line: RStr<'_>) {
        self.inst.record.print(line.as_str());
    }

    fn log(&mut self, line: RStr<'_>) {
        let name = self.module_name().to_string();
        self.inst.record.error(&format!("{name}: {line}"));
    }

    fn annotate(&mut self, text: RStr<'_>) {
        self.inst.annotate(text.as_str());
    }

    fn stat_add(&mut self, name: RStr<'_>, value: f64) {
        self.inst.record.stat_add(name.as_str(), value);
    }

    fn stat_set(&mut self, name: RStr<'_>, value: f64) {
        self.inst.record.stat_set(name.as_str(), value);
    }

    fn set_timer(&mut self, delay: f64, token: u64) {
        let delay = scaled(delay, self.inst.shared.time_scale);
        self.inst.timer_seq += 1;
        self.inst.timers.push(Reverse(Timer {
            at: self.inst.now + delay,
            seq: self.inst.timer_seq,
            module: self.module,
            token,
        }));
    }

    fn call_module(
        &mut self,
        module: RStr<'_>,
        callback: RStr<'_>,
        args: Invocation,
    ) -> RResult<ROption<Value_NE>, RString> {
        let shared = self.inst.shared.clone();
        let Some(index) = shared
            .modules
            .iter()
            .position(|m| m.name == module.as_str())
        else {
            let names: Vec<&str> = shared.modules.iter().map(|m| m.name.as_str()).collect();
            return err(format!(
                "no module `{module}` is loaded (loaded: {})",
                names.join(", ")
            ));
        };
        if index == self.module {
            return err(format!(
                "module `{module}` cannot call itself through the host"
            ));
        }
        let Some(spec) = shared.modules[index]
            .callbacks
            .iter()
            .find(|c| c.name.as_str() == callback.as_str())
        else {
            return err(format!("module `{module}` has no callback `{callback}`"));
        };
        let bound = match peerlab_plugin_api::bind(spec, &args.to_raw()) {
            Ok(b) => b,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                return err(format!("{module}.{callback}: {}", text.join("; ")));
            }
        };
        self.inst
            .call(index, callback.as_str(), bound)
            .map(ROption::from)
            .map_err(RString::from)
            .into()
    }

    fn set_var(&mut self, name: RStr<'_>, value: RStr<'_>) {
        self.inst.vars.insert(name.into(), value.into());
    }

    fn var(&self, name: RStr<'_>) -> ROption<RString> {
        self.inst
            .vars
            .get(name.as_str())
            .map(|v| RString::from(v.as_str()))
            .into()
    }

    fn stop(&mut self) {
        self.inst.stop_requested = true;
    }

    fn isolate_community(&mut self, name: RStr<'_>) -> RResult<(), RString> {
        let id = dispersy::CommunityId::isolated(name.as_str(), &self.inst.shared.run_identity);
        self.inst.core.set_community(id);
        RResult::ROk(())
    }

    fn set_community_id(&mut self, id: RSlice<'_, u8>) -> RResult<(), RString> {
        let Ok(bytes) = <[u8; 20]>::try_from(id.as_slice()) else {
            return err(format!("a community id has 20 bytes, got {}", id.len()));
        };
        self.inst.core.set_community(dispersy::CommunityId(bytes));
        RResult::ROk(())
    }

    fn start_session(&mut self) -> RResult<(), RString> {
        let now = self.inst.now;
        self.inst.core.start(now);
        RResult::ROk(())
    }

    fn stop_session(&mut self) -> RResult<(), RString> {
        self.inst.core.stop();
        RResult::ROk(())
    }

    fn introduce_peers(&mut self, max_peers: ROption<u64>) -> RResult<(), RString> {
        let Some(dir) = self.inst.directory.clone() else {
            return err(
                "introduce_peers needs the peer table, which arrives at the start: call it at @0 or later, not in @@ or @!",
            );
        };
        self.inst
            .core
            .introduce_from_directory(dir, max_peers.into_option().map(|m| m as usize));
        RResult::ROk(())
    }

    fn set_walker(&mut self, name: RStr<'_>, _value: Value_NE) -> RResult<(), RString> {
        err(format!(
            "walker setting `{name}` cannot be changed at run time yet: set it in the config"
        ))
    }

    fn reset_overlay_statistics(&mut self) -> RResult<(), RString> {
        self.inst.core.reset_statistics();
        self.inst.record.reset_custom();
        self.inst.reset_pending = true;
        RResult::ROk(())
    }

    fn define_message(&mut self, spec: MessageSpec) -> RResult<(), RString> {
        use peerlab_plugin_api::{Authentication, Destination, Distribution};
        let authentication = match spec.authentication {
            Authentication::MEMBER => dispersy::Authentication::Member,
            Authentication::NONE => dispersy::Authentication::None,
            other => return err(format!("unknown authentication policy {}", other.0)),
        };
        let distribution = match spec.distribution {
            Distribution::FULL_SYNC => dispersy::Distribution::FullSync,
            Distribution::DIRECT => dispersy::Distribution::Direct,
            other => return err(format!("unknown distribution policy {}", other.0)),
        };
        let destination = match spec.destination.as_enum() {
            Ok(Destination::Community { fanout }) => {
                dispersy::Destination::Community(*fanout as usize)
            }
            Ok(Destination::Candidate) => dispersy::Destination::Candidate,
            _ => return err("unknown destination policy (plugin built against a newer api?)"),
        };
        let meta = dispersy::MetaMessage::new(
            spec.name.as_str(),
            authentication,
            distribution,
            destination,
        );
        match self.inst.core.define_message(meta) {
            Ok(id) => {
                self.inst.message_owner.insert(id, self.module);
                RResult::ROk(())
            }
            Err(e) => err(e),
        }
    }

    fn send(
        &mut self,
        message: RStr<'_>,
        payload: RVec<u8>,
        to: RVec<u64>,
    ) -> RResult<(), RString> {
        let Some(meta) = self.inst.core.meta_id(message.as_str()) else {
            return err(format!(
                "message type `{message}` is not defined: call define_message first"
            ));
        };
        let mut addrs = Vec::with_capacity(to.len());
        for &id in to.iter() {
            match u32::try_from(id)
                .ok()
                .and_then(|i| self.inst.core.instance_addr(i))
            {
                Some(a) => addrs.push(a),
                None => {
                    return err(format!(
                        "cannot send `{message}` to instance {id}: it is not in the peer table (introduce_peers first)"
                    ));
                }
            }
        }
        match self.inst.core.send(meta, &payload, &addrs) {
            Ok(_) => RResult::ROk(()),
            Err(e) => err(e),
        }
    }

    fn known_peers(&self) -> RVec<u64> {
        let Some(dir) = self.inst.core_dir() else {
            return RVec::new();
        };
        self.inst
            .core
            .peer_addrs()
            .filter_map(|a| dir.index_of_addr(&a))
            .map(|i| u64::from(dir.entries()[i as usize].instance_id))
            .collect()
    }

    fn public_key(&self) -> RVec<u8> {
        RVec::from(self.inst.core.public_key().as_bytes().to_vec())
    }
}

impl Instance {
    fn core_dir(&self) -> Option<&Arc<PeerDirectory>> {
        self.directory.as_ref()
    }

    /// The public key as hex, for the sync server's peer table.
    pub fn public_key_hex(&self) -> String {
        hexlify(self.core.public_key().as_bytes())
    }
}
