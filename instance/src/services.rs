//! The host services behind the modules' API ([`Services`]) over one
//! instance's state: records, timers, variables, and the api-to-overlay
//! adapter (what each overlay call means for the core is
//! `peerlab_dispersy::module`'s; the adapter lives here because it needs
//! the instance's core, the peer table it got at the barrier, the time
//! scale, which module defined which message, and its records), plus the
//! fault commands (`set_network`, `partition`, `crash`) and `capture`.
//!
//! Must not: drive the instance (no polling, no datagram carriage) or read
//! the clock: time is the instant the current input is handled at.

use std::cmp::Reverse;
use std::sync::Arc;

use peerlab_dispersy as dispersy;
use peerlab_lang::PeerSpec;
use peerlab_plugin_api::{MessageSpec, MetricKind, Value};
use rand::RngCore;

use peerlab_run::EventLine;
use peerlab_run::schema::event_kind;

use super::seed::{scaled, scaled_interval};
use super::{State, Timer};
use crate::modules::Services;

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

    /// Checked against the module's declarations; the first mistake with
    /// each name fails the instance, naming the module, the callback and
    /// the scenario line; every one is counted (`metric_errors`).
    fn record_metric(
        &mut self,
        module: usize,
        kind: MetricKind,
        name: &str,
        value: f64,
    ) -> Result<(), String> {
        match self.metrics.record(module, kind, name, value) {
            Ok(()) => Ok(()),
            Err(None) => Err(format!("metric `{name}` was refused before")),
            Err(Some(why)) => {
                let module_name = self.module_name(module).to_string();
                let what = match self.callback.as_str() {
                    "" => "a callback".to_string(),
                    c if c == "create" || c.starts_with("on_") => format!("`{c}`"),
                    c => format!("callback `{c}`"),
                };
                let at = match &self.command {
                    Some((file, line)) => format!(" ({file}:{line})"),
                    None => String::new(),
                };
                let error =
                    format!("module `{module_name}` recorded metric `{name}` in {what}{at}: {why}");
                self.fail(error.clone());
                Err(error)
            }
        }
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
        self.callback.clear();
        self.callback.push_str(what);
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
        self.metrics.reset_counters();
        self.reset_pending = true;
        Ok(())
    }

    fn define_message(&mut self, module: usize, spec: MessageSpec) -> Result<(), String> {
        if self.restarting
            && let Some(id) = self.core.meta_id(spec.name.as_str())
        {
            // `restart`: the module made again defines what it defined
            // before; the core keeps the definition, the new instance gets
            // the deliveries.
            self.message_owner.insert(id, module);
            return Ok(());
        }
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

    fn set_network_bandwidth(
        &mut self,
        loss: f64,
        delay: f64,
        jitter: f64,
        up: Option<f64>,
        down: Option<f64>,
    ) -> Result<(), String> {
        if [up, down]
            .into_iter()
            .flatten()
            .any(|r| r.is_nan() || r <= 0.0)
        {
            return Err(format!(
                "set_network up={up:?} down={down:?}: a bandwidth is above 0 bits per second"
            ));
        }
        self.set_network(loss, delay, jitter)?;
        self.links.set_bandwidth(up, down);
        self.network_event();
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

    fn capture(&mut self) -> Result<(), String> {
        // The driver sees the flag and opens the capture (its own file I/O).
        self.capture = true;
        Ok(())
    }
}
