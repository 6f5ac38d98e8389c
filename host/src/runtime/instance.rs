//! One experiment instance as a state machine: its modules, its overlay
//! core, its share of the scenario, its timers and its output files.
//!
//! Like the overlay core it drives, an [`Instance`] does no socket I/O and
//! reads no clock: time comes in as an argument, datagrams reach the core
//! through the driver and the instance is told with
//! [`Instance::after_input`]; datagrams leave through the core's
//! `poll_transmit`. A driver (real UDP in [`super::process`], or a
//! simulated network) feeds it. This is what lets a simulated run behave
//! exactly like a real one.
//!
//! Poll order after any input: `core_mut().poll_transmit` until `None`,
//! then [`Instance::poll_timeout`]; call [`Instance::handle_timeout`] when it
//! passes. [`Instance::finished`] says when to stop driving it.
//!
//! Module dispatch (host contexts, module-to-module calls) is
//! [`crate::modules::Instances`]; this file implements the services behind
//! it ([`Services`]) over the overlay core and the instance's records. The
//! overlay services are a thin adapter: what each means for the core is
//! `peerlab_dispersy::module`'s; they stay here because they need the
//! instance (its core, the peer table it got at the barrier, the time
//! scale, which module defined which message, its records).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlab_dispersy::{self as dispersy, MetaId, OverlayCore, PeerDirectory};
use peerlab_lang::{Command, PeerSpec, Phase};
use peerlab_plugin_api::{MessageSpec, Value};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use peerlab_run::schema::event_kind;
use peerlab_run::{EndStatus, EventLine};

use super::record::Record;
use crate::modules::{BoundCall, Instances, Registry, Services};

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

/// The two phases an instance runs before the barrier, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyPhase {
    /// `@!`: when the instance is created.
    Load,
    /// `@@`: after loading, before the barrier.
    Setup,
}

/// A scenario command, bound to its module and arguments.
#[derive(Debug, Clone)]
pub struct ScheduledCall {
    pub when: When,
    pub call: BoundCall,
    pub peers: PeerSpec,
    /// Where it was written, for error messages (`file:line`).
    pub file: Arc<str>,
    pub line: u32,
}

impl ScheduledCall {
    pub fn new(cmd: &Command, call: BoundCall) -> Self {
        let when = match cmd.phase {
            Phase::Load => When::Load,
            Phase::Setup => When::Setup,
            other => When::At(other.seconds().unwrap_or(0.0)),
        };
        Self {
            when,
            call,
            peers: cmd.peers.clone(),
            file: cmd.loc.file.clone(),
            line: cmd.loc.line,
        }
    }
}

/// What every instance of a process shares.
pub struct Shared {
    pub registry: Arc<Registry>,
    /// Sorted: load, setup, then the timeline by time (file order kept).
    pub commands: Vec<ScheduledCall>,
    /// Every config key of the experiment.
    pub config: BTreeMap<String, String>,
    pub instances: u32,
    pub run_seed: u64,
    /// Scenario seconds are multiplied by this to get wall seconds.
    pub time_scale: f64,
    /// Mixed into `isolate_community` ids so no two runs share a community,
    /// and into the member keys. For a run over a network it is the run
    /// token, which is in no file of the run folder (instances get it from
    /// the environment), so nobody can rebuild a member's key from
    /// `run.json`; a simulated run derives it from the seed, so it repeats.
    pub run_identity: Vec<u8>,
    /// Signed packets already verified by some instance of this process:
    /// the others accept identical bytes without verifying again (see
    /// `peerlab_dispersy::pool` for what that means for CPU figures).
    pub pool: Option<Arc<peerlab_dispersy::SharedPool>>,
    /// Overlay settings from the experiment config.
    pub overlay: OverlayTuning,
}

/// Overlay settings an experiment may change through config keys (the
/// `dispersy` module declares them); `None` keeps the overlay's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OverlayTuning {
    /// `sync_interval`: scenario time between catch-up sync requests (default 1 s).
    pub sync_interval: Option<Duration>,
    /// `sync_response_limit`: most stored messages sent in answer to one
    /// sync request (default 32).
    pub sync_response_limit: Option<usize>,
    /// `drop_unknown_authors`: drop signed messages whose key is not in the
    /// run's peer table (default on: every peer of a run comes from it).
    pub drop_unknown_authors: Option<bool>,
    /// `max_messages_per_author`: most FullSync messages stored per author
    /// (default 10,000).
    pub max_messages_per_author: Option<usize>,
}

impl OverlayTuning {
    /// The config keys read here (the `dispersy` module declares them).
    pub const KEYS: [&'static str; 4] = [
        "sync_interval",
        "sync_response_limit",
        "drop_unknown_authors",
        "max_messages_per_author",
    ];

    /// Read the keys from the experiment config; a bad value is an error
    /// naming the key.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut tuning = Self::default();
        if let Some(v) = config.get("sync_interval") {
            let d = peerlab_lang::value::parse_duration(v)
                .map_err(|e| format!("config key `sync_interval` = {v:?}: {e}"))?;
            if d.is_zero() || d > Duration::from_secs(24 * 3600) {
                return Err(format!(
                    "config key `sync_interval` = {v:?}: give a time above 0 and at most a day, e.g. 1s or 500ms"
                ));
            }
            tuning.sync_interval = Some(d);
        }
        if let Some(v) = config.get("sync_response_limit") {
            let n = peerlab_lang::value::parse_int(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    format!(
                        "config key `sync_response_limit` = {v:?}: give a number of messages from 1 to 100000"
                    )
                })?;
            tuning.sync_response_limit = Some(n);
        }
        if let Some(v) = config.get("drop_unknown_authors") {
            let b = peerlab_lang::value::parse_bool(v).map_err(|_| {
                format!("config key `drop_unknown_authors` = {v:?}: give true or false")
            })?;
            tuning.drop_unknown_authors = Some(b);
        }
        if let Some(v) = config.get("max_messages_per_author") {
            let n = peerlab_lang::value::parse_int(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=dispersy::MAX_MESSAGES_PER_AUTHOR).contains(n))
                .ok_or_else(|| {
                    format!(
                        "config key `max_messages_per_author` = {v:?}: give a number of messages from 1 to {}",
                        dispersy::MAX_MESSAGES_PER_AUTHOR
                    )
                })?;
            tuning.max_messages_per_author = Some(n);
        }
        Ok(tuning)
    }
}

impl Shared {
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

/// Overlay timers are scaled with the scenario but never below this, so a
/// strongly compressed run does not spend its time walking.
const MIN_INTERVAL: Duration = Duration::from_millis(20);

/// The overlay settings of instance `id` at `addr`: its key and RNG from
/// the run seed, its walk and sync timers scaled with the scenario (every
/// driver uses this, so real and simulated runs behave alike).
pub fn overlay_config(
    shared: &Shared,
    id: u32,
    addr: std::net::SocketAddr,
    pool: Option<Arc<peerlab_dispersy::SharedPool>>,
) -> dispersy::Config {
    let mut cfg = dispersy::Config::new(
        key_seed(&shared.run_identity, shared.run_seed, id),
        derive_seed(shared.run_seed, id, "overlay"),
        addr,
    );
    if let Some(d) = shared.overlay.sync_interval {
        cfg.sync_interval = d;
    }
    if let Some(n) = shared.overlay.sync_response_limit {
        cfg.sync_response_limit = n;
    }
    // Every peer of a run comes from the sync server's table, so a key
    // outside it is a forgery unless the experiment lets outsiders in.
    cfg.drop_unknown_authors = shared.overlay.drop_unknown_authors.unwrap_or(true);
    if let Some(n) = shared.overlay.max_messages_per_author {
        cfg.max_messages_per_author = n;
    }
    cfg.walk_interval = scaled_interval(cfg.walk_interval, shared.time_scale);
    cfg.sync_interval = scaled_interval(cfg.sync_interval, shared.time_scale);
    cfg.pool = pool;
    cfg
}

/// An overlay interval in wall time: scaled, never below [`MIN_INTERVAL`].
fn scaled_interval(d: Duration, scale: f64) -> Duration {
    scaled(d.as_secs_f64(), scale).max(MIN_INTERVAL)
}

/// The 32-byte seed of an instance's member key: from the run's secret
/// identity (the run token; see [`Shared::run_identity`]), the seed and the
/// instance id. The seed alone, which `run.json` holds, is not enough.
pub fn key_seed(run_identity: &[u8], run_seed: u64, instance: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"peerlab member key v2\0");
    h.update((run_identity.len() as u64).to_be_bytes());
    h.update(run_identity);
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

/// `on_message` failures recorded one by one before only every 2^k-th is.
const MESSAGE_FAILURES_RECORDED: u64 = 10;

/// What the network does with one outgoing datagram of this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Lost (a fault: loss or a partition).
    Drop,
    /// Sent after this extra delay (zero: at once).
    After(Duration),
}

/// Network conditions applied to this instance's outgoing traffic
/// (`set_network`, `partition`); seeded, so a run repeats exactly.
#[derive(Debug, Clone)]
pub struct NetConditions {
    pub loss: f64,
    pub delay: Duration,
    pub jitter: Duration,
    /// Groups of instance ids that can reach each other; instances in no
    /// group form one more group.
    pub partition: Option<Arc<Vec<peerlab_lang::IdSet>>>,
}

impl Default for NetConditions {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            partition: None,
        }
    }
}

impl NetConditions {
    /// No loss, no delay, no partition.
    pub fn is_clean(&self) -> bool {
        self.loss == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.partition.is_none()
    }

    fn group_of(&self, id: u32) -> Option<usize> {
        let groups = self.partition.as_ref()?;
        Some(
            groups
                .iter()
                .position(|g| g.contains(id))
                .unwrap_or(groups.len()),
        )
    }
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Failed(String),
    /// The scenario's `crash` stopped it, without a goodbye.
    Crashed,
}

impl Outcome {
    /// How it is recorded (the end event, the end report to the runner,
    /// `summary.json`): its status and why. The only mapping of an
    /// instance's outcome to a status.
    pub fn status(&self) -> (EndStatus, Option<String>) {
        match self {
            Outcome::Finished => (EndStatus::Finished, None),
            Outcome::Failed(why) => (EndStatus::Failed, Some(why.clone())),
            Outcome::Crashed => (
                EndStatus::Crashed,
                Some("crashed by the scenario's `crash` command".to_string()),
            ),
        }
    }
}

/// Everything of an instance but its module instances: what the modules'
/// host services act on.
struct State {
    id: u32,
    shared: Arc<Shared>,
    core: OverlayCore,
    /// Which module defined each message type.
    message_owner: HashMap<MetaId, usize>,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    rng: ChaCha8Rng,
    seed: u64,
    vars: BTreeMap<String, String>,
    record: Record,
    /// Where the scenario command running now was written (`file`, `line`),
    /// for the in-flight record.
    command: Option<(Arc<str>, u32)>,
    /// Wall-clock instant of scenario time 0, once the barrier released us.
    zero: Option<Instant>,
    directory: Option<Arc<PeerDirectory>>,
    stop_requested: bool,
    reset_pending: bool,
    failures: Vec<String>,
    /// Calls a module refused because it panicked earlier: counted, not
    /// repeated after the panic that caused them.
    refused_after_panic: usize,
    /// `on_message` failures so far (the first few are recorded, then one
    /// line each time the count doubles: a flood of bad messages must not
    /// flood the `.err` file or the summary).
    message_failures: u64,
    /// The instant the current input or timeout is handled at.
    now: Instant,
    net: NetConditions,
    net_rng: ChaCha8Rng,
    crashed: bool,
}

/// One experiment instance. See the module docs.
pub struct Instance {
    state: State,
    modules: Option<Instances>,
    /// Next timeline command to consider.
    cursor: usize,
    /// Scenario commands run on this instance so far.
    fired: u64,
    next_sample: Option<Instant>,
}

impl Instance {
    /// Create the instance: its overlay core and one instance of every module
    /// (module constructors may already use the host, e.g. to define messages).
    pub fn new(
        id: u32,
        shared: Arc<Shared>,
        overlay: dispersy::Config,
        record: Record,
        now: Instant,
    ) -> Self {
        let seed = derive_seed(shared.run_seed, id, "modules");
        let mut state = State {
            id,
            core: OverlayCore::new(overlay),
            message_owner: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            vars: BTreeMap::new(),
            record,
            zero: None,
            directory: None,
            stop_requested: false,
            reset_pending: false,
            failures: Vec::new(),
            command: None,
            refused_after_panic: 0,
            message_failures: 0,
            now,
            net: NetConditions::default(),
            crashed: false,
            net_rng: ChaCha8Rng::seed_from_u64(derive_seed(shared.run_seed, id, "network")),
            shared: shared.clone(),
        };
        let modules = match Instances::new(shared.registry.clone(), &mut state) {
            Ok(m) => Some(m),
            Err(e) => {
                state.fail(format!("cannot create the modules: {e}"));
                state.stop_requested = true;
                None
            }
        };
        Self {
            cursor: shared.first_timed(),
            fired: 0,
            state,
            modules,
            next_sample: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.state.id
    }

    pub fn core(&self) -> &OverlayCore {
        &self.state.core
    }

    pub fn core_mut(&mut self) -> &mut OverlayCore {
        &mut self.state.core
    }

    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.state.record
    }

    /// This instance's member key as hex, for the sync server's peer table.
    pub fn public_key_hex(&self) -> String {
        peerlab_dispersy::crypto::hex(self.state.core.public_key().as_bytes())
    }

    /// What the network does with a datagram this instance sends to `dest`.
    /// A dropped datagram is counted as `drop/network_fault`.
    pub fn route(&mut self, dest: std::net::SocketAddr) -> Route {
        let route = self.route_inner(dest);
        if route == Route::Drop {
            self.state.core.count_fault_drop();
        }
        route
    }

    fn route_inner(&mut self, dest: std::net::SocketAddr) -> Route {
        let net = &self.state.net;
        if net.partition.is_some() {
            let dest_id = self.state.directory.as_ref().and_then(|d| {
                d.index_of_addr(&dest)
                    .map(|i| d.entries()[i as usize].instance_id)
            });
            if let Some(dest_id) = dest_id
                && net.group_of(dest_id) != net.group_of(self.state.id)
            {
                return Route::Drop;
            }
        }
        if net.loss > 0.0 && self.state.net_rng.random::<f64>() < net.loss {
            return Route::Drop;
        }
        let jitter = if net.jitter.is_zero() {
            Duration::ZERO
        } else {
            net.jitter.mul_f64(self.state.net_rng.random::<f64>())
        };
        Route::After(net.delay + jitter)
    }

    /// The network conditions now in force.
    pub fn net_conditions(&self) -> &NetConditions {
        &self.state.net
    }

    /// Run the `@!` (load) or `@@` (setup) commands that select this instance.
    pub fn run_phase(&mut self, now: Instant, phase: EarlyPhase) {
        self.state.now = now;
        let want = match phase {
            EarlyPhase::Load => When::Load,
            EarlyPhase::Setup => When::Setup,
        };
        let shared = self.state.shared.clone();
        for (i, c) in shared.commands.iter().enumerate() {
            if c.when == want {
                self.fire(i);
            }
        }
        self.deliver_events();
    }

    /// The barrier released us: scenario time 0 is `zero`; `directory` holds
    /// every instance of the experiment.
    pub fn start(&mut self, now: Instant, zero: Instant, directory: Arc<PeerDirectory>) {
        self.state.now = now;
        self.state.zero = Some(zero);
        // Authors are recognised from now on, before introduce_peers.
        self.state.core.set_directory(directory.clone());
        self.state.directory = Some(directory);
        self.next_sample = Some(zero.max(now));
        if let Some(m) = self.modules.as_mut() {
            for e in m.on_start(&mut self.state) {
                self.state.fail(e);
            }
        }
        self.deliver_events();
    }

    /// Scenario commands this instance has run so far.
    pub fn commands_fired(&self) -> u64 {
        self.fired
    }

    /// Whether the instance is done: `stop` was called, or its scenario ran out.
    pub fn finished(&self) -> bool {
        self.state.stop_requested
    }

    /// Whether the scenario crashed it: drop it without `shut_down`.
    pub fn crashed(&self) -> bool {
        self.state.crashed
    }

    /// How it went (meaningful once finished).
    pub fn outcome(&self) -> Outcome {
        if self.state.crashed {
            Outcome::Crashed
        } else if self.state.failures.is_empty() {
            Outcome::Finished
        } else {
            let mut why = self.state.failures.join("; ");
            match self.state.refused_after_panic {
                0 => {}
                1 => {
                    why.push_str("; 1 later call refused (the module is unusable after its panic)")
                }
                n => why.push_str(&format!(
                    "; {n} later calls refused (the module is unusable after its panic)"
                )),
            }
            Outcome::Failed(why)
        }
    }

    /// `outcome`, failed if some of the instance's output could not be
    /// written (a full disk): its files are incomplete, the end report
    /// says which and how much.
    pub fn with_losses(&self, outcome: Outcome) -> Outcome {
        let Some(lost) = self.state.record.losses_text() else {
            return outcome;
        };
        match outcome {
            Outcome::Finished => Outcome::Failed(lost),
            Outcome::Failed(why) => Outcome::Failed(format!("{why}; {lost}")),
            Outcome::Crashed => Outcome::Crashed,
        }
    }

    /// The next instant `handle_timeout` must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state.stop_requested {
            return None;
        }
        let command = self.next_command_at();
        let timer = self.state.timers.peek().map(|Reverse(t)| t.at);
        [
            command,
            timer,
            self.state.core.poll_timeout(),
            self.next_sample,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn next_command_at(&self) -> Option<Instant> {
        let zero = self.state.zero?;
        let shared = &self.state.shared;
        shared.commands[self.cursor..]
            .iter()
            .find_map(|c| match c.when {
                When::At(t) => Some(zero + scaled(t, shared.time_scale)),
                _ => None,
            })
    }

    /// Datagrams arrived (a driver that does not feed the core itself).
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (std::net::SocketAddr, &'a [u8])>,
    ) {
        self.state.now = now;
        self.state.core.handle_batch(now, datagrams);
        self.deliver_events();
    }

    /// The driver fed the core directly (e.g. `UdpDriver::feed`): deliver
    /// what it produced.
    pub fn after_input(&mut self, now: Instant) {
        self.state.now = now;
        self.deliver_events();
    }

    /// Fire whatever is due at `now`: scenario commands, module timers, the
    /// overlay's timers, the statistics sample.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.state.now = now;
        if let Some(zero) = self.state.zero {
            let shared = self.state.shared.clone();
            while self.cursor < shared.commands.len() && !self.state.stop_requested {
                let When::At(t) = shared.commands[self.cursor].when else {
                    self.cursor += 1;
                    continue;
                };
                if zero + scaled(t, shared.time_scale) > now {
                    break;
                }
                let i = self.cursor;
                self.cursor += 1;
                self.fire(i);
                self.deliver_events();
            }
            if self.cursor >= shared.commands.len() {
                // The scenario is over for this instance: an implicit `stop`.
                self.state.stop_requested = true;
            }
        }
        while let Some(Reverse(t)) = self.state.timers.peek() {
            if t.at > now || self.state.stop_requested {
                break;
            }
            let Reverse(t) = self.state.timers.pop().expect("peeked");
            if let Some(m) = self.modules.as_mut()
                && let Err(e) = m.on_timer(&mut self.state, t.module, t.token)
            {
                let name = self.module_name(t.module);
                self.state
                    .fail(format!("module `{name}` failed in on_timer: {e}"));
            }
            self.deliver_events();
        }
        if self.state.core.poll_timeout().is_some_and(|t| t <= now) {
            self.state.core.handle_timeout(now);
            self.deliver_events();
        }
        if self.next_sample.is_some_and(|t| t <= now) {
            self.sample(now);
            self.next_sample = Some(now + Duration::from_secs(1));
        }
    }

    /// Write one statistics line now.
    pub fn sample(&mut self, now: Instant) {
        self.state.sample(now);
    }

    /// Stop now (end of scenario, `stop`, abort): every module's `on_stop`,
    /// the last sample and the end event.
    pub fn shut_down(&mut self, now: Instant, status: EndStatus) {
        self.state.now = now;
        self.state.stop_requested = true;
        if let Some(m) = self.modules.as_mut() {
            for e in m.on_stop(&mut self.state) {
                self.state.fail(e);
            }
        }
        self.sample(now);
        let t = self.state.wall_t(now);
        let mut e = EventLine::new(t, event_kind::END);
        e.status = Some(status);
        self.state.record.event(&e);
        self.state.record.flush();
    }

    fn module_name(&self, index: usize) -> String {
        self.state
            .shared
            .registry
            .modules()
            .get(index)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("#{index}"))
    }

    /// Run command `index` if it selects this instance.
    fn fire(&mut self, index: usize) {
        let shared = self.state.shared.clone();
        let cmd = &shared.commands[index];
        if !cmd.peers.selects(self.state.id, shared.instances) {
            return;
        }
        self.fired += 1;
        let t = self.state.wall_t(self.state.now);
        let mut e = EventLine::new(t, event_kind::COMMAND);
        e.callback = Some(cmd.call.callback[..].into());
        e.module = Some(cmd.call.module_name.as_str().into());
        e.file = Some(cmd.file[..].into());
        e.line = Some(cmd.line);
        self.state.record.event(&e);
        // On disk before it runs: if it hangs or aborts the process, the
        // events still name it.
        self.state.record.flush_events();
        let Some(m) = self.modules.as_mut() else {
            return;
        };
        self.state.command = Some((cmd.file.clone(), cmd.line));
        let res = m.call(&mut self.state, &cmd.call);
        self.state.command = None;
        if let Err(err) = res {
            self.state.fail(format!("{}:{}: {err}", cmd.file, cmd.line));
        }
    }

    /// Hand the overlay's events to the modules that defined the messages.
    fn deliver_events(&mut self) {
        while let Some(event) = self.state.core.poll_event() {
            let dispersy::OverlayEvent::Message(d) = event else {
                continue;
            };
            let Some(&owner) = self.state.message_owner.get(&d.meta) else {
                continue;
            };
            let message = dispersy::module::incoming_message(d);
            if let Some(m) = self.modules.as_mut()
                && let Err(e) = m.on_message(&mut self.state, owner, message)
            {
                self.state.message_failures += 1;
                let n = self.state.message_failures;
                if n <= MESSAGE_FAILURES_RECORDED || n.is_power_of_two() {
                    let name = self.module_name(owner);
                    let so_far = if n > MESSAGE_FAILURES_RECORDED {
                        format!(" ({n} on_message failures so far; only some are recorded)")
                    } else {
                        String::new()
                    };
                    self.state
                        .fail(format!("module `{name}` failed in on_message: {e}{so_far}"));
                }
            }
        }
    }
}

impl State {
    /// Write one statistics line at `now`.
    fn sample(&mut self, now: Instant) {
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

    /// Record a fault as an event (plots show them).
    fn fault_event(&mut self, text: &str) {
        let t = self.wall_t(self.now);
        let mut e = EventLine::new(t, event_kind::FAULT);
        e.text = Some(text.into());
        self.record.event(&e);
    }

    /// Wall seconds since the start, as the output files count time.
    fn wall_t(&self, now: Instant) -> f64 {
        match self.zero {
            Some(z) if now >= z => now.duration_since(z).as_secs_f64(),
            Some(z) => -(z.duration_since(now).as_secs_f64()),
            None => 0.0,
        }
    }

    fn fail(&mut self, why: String) {
        self.record.error(&format!("error: {why}"));
        // After a panic every call to that module is refused with the same
        // words: the panic is the cause, the refusals only a count.
        if why.ends_with("is unusable after an earlier panic")
            && self.failures.iter().any(|f| f.contains("panicked in"))
        {
            self.refused_after_panic += 1;
            return;
        }
        self.failures.push(why);
    }

    fn module_name(&self, index: usize) -> &str {
        self.shared
            .registry
            .modules()
            .get(index)
            .map(|m| m.name.as_str())
            .unwrap_or("?")
    }
}

/// The farthest any timer is set (ten years): a plugin asking for
/// `Duration::MAX` means "never", not an overflow.
const FAR: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Scenario seconds as wall time, clamped to `[0, FAR]` (NaN is 0).
fn scaled(scenario_secs: f64, scale: f64) -> Duration {
    let wall = scenario_secs * scale;
    if wall.is_nan() || wall <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(wall).map_or(FAR, |d| d.min(FAR))
}

impl Services for State {
    fn instance_id(&self) -> u64 {
        u64::from(self.id)
    }

    fn instance_count(&self) -> u64 {
        u64::from(self.shared.instances)
    }

    fn config(&self, key: &str) -> Option<String> {
        self.shared.config.get(key).cloned()
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn now(&self) -> f64 {
        self.wall_t(self.now) / self.shared.time_scale
    }

    fn print(&mut self, _module: usize, line: &str) {
        self.record.print(line);
    }

    fn log(&mut self, module: usize, line: &str) {
        let line = format!("{}: {line}", self.module_name(module));
        self.record.error(&line);
    }

    fn annotate(&mut self, _module: usize, text: &str) {
        let t = self.wall_t(self.now);
        let mut e = EventLine::new(t, event_kind::ANNOTATION);
        e.text = Some(text.into());
        self.record.event(&e);
    }

    fn stat_add(&mut self, _module: usize, name: &str, value: f64) {
        self.record.stat_add(name, value);
    }

    fn stat_set(&mut self, _module: usize, name: &str, value: f64) {
        self.record.stat_set(name, value);
    }

    /// `delay` is scenario seconds (scaled like every other time); a huge or
    /// infinite delay is "never" (clamped to ten years).
    fn set_timer(&mut self, module: usize, delay: f64, token: u64) {
        let delay = scaled(delay, self.shared.time_scale);
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer {
            at: self.now + delay,
            seq: self.timer_seq,
            module,
            token,
        }));
    }

    fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.into(), value.into());
    }

    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn stop(&mut self) {
        self.stop_requested = true;
    }

    fn entering(&mut self, module: usize, what: &str) {
        let name = self
            .shared
            .registry
            .modules()
            .get(module)
            .map(|m| m.name.as_str())
            .unwrap_or("?");
        match &self.command {
            Some((file, line)) => self
                .record
                .enter(format_args!("{name}.{what} ({file}:{line})")),
            None => self.record.enter(format_args!("{name}.{what}")),
        }
    }

    fn left(&mut self) {
        self.record.leave();
    }

    fn isolate_community(&mut self, name: &str) -> Result<(), String> {
        let id = dispersy::CommunityId::isolated(name, &self.shared.run_identity);
        self.core.set_community(id);
        Ok(())
    }

    fn set_community_id(&mut self, id: &[u8]) -> Result<(), String> {
        self.core.set_community(dispersy::module::community_id(id)?);
        Ok(())
    }

    fn start_session(&mut self) -> Result<(), String> {
        self.core.start(self.now);
        Ok(())
    }

    fn stop_session(&mut self) -> Result<(), String> {
        self.core.stop();
        Ok(())
    }

    fn introduce_peers(&mut self, max_peers: Option<u64>) -> Result<(), String> {
        dispersy::module::introduce_peers(&mut self.core, self.directory.as_ref(), max_peers)
    }

    fn set_walker(&mut self, name: &str, value: &Value) -> Result<(), String> {
        let scale = self.shared.time_scale;
        dispersy::module::set_walker(&mut self.core, name, value, |d| scaled_interval(d, scale))
    }

    fn reset_overlay_statistics(&mut self) -> Result<(), String> {
        // Keep the traffic up to now: one last sample before the counters restart.
        let now = self.now;
        self.sample(now);
        self.core.reset_statistics();
        self.record.reset_custom();
        self.reset_pending = true;
        Ok(())
    }

    fn define_message(&mut self, module: usize, spec: MessageSpec) -> Result<(), String> {
        let meta = dispersy::module::meta_message(&spec)?;
        let id = self.core.define_message(meta).map_err(|e| e.to_string())?;
        self.message_owner.insert(id, module);
        Ok(())
    }

    fn send(
        &mut self,
        _module: usize,
        message: &str,
        payload: Vec<u8>,
        to: Vec<u64>,
    ) -> Result<(), String> {
        dispersy::module::send(&mut self.core, message, &payload, to)
    }

    fn known_peers(&self) -> Vec<u64> {
        dispersy::module::known_peers(&self.core, self.directory.as_deref())
    }

    fn public_key(&self) -> Vec<u8> {
        self.core.public_key().as_bytes().to_vec()
    }

    fn set_network(&mut self, loss: f64, delay: f64, jitter: f64) -> Result<(), String> {
        let valid = |d: f64| d.is_finite() && d >= 0.0;
        if !(0.0..=1.0).contains(&loss) || !valid(delay) || !valid(jitter) {
            return Err(format!(
                "set_network loss={loss} delay={delay} jitter={jitter}: loss must be within 0..1, delays not negative"
            ));
        }
        // Delays are scenario time, like every other time of the scenario.
        let scale = self.shared.time_scale;
        self.net.loss = loss;
        self.net.delay = scaled(delay, scale);
        self.net.jitter = scaled(jitter, scale);
        self.fault_event(&format!(
            "set_network loss={loss} delay={}ms jitter={}ms",
            (delay * 1000.0).round(),
            (jitter * 1000.0).round()
        ));
        Ok(())
    }

    fn partition(&mut self, groups: Vec<String>) -> Result<(), String> {
        if groups.is_empty() {
            self.net.partition = None;
            self.fault_event("heal");
            return Ok(());
        }
        let mut sets = Vec::with_capacity(groups.len());
        for g in &groups {
            let (spec, errors) = peerlab_lang::peerspec::parse_peerspec(g);
            if let Some(e) = errors.first() {
                return Err(format!("partition group `{{{g}}}`: {}", e.message));
            }
            match spec {
                PeerSpec::Only(ids) => sets.push(ids),
                _ => return Err(format!("partition group `{{{g}}}` must list instance ids")),
            }
        }
        self.net.partition = Some(Arc::new(sets));
        let text: Vec<String> = groups.iter().map(|g| format!("{{{g}}}")).collect();
        self.fault_event(&format!("partition {}", text.join(" ")));
        Ok(())
    }

    fn crash(&mut self) -> Result<(), String> {
        self.fault_event("crash");
        self.crashed = true;
        self.stop_requested = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn overlay_tuning_reads_its_keys_and_refuses_bad_values() {
        let cfg = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            OverlayTuning::from_config(&cfg(&[])).unwrap(),
            OverlayTuning::default()
        );
        let t = OverlayTuning::from_config(&cfg(&[
            ("sync_interval", "250ms"),
            ("sync_response_limit", "128"),
            ("drop_unknown_authors", "false"),
            ("max_messages_per_author", "500"),
        ]))
        .unwrap();
        assert_eq!(t.sync_interval, Some(Duration::from_millis(250)));
        assert_eq!(t.sync_response_limit, Some(128));
        assert_eq!(t.drop_unknown_authors, Some(false));
        assert_eq!(t.max_messages_per_author, Some(500));
        for (k, v) in [
            ("sync_interval", "0"),
            ("sync_interval", "soon"),
            ("sync_interval", "2d"),
            ("sync_response_limit", "0"),
            ("sync_response_limit", "-3"),
            ("sync_response_limit", "1e9"),
            ("drop_unknown_authors", "maybe"),
            ("max_messages_per_author", "0"),
            ("max_messages_per_author", "65536"),
        ] {
            let e = OverlayTuning::from_config(&cfg(&[(k, v)])).unwrap_err();
            assert!(e.contains(k), "{e}");
        }
    }
    use super::*;

    #[test]
    fn scenario_times_scale_and_never_overflow() {
        assert_eq!(scaled(1.5, 2.0), Duration::from_secs(3));
        assert_eq!(scaled(-1.0, 1.0), Duration::ZERO);
        assert_eq!(scaled(f64::NAN, 1.0), Duration::ZERO);
        assert_eq!(scaled(f64::INFINITY, 1.0), FAR);
        assert_eq!(
            scaled(f64::MAX, 0.5),
            FAR,
            "Duration::MAX as a timer means never"
        );
        assert_eq!(scaled_interval(Duration::from_secs(1), 0.001), MIN_INTERVAL);
    }

    #[test]
    fn seeds_differ_by_instance_and_purpose_and_repeat() {
        assert_eq!(derive_seed(7, 1, "overlay"), derive_seed(7, 1, "overlay"));
        assert_ne!(derive_seed(7, 1, "overlay"), derive_seed(7, 2, "overlay"));
        assert_ne!(derive_seed(7, 1, "overlay"), derive_seed(7, 1, "modules"));
        assert_ne!(key_seed(b"t", 7, 1), key_seed(b"t", 8, 1));
        assert_ne!(
            key_seed(b"token a", 7, 1),
            key_seed(b"token b", 7, 1),
            "the secret identity changes every key"
        );
    }
}
