//! The built-in `core` module: Gumby's client callbacks (`echo`,
//! `annotate`, `set`, `stop`) and the fault commands (`set_network`,
//! `partition`, `heal`, `crash`), `capture` and the presence commands
//! (`leave`, `join`, `restart`, `churn`), always loaded. Written with the same
//! `#[module]` macro as any plugin; everything it does goes through the host
//! context, except the presence commands: they change the instance itself
//! (its modules, its overlay session), so the instance runs them
//! (`crate::presence`) and their bodies here only answer calls made outside
//! a run (`peerlab modules --call`, `TestHost`).

use std::time::Duration;

use peerlab_lang::network::parse_bandwidth;
use peerlab_lang::{Command, Diagnostic};
use peerlab_plugin_api::{Host, ModuleRoot_Ref, module};

/// The root module of the built-in `core` module, as a plugin's
/// `peerlab_root_module` would give it.
pub fn peerlab_root_module() -> ModuleRoot_Ref {
    peerlab_plugin_api::root_module_for::<Core>()
}

/// The `core` module (stateless).
#[derive(Debug, Default)]
pub struct Core;

/// Gumby's client callbacks (echo, annotate, set, stop), network faults (set_network, partition, heal, crash), presence (leave, join, restart, churn) and packet capture (capture).
#[module(
    name = "core",
    export = false,
    // The host counts these itself (`crate::metrics`); declared here so
    // run.json lists it like any metric, under its own name.
    metrics = [
        counter(
            metric_errors,
            unit = "records",
            "metric records the host refused: an undeclared name, another kind's method, a bad value"
        ),
        gauge(
            online,
            unit = "instances",
            "1 while the instance is online, 0 while it is away (leave, churn); recorded in runs whose scenario uses leave, join, restart or churn"
        ),
    ]
)]
impl Core {
    /// Print the words to the instance's output: `echo WORD...`.
    #[callback]
    fn echo(&mut self, host: &mut Host, #[rest] words: Vec<String>) {
        host.print(words.join(" "));
    }

    /// Record an annotation at the current time: `annotate TEXT...`.
    #[callback]
    fn annotate(&mut self, host: &mut Host, text: String, #[rest] more: Vec<String>) {
        let mut t = text;
        for w in more {
            t.push(' ');
            t.push_str(&w);
        }
        host.annotate(t);
    }

    /// Set a scenario variable (a string), as Gumby's `set NAME VALUE`.
    #[callback]
    fn set(&mut self, host: &mut Host, name: String, value: String) {
        host.set_var(&name, &value);
    }

    /// Stop this instance.
    #[callback]
    fn stop(&mut self, host: &mut Host) {
        host.stop();
    }

    /// Lose, delay and limit this instance's traffic: `set_network loss=0.1 delay=50ms jitter=10ms up=10Mbit down=50Mbit`.
    #[callback]
    fn set_network(
        &mut self,
        host: &mut Host,
        #[kw(default = 0.0, help = "probability that a datagram is lost")] loss: f64,
        #[kw(default = Duration::ZERO, help = "extra one-way delay")] delay: Duration,
        #[kw(default = Duration::ZERO, help = "extra delay, uniform in [0, jitter)")]
        jitter: Duration,
        #[kw(
            default = String::new(),
            help = "upload capacity, e.g. 10Mbit or unlimited (default: the run's network_up)"
        )]
        up: String,
        #[kw(
            default = String::new(),
            help = "download capacity, e.g. 50Mbit or unlimited (default: the run's network_down)"
        )]
        down: String,
    ) -> Result<(), String> {
        if !(0.0..=1.0).contains(&loss) {
            return Err(format!("loss={loss}: a probability between 0 and 1"));
        }
        let rate = |name: &str, text: &str| -> Result<Option<f64>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            parse_bandwidth(text)
                .map(Some)
                .map_err(|e| format!("{name}={text}: {e}"))
        };
        let (up, down) = (rate("up", &up)?, rate("down", &down)?);
        host.set_network_bandwidth(loss, delay, jitter, up, down)
    }

    /// Split the network into groups that only reach each other: `partition {1-3} {4-5}`.
    #[callback]
    fn partition(&mut self, host: &mut Host, #[rest] groups: Vec<String>) -> Result<(), String> {
        if groups.is_empty() {
            return Err("name the groups: `partition {1-3} {4-5}` (or `heal` to undo)".into());
        }
        let groups: Vec<String> = groups
            .iter()
            .map(|g| {
                g.trim()
                    .trim_start_matches('{')
                    .trim_end_matches('}')
                    .to_string()
            })
            .collect();
        host.partition(&groups)
    }

    /// Undo `partition`: every instance reaches every other again.
    #[callback]
    fn heal(&mut self, host: &mut Host) -> Result<(), String> {
        host.partition(&[])
    }

    /// Stop this instance at once, without a goodbye: `crash {2}`.
    #[callback]
    fn crash(&mut self, host: &mut Host) -> Result<(), String> {
        host.crash()
    }

    /// Write this instance's datagrams from now on to `<ID>.pcap` in the run folder: `capture {3}`.
    #[callback]
    fn capture(&mut self, host: &mut Host) -> Result<(), String> {
        host.capture()
    }

    /// Leave gracefully (stop_session, then gone; same identity when it comes back): `leave {2}`.
    #[callback]
    fn leave(&mut self, _host: &mut Host) -> Result<(), String> {
        outside_a_run("leave", &[])
    }

    /// Come back after `leave`, as it was (modules' memory and timers kept): `join store=kept {2}`.
    #[callback]
    fn join(
        &mut self,
        _host: &mut Host,
        #[kw(
            help = "kept (default): the overlay store it left with; empty: catch up like a new peer"
        )]
        store: Option<String>,
    ) -> Result<(), String> {
        outside_a_run("join", &[(Some("store"), store)])
    }

    /// Come back as a restarted process with the same key (fresh modules): `restart store=empty {2}`.
    #[callback]
    fn restart(
        &mut self,
        _host: &mut Host,
        #[kw(
            help = "kept (default): the overlay store it left with; empty: catch up like a new peer"
        )]
        store: Option<String>,
    ) -> Result<(), String> {
        outside_a_run("restart", &[(Some("store"), store)])
    }

    /// Churn: sessions and downtimes drawn from the run seed: `churn session=exp(10m) downtime=exp(2m) {3-100}`; `churn off`.
    #[callback]
    fn churn(
        &mut self,
        _host: &mut Host,
        #[kw(
            help = "how long the instance stays: exp(MEAN), uniform(LOW,HIGH), weibull(SHAPE,SCALE), pareto(SHAPE,MIN) or a duration"
        )]
        session: Option<String>,
        #[kw(help = "how long it stays away, same forms as session")] downtime: Option<String>,
        #[kw(help = "kept (default) or empty: the store it comes back with")] store: Option<String>,
        #[kw(help = "restart (default: fresh modules) or join (as it was)")] rejoin: Option<String>,
        #[rest] words: Vec<String>,
    ) -> Result<(), String> {
        let mut all = vec![
            (Some("session"), session),
            (Some("downtime"), downtime),
            (Some("store"), store),
            (Some("rejoin"), rejoin),
        ];
        all.extend(words.into_iter().map(|w| (None, Some(w))));
        outside_a_run("churn", &all)
    }
}

/// A presence command called outside a run: its arguments are checked as
/// the instance checks them, then it says it needs a run.
fn outside_a_run(callback: &str, args: &[(Option<&str>, Option<String>)]) -> Result<(), String> {
    let words: Vec<crate::churn::Word<'_>> = args
        .iter()
        .filter_map(|(k, v)| Some((*k, v.as_deref()?)))
        .collect();
    crate::churn::parse_command(callback, &words).map_err(|(_, e)| e)?;
    Err(format!(
        "`{callback}` changes a running instance: it needs a run (peerlab run, simulated or not)"
    ))
}

/// What binding cannot see in a `core` command: the units and ranges of
/// values taken as text (`set_network up=`/`down=`) and the loss range,
/// each refused at its word (file:line:col).
pub fn check_command(callback: &str, cmd: &Command) -> Vec<Diagnostic> {
    if callback != "set_network" {
        return Vec::new();
    }
    let mut diags = Vec::new();
    for k in &cmd.kwargs {
        let why = match k.name.as_str() {
            "up" | "down" => parse_bandwidth(&k.value).err().map(|e| e.to_string()),
            "loss" => k
                .value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|l| !(0.0..=1.0).contains(l))
                .map(|_| format!("`{}` is not a probability between 0 and 1", k.value)),
            _ => None,
        };
        if let Some(why) = why {
            diags.push(
                Diagnostic::error(format!("core.set_network: {}={}: {why}", k.name, k.value))
                    .with_code("bad-argument")
                    .at(k.loc.clone()),
            );
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::testing::TestHost;

    #[test]
    fn core_callbacks_use_the_host() {
        let mut th = TestHost::new(1, 2);
        let mut c = Core;
        c.echo(&mut th.host(), vec!["a".into(), "b".into()]);
        c.annotate(&mut th.host(), "start".into(), vec!["now".into()]);
        c.set(&mut th.host(), "x".into(), "1".into());
        c.stop(&mut th.host());
        assert_eq!(th.prints, ["a b"]);
        assert_eq!(th.annotations, [(0.0, "start now".to_string())]);
        assert_eq!(th.vars.get("x").map(String::as_str), Some("1"));
        assert!(th.stopped);
    }
}
