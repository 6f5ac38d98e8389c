//! peerlab's instance runtime: one experiment instance as a state machine,
//! its modules, its overlay core, its share of the scenario, its timers
//! and its output records.
//!
//! Like the overlay core it drives, an [`Instance`] does no socket I/O,
//! reads no clock and touches no file (quinn-proto style; this crate has
//! no async runtime and no socket): datagrams and time come in as
//! arguments, datagrams and deadlines go out, and its output records go
//! to the [`record::Storage`] its driver gave it. A driver (real UDP in
//! the host's `runtime::process`, the simulated network in its
//! `runtime::sim`) only carries bytes and time:
//!
//! ```text
//! inst.handle_datagram(now, from, bytes);       // or handle_datagrams(now, batch)
//! while let Some(t) = inst.poll_transmit(buf) { // already through the fault model
//!     send buf[..t.size] to t.destination after t.delay
//! }
//! let deadline = inst.poll_timeout();           // call handle_timeout(now) when it passes
//! ```
//!
//! [`Instance::finished`] says when to stop driving it. This is what lets
//! a simulated run behave exactly like a real one.
//!
//! This file owns the state machine: the scenario cursor, module timers,
//! event delivery, failures and the instance's end. Around it, one job
//! each: [`shared`] (what every instance of a process shares), [`seed`]
//! (seed derivation and overlay settings), [`faults`] (the network
//! conditions and what they do to a datagram), [`topology`] and
//! [`bandwidth`] (per-link latency and the upload and download queues),
//! [`nat`] (the NAT filter the real driver emulates), `services` (the host
//! services behind the module API, including the api-to-overlay adapter),
//! [`record`] (the instance's output records and what could not be
//! written; `stats_line` writes its statistics lines) and [`modules`] (the registry of callable modules and the
//! dispatch to one instance's module instances).
//! Must not: touch sockets or files, read the clock, sleep, or know its
//! driver; nor depend on tokio, the host or the runner
//! (`tests/tests/tidy.rs`).

pub mod bandwidth;
pub mod churn;
pub mod faults;
pub mod metrics;
pub mod modules;
pub mod nat;
mod presence;
pub mod record;
pub mod seed;
mod services;
pub mod shared;
mod stats_line;
pub mod topology;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlab_dispersy::{self as dispersy, MetaId, OverlayCore, PeerDirectory};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use peerlab_run::schema::event_kind;
use peerlab_run::{EndStatus, EventLine};

pub use faults::{NetConditions, Route};
use seed::scaled;
pub use seed::{derive_seed, key_seed, overlay_config};
pub use shared::{EarlyPhase, OverlayTuning, ScheduledCall, Shared, When};

use crate::metrics::Metrics;
use crate::modules::Instances;
use crate::record::Record;

/// One datagram to send, already through the fault model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer to send.
    pub size: usize,
    /// How long to hold it first (`set_network` delay and jitter); zero:
    /// send it at once.
    pub delay: Duration,
}

/// A module timer (`set_timer`), ordered by when it is due.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    module: usize,
    token: u64,
}

/// `on_message` failures recorded one by one before only every 2^k-th is.
const MESSAGE_FAILURES_RECORDED: u64 = 10;

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
    /// What the modules recorded through the metrics service.
    metrics: Metrics,
    /// Writes the statistics lines (keeps the last line's names).
    stats_line: stats_line::LineWriter,
    /// The top-level callback running now (`entering`), to name it when a
    /// module records a metric wrongly.
    callback: String,
    /// Scenario seconds between statistics lines (`stats_interval`).
    stats_interval: f64,
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
    /// Datagrams the fault model dropped so far.
    fault_drops: u64,
    /// The topology's latencies and this instance's bandwidth.
    links: topology::NetModel,
    /// The NAT this instance sits behind (`nat`, `nat_timeout`), and its
    /// filter when the driver emulates it ([`Instance::emulate_nat_filter`]).
    nat: (peerlab_lang::NatType, Duration),
    nat_filter: Option<nat::NatFilter>,
    crashed: bool,
    /// Its driver captures its datagrams (`capture` key or command).
    capture: bool,
    /// Online or away, and the churn model (`presence`).
    presence: presence::Presence,
    /// `restart` is making the modules again: a message they define is
    /// already defined, and goes to the new instance.
    restarting: bool,
}

/// One experiment instance. See the module docs.
pub struct Instance {
    state: State,
    modules: Option<Instances>,
    /// Next timeline command to consider.
    cursor: usize,
    /// Scenario commands run on this instance so far.
    fired: u64,
    /// When the next statistics line is due: every `stats_interval`
    /// scenario seconds from the start, on a fixed grid (a late sample does
    /// not shift the later ones).
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
        let metrics = Metrics::new(
            shared
                .registry
                .modules()
                .iter()
                .map(|m| (m.name.clone(), m.metrics.clone()))
                .collect(),
        );
        // Typed by lang when the run was planned; a value it would not
        // take falls back to the default, as a missing one does.
        let keys = peerlab_lang::RuntimeKeys::from_strings(&shared.config).0;
        let stats_interval = keys.stats_interval.unwrap_or(1.0);
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
            metrics,
            stats_line: Default::default(),
            callback: String::new(),
            stats_interval,
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
            fault_drops: 0,
            links: topology::NetModel::new(shared.topology.clone(), &keys, shared.time_scale),
            nat: {
                let keys = peerlab_lang::NatKeys::from_strings(&shared.config).0;
                (keys.of(id), keys.timeout())
            },
            nat_filter: None,
            crashed: false,
            capture: keys.capture.unwrap_or(false),
            presence: presence::Presence::new(&shared, id),
            restarting: false,
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

    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.state.record
    }

    /// This instance's member key as hex, for the sync server's peer table.
    pub fn public_key_hex(&self) -> String {
        peerlab_dispersy::crypto::hex(self.state.core.public_key().as_bytes())
    }

    /// The next datagram to send, already through the fault model: one the
    /// network conditions drop is counted (`drop/network_fault`) and
    /// skipped; one they delay comes with its [`Transmit::delay`], which
    /// the driver applies. Writes the datagram into `buf` (at least
    /// `peerlab_dispersy::wire::MAX_DATAGRAM` bytes); allocates nothing.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let t = self.state.core.poll_transmit(buf)?;
            let state = &mut self.state;
            if let Some(f) = state.nat_filter.as_mut() {
                // Through the NAT before any loss on the way.
                f.outbound(state.now, t.destination);
            }
            let route = if state.net.is_clean() && !state.links.shapes_outgoing() {
                // What `route` gives for clean conditions, without asking.
                Route::After(Duration::ZERO)
            } else {
                state.net.route(
                    &mut state.net_rng,
                    state.directory.as_deref(),
                    state.id,
                    t.destination,
                )
            };
            match route {
                Route::Drop => {
                    state.core.count_fault_drop();
                    state.fault_drops += 1;
                }
                Route::After(delay) => {
                    // The topology's latency and the upload link (None: its queue is full).
                    let Some(extra) = state.through_links(t.destination, t.size) else {
                        continue;
                    };
                    return Some(Transmit {
                        destination: t.destination,
                        size: t.size,
                        delay: delay + extra,
                    });
                }
            }
        }
    }

    /// Datagrams the network conditions dropped so far (each also counted
    /// as `drop/network_fault` in the statistics).
    pub fn dropped_by_faults(&self) -> u64 {
        self.state.fault_drops
    }

    /// The driver's network lost a datagram this instance sent (a
    /// simulated link's loss): counted as `drop/network_fault`, like a
    /// fault's drop, so the statistics show it.
    pub fn lost_in_network(&mut self) {
        self.state.core.count_fault_drop();
    }

    /// Whether its driver should capture its datagrams (the `capture`
    /// config key, or a `capture` command ran): it stays so once set.
    pub fn capturing(&self) -> bool {
        self.state.capture
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
        self.state.network_event();
        self.state.nat_event();
        self.presence_started();
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
        // An instance away holds its module timers until it is back.
        let timer = match self.state.presence.away {
            true => None,
            false => self.state.timers.peek().map(|Reverse(t)| t.at),
        };
        [
            command,
            timer,
            self.state.core.poll_timeout(),
            self.next_sample,
            self.state.links.next_incoming(),
            self.state.presence.next_change(),
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

    /// One datagram arrived from `from`: the core handles it, the modules
    /// get what it delivered.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.handle_datagrams(now, std::iter::once((from, bytes)));
    }

    /// A batch of datagrams arrived (one receive system call's worth): the
    /// core handles them as one batch (its signatures verified together),
    /// the modules get what they delivered.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        self.state.now = now;
        if self.state.presence.away {
            // Away: what reaches its address is lost (docs/network.md, Churn).
            return;
        }
        let nat = self.state.nat_filter.as_ref();
        let mut filtered = 0u64;
        let passed = datagrams.into_iter().filter(|(from, _)| {
            let pass = nat.is_none_or(|f| f.allows(now, *from));
            filtered += u64::from(!pass);
            pass
        });
        if self.state.links.holds_incoming() {
            // They wait for the download link (handle_timeout releases them).
            topology::hold_arrivals(&mut self.state.links, &mut self.state.core, now, passed);
        } else {
            self.state.core.handle_batch(now, passed);
        }
        for _ in 0..filtered {
            self.state.core.count_nat_drop();
        }
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
        if !self.state.stop_requested {
            self.presence_due(now);
        }
        while let Some(Reverse(t)) = self.state.timers.peek() {
            if t.at > now || self.state.stop_requested || self.state.presence.away {
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
        if let Some(due) = self.state.arrivals_due(now) {
            let batch = due.iter().map(|(from, bytes)| (*from, bytes.as_slice()));
            self.state.core.handle_batch(now, batch);
            self.deliver_events();
        }
        if self.state.core.poll_timeout().is_some_and(|t| t <= now) {
            self.state.core.handle_timeout(now);
            self.deliver_events();
        }
        if self.next_sample.is_some_and(|t| t <= now) {
            self.sample(now);
            self.next_sample = self.state.next_sample_after(now);
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
        // Output it could not write makes a run that finished a failed one
        // (docs/outputs.md, Lost output): the end event says so, and why.
        let lost = self.state.record.losses_text();
        e.status = Some(match (status, &lost) {
            (EndStatus::Finished, Some(_)) => EndStatus::Failed,
            (status, _) => status,
        });
        e.text = lost.as_deref().map(Into::into);
        e.online = self.state.presence.online_at_end();
        self.state.record.event(&e);
        self.state.record.flush();
    }

    /// The instance is [`finished`](Self::finished) (or crashed): stop it
    /// as [`shut_down`](Self::shut_down) does, with the status its outcome
    /// gives, and return that outcome, failed if some of its output could
    /// not be written (the last writes included). What a driver calls at
    /// a normal end.
    pub fn end(&mut self, now: Instant) -> Outcome {
        let outcome = self.outcome();
        self.shut_down(now, outcome.status().0);
        self.with_losses(outcome)
    }

    /// The driver ends the instance before its scenario did (its socket
    /// failed, the run was aborted): `line` goes to its error log, then it
    /// stops as [`shut_down`](Self::shut_down) does with `status`; returns
    /// `outcome`, failed if some of its output could not be written.
    pub fn abort(
        &mut self,
        now: Instant,
        status: EndStatus,
        line: &str,
        outcome: Outcome,
    ) -> Outcome {
        self.state.record.error(line);
        self.shut_down(now, status);
        self.with_losses(outcome)
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
        let skipped = self.state.presence.away && !presence::runs_while_away(&cmd.call);
        if skipped {
            e.text = Some("skipped: the instance is away".into());
        }
        self.state.record.event(&e);
        // On disk before it runs: if it hangs or aborts the process, the
        // events still name it.
        self.state.record.flush_events();
        if skipped {
            return;
        }
        if presence::is_presence(&cmd.call) {
            if let Err(err) = self.run_presence(&cmd.call) {
                self.state.fail(format!("{}:{}: {err}", cmd.file, cmd.line));
            }
            return;
        }
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
    /// Write one statistics line at `now` (`t` in scenario seconds): the
    /// overlay's counters, the modules' metrics and statistics.
    fn sample(&mut self, now: Instant) {
        // Kept to the microsecond: 3.0, not 2.9999999999999996.
        let t = (self.wall_t(now) / self.shared.time_scale * 1e6).round() / 1e6;
        let reset = std::mem::take(&mut self.reset_pending);
        let (w, stats) = (&mut self.stats_line, self.core.stats());
        w.sample(t, reset, stats, &mut self.metrics, &mut self.record);
    }

    /// The first point of the statistics grid (every `stats_interval`
    /// scenario seconds from the start) after `now`.
    fn next_sample_after(&self, now: Instant) -> Option<Instant> {
        let zero = self.zero?;
        let scenario_now = self.wall_t(now) / self.shared.time_scale;
        let k = (scenario_now / self.stats_interval).floor().max(0.0) + 1.0;
        let mut at = zero + scaled(k * self.stats_interval, self.shared.time_scale);
        if at <= now {
            // Rounding put the grid point on `now`: take the next one.
            at = zero + scaled((k + 1.0) * self.stats_interval, self.shared.time_scale);
        }
        Some(at)
    }

    /// Record the NAT this instance sits behind as a `network` event.
    fn nat_event(&mut self) {
        let (t, timeout) = self.nat;
        if let Some(text) = nat::describe(t, timeout) {
            let mut e = EventLine::new(self.wall_t(self.now), event_kind::NETWORK);
            e.text = Some(text.as_str().into());
            self.record.event(&e);
        }
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
