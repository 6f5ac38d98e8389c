//! A small in-process host for trying modules without a run: behind
//! `peerlab modules --call`. It makes N instances of the loaded modules,
//! runs the given scenario lines in order on each, then fires their timers
//! in virtual time, and reports what they printed, returned and failed.
//!
//! Not the experiment runtime (that is `crate::runtime`): no overlay, no
//! sync server, no wall clock. Output is collected, not written to files.

use std::collections::BTreeMap;
use std::sync::Arc;

use peerlab_lang::{NoIncludes, Vars, parse_scenario};

use super::instances::{Instances, Services};
use super::{BoundCall, Registry};

/// At most this many timers fire per instance (a module re-arming forever
/// cannot hang the harness).
pub const MAX_TIMERS: usize = 10_000;

/// Options of a harness run.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    /// How many instances to make (ids 1..=n).
    pub instances: u64,
    /// Config keys the modules can read.
    pub config: BTreeMap<String, String>,
    /// The run seed; instance seeds derive from it.
    pub seed: u64,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            instances: 1,
            config: BTreeMap::new(),
            seed: 0,
        }
    }
}

/// What a harness run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HarnessReport {
    /// Every event as `[instance] text`, in order.
    pub lines: Vec<String>,
    /// The failures (also in `lines`).
    pub errors: Vec<String>,
}

struct HarnessServices<'a> {
    id: u64,
    count: u64,
    config: &'a BTreeMap<String, String>,
    seed: u64,
    rng: u64,
    now: f64,
    timers: Vec<(f64, u64, usize, u64)>,
    seq: u64,
    vars: BTreeMap<String, String>,
    stopped: bool,
    names: Vec<String>,
    report: &'a mut HarnessReport,
}

impl HarnessServices<'_> {
    fn line(&mut self, text: String) {
        self.report.lines.push(format!("[{}] {text}", self.id));
    }
    fn error(&mut self, text: String) {
        let l = format!("[{}] error: {text}", self.id);
        self.report.errors.push(l.clone());
        self.report.lines.push(l);
    }
}

/// splitmix64 step: the harness's seeded random stream.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Services for HarnessServices<'_> {
    fn instance_id(&self) -> u64 {
        self.id
    }
    fn instance_count(&self) -> u64 {
        self.count
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    fn random_u64(&mut self) -> u64 {
        splitmix(&mut self.rng)
    }
    fn now(&self) -> f64 {
        self.now
    }
    fn print(&mut self, _module: usize, line: &str) {
        self.line(line.to_string());
    }
    fn log(&mut self, module: usize, line: &str) {
        let m = self.names[module].clone();
        self.line(format!("log {m}: {line}"));
    }
    fn annotate(&mut self, _module: usize, text: &str) {
        self.line(format!("annotation at {}: {text}", self.now));
    }
    fn stat_add(&mut self, _module: usize, name: &str, value: f64) {
        self.line(format!("stat {name} += {value}"));
    }
    fn stat_set(&mut self, _module: usize, name: &str, value: f64) {
        self.line(format!("stat {name} = {value}"));
    }
    fn set_timer(&mut self, module: usize, delay: f64, token: u64) {
        self.seq += 1;
        self.timers
            .push((self.now + delay, self.seq, module, token));
    }
    fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.into(), value.into());
    }
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn stop(&mut self) {
        self.stopped = true;
    }
}

/// Parse and bind scenario lines (without their time), e.g. `greet bob times=2`.
pub fn bind_lines(registry: &Registry, lines: &[String]) -> Result<Vec<BoundCall>, Vec<String>> {
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let name = format!("--call #{}", i + 1);
        let (sc, diags) = parse_scenario(
            &name,
            &format!("@0 {line}\n"),
            &mut NoIncludes,
            &Vars::new(),
        );
        errors.extend(
            diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.render_short()),
        );
        for cmd in &sc.commands {
            match registry.bind_command(cmd) {
                Ok(c) => calls.push(c),
                Err(ds) => errors.extend(ds.iter().map(|d| {
                    let mut s = d.render_short();
                    if let Some(h) = &d.help {
                        s.push_str(&format!(" (help: {h})"));
                    }
                    s
                })),
            }
        }
    }
    if errors.is_empty() {
        Ok(calls)
    } else {
        Err(errors)
    }
}

/// Run bound calls on `opts.instances` instances and collect what happened.
pub fn run(registry: Arc<Registry>, calls: &[BoundCall], opts: &HarnessOptions) -> HarnessReport {
    let mut report = HarnessReport::default();
    let names: Vec<String> = registry.modules().iter().map(|m| m.name.clone()).collect();
    for id in 1..=opts.instances.max(1) {
        let seed = splitmix(&mut (opts.seed ^ id.wrapping_mul(0xA24B_AED4_963E_E407)));
        let mut s = HarnessServices {
            id,
            count: opts.instances.max(1),
            config: &opts.config,
            seed,
            rng: seed,
            now: 0.0,
            timers: Vec::new(),
            seq: 0,
            vars: BTreeMap::new(),
            stopped: false,
            names: names.clone(),
            report: &mut report,
        };
        let mut inst = match Instances::new(Arc::clone(&registry), &mut s) {
            Ok(i) => i,
            Err(e) => {
                s.error(e);
                continue;
            }
        };
        for e in inst.on_start(&mut s) {
            s.error(e);
        }
        for call in calls {
            if s.stopped {
                break;
            }
            match inst.call(&mut s, call) {
                Ok(Some(v)) => s.line(format!("{call} returned {v}")),
                Ok(None) => {}
                Err(e) => s.error(e),
            }
        }
        let mut fired = 0;
        while !s.stopped && fired < MAX_TIMERS {
            let Some(next) = s
                .timers
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.0.total_cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (due, _, module, token) = s.timers.swap_remove(next);
            s.now = s.now.max(due);
            fired += 1;
            if let Err(e) = inst.on_timer(&mut s, module, token) {
                s.error(e);
            }
        }
        if fired == MAX_TIMERS {
            s.error(format!("stopped after {MAX_TIMERS} timers"));
        }
        for e in inst.on_stop(&mut s) {
            s.error(e);
        }
    }
    report
}
