//! Who is up when: an instance's presence (online, or away after `leave`
//! or a churn departure) and the presence commands that change it
//! (`leave`, `join`, `restart`, `churn`), with the churn model's schedule.
//!
//! An instance away keeps its process (or its slot in the simulation) but
//! is silent: its overlay session is stopped, datagrams to it are lost
//! (not handed to its core), its module timers wait, and scenario commands
//! other than the presence commands, `crash` and `stop` are skipped (their
//! `command` event says so). Coming back keeps its identity (member key,
//! community, message definitions, peer table): `join` resumes it as it
//! was; `restart` makes its modules afresh, as a restarted process would.
//! Either keeps or empties its overlay store (`store=`).
//!
//! Recorded: a `fault` event per change (`leave`, `join store=kept`,
//! `restart store=empty`, `churn …`; churn's own changes end in
//! `(churn)`) carrying the member key (`key`), the `online` gauge of the
//! `core` module in every statistics line of a run whose scenario uses
//! presence commands (1 online, 0 away), and `"online": false` on the `end`
//! event of an instance away at its end (what the verdicts read).
//!
//! Must not: read the clock or draw from anything but the instance's
//! `churn` RNG (`derive_seed(run, id, "churn")`), so a simulated run
//! repeats; nor know its driver (both drivers need nothing else).

use std::time::Instant;

use peerlab_plugin_api::MetricKind;
use peerlab_run::EventLine;
use peerlab_run::schema::event_kind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::churn::{self, Action, Model, Return, StoreChoice, Word};
use crate::modules::{BoundCall, Instances, Registry};
use crate::seed::scaled;
use crate::{Instance, Shared, derive_seed};

/// The index of the built-in `core` module in every registry.
const CORE: usize = 0;

/// One instance's presence. See the module docs.
pub(crate) struct Presence {
    /// The scenario uses presence commands: record the `online` gauge.
    tracked: bool,
    /// Away (after `leave` or a churn departure).
    pub(crate) away: bool,
    /// Its overlay session ran when it left (started again on return).
    session_was_started: bool,
    /// The churn model it follows, if any.
    model: Option<Model>,
    /// When churn next changes it (a departure, or a return).
    next_change: Option<Instant>,
    /// How a churn departure comes back.
    pending_return: Option<(Return, StoreChoice)>,
    /// The seed of its churn draws, and the stream once churn first draws
    /// (kept small: most runs never churn).
    seed: u64,
    rng: Option<Box<ChaCha8Rng>>,
}

/// Whether `call` is a presence command (run by the instance, not `core`).
pub(crate) fn is_presence(call: &BoundCall) -> bool {
    call.module == CORE && churn::COMMANDS.contains(&call.callback.as_str())
}

/// Whether an instance away still runs `call`.
pub(crate) fn runs_while_away(call: &BoundCall) -> bool {
    is_presence(call) || (call.module == CORE && matches!(call.callback.as_str(), "crash" | "stop"))
}

impl Presence {
    pub(crate) fn new(shared: &Shared, id: u32) -> Self {
        Presence {
            tracked: shared.commands.iter().any(|c| is_presence(&c.call)),
            away: false,
            session_was_started: false,
            model: None,
            next_change: None,
            pending_return: None,
            seed: derive_seed(shared.run_seed, id, "churn"),
            rng: None,
        }
    }

    /// When churn next changes the instance.
    pub(crate) fn next_change(&self) -> Option<Instant> {
        self.next_change
    }

    /// What the `end` event says: `Some(false)` when away at the end.
    pub(crate) fn online_at_end(&self) -> Option<bool> {
        (self.tracked && self.away).then_some(false)
    }

    fn draw(
        &mut self,
        which: fn(&Model) -> churn::Dist,
        time_scale: f64,
    ) -> Option<std::time::Duration> {
        let model = self.model?;
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| Box::new(ChaCha8Rng::seed_from_u64(seed)));
        Some(scaled(which(&model).sample(rng.as_mut()), time_scale))
    }
}

/// A call's words as the scenario gave them (keyword name, text), in the
/// order of the callback's declared parameters, then the rest.
fn words_of<'a>(registry: &'a Registry, call: &'a BoundCall) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let Some(spec) = registry
        .modules()
        .get(call.module)
        .and_then(|m| m.callback(&call.callback))
    else {
        return out;
    };
    for (i, p) in spec.params.iter().enumerate() {
        if let Some(peerlab_plugin_api::Value::Str(s)) = call.args.get(i) {
            out.push((Some(p.name.to_string()), s.to_string()));
        }
    }
    for v in call.args.rest_values() {
        if let peerlab_plugin_api::Value::Str(s) = v {
            out.push((None, s.to_string()));
        }
    }
    out
}

impl Instance {
    /// The instance is online: record the `online` gauge (runs that track presence).
    pub(crate) fn presence_started(&mut self) {
        self.set_online_gauge();
    }

    fn set_online_gauge(&mut self) {
        let state = &mut self.state;
        if state.presence.tracked {
            let v = if state.presence.away { 0.0 } else { 1.0 };
            // Declared by `core`; a refusal would be a host bug, counted as any.
            let _ = state.metrics.record(CORE, MetricKind::GAUGE, "online", v);
        }
    }

    /// Run a presence command (`fire` hands them here instead of `core`).
    pub(crate) fn run_presence(&mut self, call: &BoundCall) -> Result<(), String> {
        let registry = self.state.shared.registry.clone();
        let owned = words_of(&registry, call);
        let words: Vec<Word<'_>> = owned
            .iter()
            .map(|(k, v)| (k.as_deref(), v.as_str()))
            .collect();
        let action = churn::parse_command(&call.callback, &words).map_err(|(_, e)| e)?;
        let now = self.state.now;
        let scale = self.state.shared.time_scale;
        match action {
            Action::Leave => {
                self.stop_churn();
                self.depart("leave");
            }
            Action::Back(how, store) => {
                self.stop_churn();
                self.come_back(how, store, "");
            }
            Action::Churn(model) => {
                let p = &mut self.state.presence;
                p.model = Some(model);
                p.pending_return = Some((model.rejoin, model.store));
                p.next_change = if p.away {
                    p.draw(|m| m.downtime, scale)
                } else {
                    p.draw(|m| m.session, scale)
                }
                .map(|d| now + d);
                self.presence_event(&format!(
                    "churn session={} downtime={} store={} rejoin={}",
                    model.session,
                    model.downtime,
                    model.store.as_str(),
                    model.rejoin.as_str()
                ));
            }
            Action::ChurnOff => {
                let p = &mut self.state.presence;
                p.model = None;
                // An instance away still comes back at the end of its downtime.
                if !p.away {
                    p.next_change = None;
                }
                self.presence_event("churn off");
            }
        }
        Ok(())
    }

    /// An explicit `leave`, `join` or `restart` ends the instance's churn.
    fn stop_churn(&mut self) {
        let p = &mut self.state.presence;
        p.model = None;
        p.next_change = None;
        p.pending_return = None;
    }

    /// Churn's change is due at `now`: depart, or come back.
    pub(crate) fn presence_due(&mut self, now: Instant) {
        let p = &mut self.state.presence;
        if p.next_change.is_none_or(|t| t > now) {
            return;
        }
        let scale = self.state.shared.time_scale;
        if p.away {
            let (how, store) = p
                .pending_return
                .unwrap_or((Return::Restart, StoreChoice::Kept));
            p.next_change = p.draw(|m| m.session, scale).map(|d| now + d);
            self.come_back(how, store, " (churn)");
        } else {
            p.next_change = p.draw(|m| m.downtime, scale).map(|d| now + d);
            self.depart("leave (churn)");
        }
    }

    /// Leave gracefully: the overlay session stops (what it queued is still
    /// sent), then the instance is away.
    fn depart(&mut self, text: &str) {
        if self.state.presence.away {
            return;
        }
        let state = &mut self.state;
        state.presence.session_was_started = state.core.is_started();
        state.core.stop();
        state.presence.away = true;
        self.presence_event(text);
        self.set_online_gauge();
    }

    /// Come back (`join` or `restart`) with the store kept or emptied.
    fn come_back(&mut self, how: Return, store: StoreChoice, suffix: &str) {
        let was_away = self.state.presence.away;
        if !was_away && how == Return::Join {
            // Already online: nothing to join.
            return;
        }
        if was_away || how == Return::Restart {
            // A restart of an online instance stops its session first.
            if !was_away {
                self.state.presence.session_was_started = self.state.core.is_started();
                self.state.core.stop();
            }
        }
        if store == StoreChoice::Empty {
            self.state.core.clear_store();
        }
        self.state.presence.away = false;
        let now = self.state.now;
        if self.state.presence.session_was_started {
            self.state.core.start(now);
        }
        self.presence_event(&format!(
            "{} store={}{suffix}",
            how.as_str(),
            store.as_str()
        ));
        self.set_online_gauge();
        if how == Return::Restart {
            self.restart_modules();
        }
    }

    /// Fresh module instances, as a restarted process has: their
    /// constructors and `on_start` run again; their timers are forgotten.
    /// The messages they define are already defined: the new instances
    /// take them over.
    fn restart_modules(&mut self) {
        self.state.timers.clear();
        self.state.restarting = true;
        let registry = self.state.shared.registry.clone();
        let made = Instances::new(registry, &mut self.state);
        self.state.restarting = false;
        match made {
            Ok(m) => {
                self.modules = Some(m);
                if let Some(m) = self.modules.as_mut() {
                    for e in m.on_start(&mut self.state) {
                        self.state.fail(e);
                    }
                }
            }
            Err(e) => {
                self.modules = None;
                self.state
                    .fail(format!("cannot create the modules again at restart: {e}"));
                self.state.stop_requested = true;
            }
        }
    }

    /// A `fault` event with the member key: the identity it left or came back with.
    fn presence_event(&mut self, text: &str) {
        let state = &mut self.state;
        let t = state.wall_t(state.now);
        let key = peerlab_dispersy::crypto::hex(state.core.public_key().as_bytes());
        let mut e = EventLine::new(t, event_kind::FAULT);
        e.text = Some(text.into());
        e.key = Some(key.as_str().into());
        state.record.event(&e);
    }
}

/// `peerlab check`'s look at a presence command's arguments (bad
/// distributions, durations, store or rejoin words), at the word at fault.
pub fn check_command(
    call: &BoundCall,
    cmd: &peerlab_lang::Command,
) -> Vec<peerlab_lang::Diagnostic> {
    if !is_presence(call) {
        return Vec::new();
    }
    let mut words: Vec<Word<'_>> = Vec::new();
    let mut locs = Vec::new();
    for a in &cmd.args {
        words.push((None, a.value.as_str()));
        locs.push(&a.loc);
    }
    for k in &cmd.kwargs {
        words.push((Some(k.name.as_str()), k.value.as_str()));
        locs.push(&k.loc);
    }
    match churn::parse_command(&call.callback, &words) {
        Ok(_) => Vec::new(),
        Err((at, why)) => {
            let loc = at
                .and_then(|i| locs.get(i).copied())
                .unwrap_or(&cmd.callback_loc);
            let about_dist = (why.starts_with("session=") || why.starts_with("downtime="))
                && !why.contains(churn::DIST_FORMS);
            let help = if about_dist {
                format!("give {}; docs/network.md, \"Churn\"", churn::DIST_FORMS)
            } else {
                "docs/network.md, \"Churn\"".to_string()
            };
            vec![
                peerlab_lang::Diagnostic::error(format!("core.{}: {why}", call.callback))
                    .with_code("bad-argument")
                    .at(loc.clone())
                    .with_help(help),
            ]
        }
    }
}
