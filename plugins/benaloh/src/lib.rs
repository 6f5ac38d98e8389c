//! `benaloh`: the Benaloh secret-sharing experiment of the Gumby workshop,
//! as a peerlab plugin.
//!
//! Every instance splits a secret into n-1 shares mod M, sends one to each
//! other instance (`local-share`), broadcasts the sum of the shares it
//! received (`broadcast-share`), and adds up all n subset sums: the total is
//! the sum of all secrets mod M, without anyone revealing theirs.
//!
//! This file is the thin glue between the host and the protocol: the
//! callbacks, the two message definitions, payloads, printing and the
//! verdict hook. The protocol itself (shares, buffering, duplicates,
//! missing-share detection, arithmetic) is the pure state machine in
//! [`protocol`]; the verdict's logic is [`verdict`]. It depends only on
//! `peerlab-plugin-api` and does no I/O except through the host.

pub mod payload;
pub mod protocol;
pub mod verdict;

use peerlab_plugin_api::{
    Authentication, Destination, Distribution, Host, IncomingMessage, MessageSpec, Outputs,
    Verdict, module,
};

use crate::protocol::{Action, Armed, Kind, Protocol, Receipt, Share, Shared};
use crate::verdict::{MODULUS_LINE, SECRET_LINE, TOTAL_LINE, UNKNOWN};

/// The message carrying one share to one instance.
pub const LOCAL_SHARE: &str = "local-share";
/// The message carrying an instance's subset sum to everyone.
pub const BROADCAST_SHARE: &str = "broadcast-share";
/// The gossip fanout of `broadcast-share` unless the config key
/// `broadcast_fanout` sets another.
pub const DEFAULT_FANOUT: u32 = 10;
/// The annotation an instance records, once, at the moment its total
/// becomes known (in its events, for people and reports; `peerlab bench
/// benaloh` times the protocol with [`TIME_TO_TOTAL`], as the module's
/// `bench(..)` declaration says).
pub const TOTAL_KNOWN: &str = "benaloh: total known";
/// The observation recorded with [`TOTAL_KNOWN`]: scenario seconds from
/// the instance's first `share_local` to knowing the total.
pub const TIME_TO_TOTAL: &str = "time_to_total";

/// The Benaloh module of one instance.
#[derive(Debug)]
pub struct Benaloh {
    proto: Protocol,
    /// The secret came from the config or a keyword argument (not drawn).
    secret_given: bool,
    /// The [`TOTAL_KNOWN`] annotation was recorded.
    total_noted: bool,
    /// Scenario time of the first `share_local`, for `time_to_total`.
    shared_at: Option<f64>,
    /// Messages refused so far (all counted in `benaloh_rejected`; only
    /// some logged, so a flood of junk cannot flood the log).
    rejections: u64,
}

/// Every rejection up to this many is logged; after that only the 2^k-th.
const REJECTIONS_LOGGED: u64 = 10;

/// Read a config key as a whole number in `min..`.
fn config_u64(host: &Host, key: &str, min: u64) -> Result<Option<u64>, String> {
    match host.config_parse::<u64>(key)? {
        Some(v) if v < min => Err(format!(
            "config key `{key}` = {v} is too small: use {min} or more"
        )),
        v => Ok(v),
    }
}

/// A keyword argument that must be a whole number in `min..`.
fn kwarg_u64(name: &str, v: Option<i64>, min: u64) -> Result<Option<u64>, String> {
    match v {
        Some(x) if x < 0 || (x as u64) < min => Err(format!(
            "keyword argument `{name}={x}` is out of range: use {min} or more"
        )),
        v => Ok(v.map(|x| x as u64)),
    }
}

impl Benaloh {
    /// Apply `modulus=` / `secret=` keyword arguments; a drawn secret is
    /// drawn again below a new modulus.
    fn apply_kwargs(
        &mut self,
        host: &mut Host,
        modulus: Option<i64>,
        secret: Option<i64>,
    ) -> Result<(), String> {
        let new_m = kwarg_u64("modulus", modulus, 2)?;
        let new_s = kwarg_u64("secret", secret, 0)?;
        let m = new_m.unwrap_or(self.proto.modulus());
        let s = match new_s {
            Some(s) => s,
            None if m != self.proto.modulus() && !self.secret_given => host.random_below(m),
            None => self.proto.secret(),
        };
        self.proto.configure(m, s).map_err(|e| e.to_string())?;
        if new_s.is_some() {
            self.secret_given = true;
        }
        if let Some(m) = new_m {
            // The verdict reads the modulus from here, since the config does not have it.
            host.print(format!("{MODULUS_LINE}{m}"));
        }
        self.flush(host)?;
        // A new modulus may make shares that arrived with it usable.
        self.note_total(host);
        Ok(())
    }

    /// Carry out what the protocol asked for. Every send is attempted; the
    /// error names all that failed.
    fn flush(&mut self, host: &mut Host) -> Result<(), String> {
        let (me, m) = (self.proto.me(), self.proto.modulus());
        let mut failed = Vec::new();
        while let Some(action) = self.proto.poll_action() {
            let (message, kind, value, to) = match action {
                Action::SendLocalShare { to, value } => {
                    (LOCAL_SHARE, Kind::LocalShare, value, vec![to])
                }
                Action::BroadcastSubsetSum { value } => {
                    host.log(format!("broadcasting subset sum {value}"));
                    host.stat_add("benaloh_subset_sums_out", 1.0);
                    host.counter_add("broadcast_shares_out", 1.0);
                    (BROADCAST_SHARE, Kind::SubsetSum, value, Vec::new())
                }
            };
            let bytes = payload::encode(
                kind,
                Share {
                    origin: me,
                    modulus: m,
                    value,
                },
            );
            match host.overlay().send(message, bytes, &to) {
                Ok(()) if kind == Kind::LocalShare => {
                    host.stat_add("benaloh_local_shares_out", 1.0);
                    host.counter_add("local_shares_out", 1.0);
                }
                Ok(()) => {}
                // the host's error usually names the message and receiver already
                Err(e) => failed.push(match to.first() {
                    Some(i) if !e.contains(&format!("instance {i}")) => {
                        format!("{message} to instance {i}: {e}")
                    }
                    None if !e.contains(message) => format!("{message}: {e}"),
                    _ => e,
                }),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "could not send {} (run share_local again to resend)",
                failed.join("; ")
            ))
        }
    }

    /// Record [`TOTAL_KNOWN`] the first time the total is known. O(1) until
    /// every share has arrived, so it can run after every message.
    fn note_total(&mut self, host: &mut Host) {
        if self.total_noted {
            return;
        }
        let (c, others) = (self.proto.counters(), self.proto.n() - 1);
        if c.local_accepted < others || c.sums_accepted < others {
            return;
        }
        if self.proto.total().is_ok() {
            self.total_noted = true;
            host.annotate(TOTAL_KNOWN);
            // The total needs every other instance's subset sum, and theirs
            // need this instance's local share: share_local ran before.
            if let Some(at) = self.shared_at {
                host.observe(TIME_TO_TOTAL, (host.now() - at).max(0.0));
            }
        }
    }

    /// Count a refused message and log why, rate-limited: the first
    /// [`REJECTIONS_LOGGED`], then every time the count doubles.
    fn reject(&mut self, host: &mut Host, why: impl FnOnce() -> String) {
        host.stat_add("benaloh_rejected", 1.0);
        self.rejections += 1;
        let n = self.rejections;
        if n <= REJECTIONS_LOGGED {
            host.log(why());
        } else if n.is_power_of_two() {
            host.log(format!(
                "{} ({n} messages rejected so far; only some are logged, all are counted in benaloh_rejected)",
                why()
            ));
        }
    }

    fn arm(&mut self, host: &mut Host, how: &str) -> Result<(), String> {
        match self.proto.share_subset_sum() {
            Armed::Broadcast(_) => {}
            Armed::AlreadyBroadcast(v) => {
                host.log(format!("{how}: subset sum {v} was already broadcast"))
            }
            Armed::Waiting(missing) => host.log(format!(
                "{how}: the subset sum is broadcast once complete ({missing})"
            )),
        }
        self.flush(host)
    }
}

/// The Benaloh secret-sharing experiment (Gumby workshop): sum secrets without revealing them.
#[module(
    name = "benaloh",
    config = [
        "modulus: the modulus M of every sum (default 2^31-1)",
        "secret: this instance's secret, instead of a seeded random one",
        "broadcast_fanout: peers each subset-sum broadcast is sent to first; catch-up sync brings it to the rest (default 10)",
    ],
    metrics = [
        observation(time_to_total, unit = "s", headline,
            "scenario time from this instance's share_local to knowing the total"),
        counter(local_shares_out, unit = "shares", "local shares sent"),
        counter(broadcast_shares_out, unit = "shares", "subset sums broadcast"),
        counter(local_shares_in, unit = "shares", "local shares accepted"),
        counter(broadcast_shares_in, unit = "shares", "subset sums accepted"),
    ],
    // `peerlab bench benaloh`: automatic mode, timed by time_to_total.
    bench(
        about = "the Benaloh protocol in automatic mode",
        protocol = "the Benaloh protocol",
        modules = ["gumby.modules.dispersy_module.DispersyModule"],
        community = "BenalohCommunity",
        start = "share_local auto=true",
        end = ["print_local_value", "print_total_sum"],
        done = time_to_total,
        messages = ["local-share", "broadcast-share"],
        fanout = "broadcast_fanout",
        help = "Each instance sends its subset sum to every peer (--fanout N-1), as the py-ipv8 reference does.\n\
                An instance is done when it knows the total; a run is correct when every instance printed the\n\
                same total and it is the sum of the printed secrets.",
    )
)]
impl Benaloh {
    /// Draw (or read) the secret and define the two messages.
    #[create]
    fn new(host: &mut Host) -> Result<Self, String> {
        let modulus = config_u64(host, "modulus", 2)?.unwrap_or(protocol::DEFAULT_MODULUS);
        let fanout = config_u64(host, "broadcast_fanout", 1)?.unwrap_or(DEFAULT_FANOUT as u64);
        let fanout = u32::try_from(fanout)
            .map_err(|_| format!("config key `broadcast_fanout` = {fanout} is too large"))?;
        let given = config_u64(host, "secret", 0)?;
        let secret = match given {
            Some(s) => s,
            None => host.random_below(modulus),
        };
        let proto = Protocol::new(host.instance_id(), host.instance_count(), modulus, secret)
            .map_err(|e| e.to_string())?;
        let defs = [
            MessageSpec::new(
                LOCAL_SHARE,
                Authentication::NONE,
                Distribution::DIRECT,
                Destination::Candidate,
            ),
            MessageSpec::new(
                BROADCAST_SHARE,
                Authentication::MEMBER,
                Distribution::FULL_SYNC,
                Destination::Community { fanout },
            ),
        ];
        for d in defs {
            let name = d.name.to_string();
            host.overlay()
                .define_message(d)
                .map_err(|e| format!("cannot define message `{name}`: {e}"))?;
        }
        Ok(Benaloh {
            proto,
            secret_given: given.is_some(),
            total_noted: false,
            shared_at: None,
            rejections: 0,
        })
    }

    /// Split the secret into n-1 shares and send one to each other instance (again: resend the same).
    #[callback]
    fn share_local(
        &mut self,
        host: &mut Host,
        #[kw(help = "the modulus M (default: config key `modulus`, else 2^31-1)")] modulus: Option<
            i64,
        >,
        #[kw(help = "this instance's secret (default: config key `secret`, else random)")]
        secret: Option<i64>,
        #[kw(help = "broadcast the subset sum as soon as it is complete")] auto: Option<bool>,
    ) -> Result<(), String> {
        self.shared_at.get_or_insert(host.now());
        self.apply_kwargs(host, modulus, secret)?;
        let me = self.proto.me();
        let mut draw = |m: u64| host.random_below(m);
        let what = self.proto.share_local(&mut draw);
        if what == Shared::Resent {
            host.log(format!("instance {me}: resending the same local shares"));
        }
        self.flush(host)?;
        if auto == Some(true) {
            self.arm(host, "auto")?;
        }
        Ok(())
    }

    /// Broadcast the sum of the local shares received (as soon as all n-1 are here).
    #[callback]
    fn share_subset_sum(&mut self, host: &mut Host) -> Result<(), String> {
        self.arm(host, "share_subset_sum")
    }

    /// Automatic mode: broadcast the subset sum as soon as all local shares arrived.
    #[callback]
    fn auto_share(
        &mut self,
        host: &mut Host,
        #[kw(help = "the modulus M (default: config key `modulus`, else 2^31-1)")] modulus: Option<
            i64,
        >,
        #[kw(help = "this instance's secret (default: config key `secret`, else random)")]
        secret: Option<i64>,
    ) -> Result<(), String> {
        self.apply_kwargs(host, modulus, secret)?;
        self.arm(host, "auto_share")
    }

    /// Print `My secret value is <s>`.
    #[callback]
    fn print_local_value(&mut self, host: &mut Host) {
        let s = self.proto.reveal_secret();
        host.print(format!("{SECRET_LINE}{s}"));
    }

    /// Print `My computed sum is <total>`, or which shares are missing.
    #[callback]
    fn print_total_sum(&mut self, host: &mut Host) {
        match self.proto.total() {
            Ok(t) => host.print(format!("{TOTAL_LINE}{t}")),
            Err(missing) => host.print(format!("{TOTAL_LINE}{UNKNOWN}: {missing}")),
        }
    }

    /// The tutorial's first exercise: print VALUE + 1.
    #[callback]
    fn exercise_1(&mut self, host: &mut Host, value: i64) {
        host.print(value as i128 + 1);
    }

    #[on_message]
    fn message(&mut self, host: &mut Host, message: &IncomingMessage) -> Result<(), String> {
        let kind = match message.name.as_str() {
            LOCAL_SHARE => Kind::LocalShare,
            BROADCAST_SHARE => Kind::SubsetSum,
            _ => return Ok(()),
        };
        let share = match payload::decode(kind, &message.payload) {
            Ok(s) => s,
            Err(e) => {
                let sender = message.sender;
                self.reject(host, || {
                    format!("rejected a {} from instance {sender}: {e}", kind.noun())
                });
                return Ok(());
            }
        };
        let receipt = match kind {
            Kind::LocalShare => self.proto.receive_local_share(message.sender, share),
            Kind::SubsetSum => self
                .proto
                .receive_subset_sum(message.verified_author(), share),
        };
        match receipt {
            Receipt::Accepted => {
                let (stat, metric) = match kind {
                    Kind::LocalShare => ("benaloh_local_shares_in", "local_shares_in"),
                    Kind::SubsetSum => ("benaloh_subset_sums_in", "broadcast_shares_in"),
                };
                host.stat_add(stat, 1.0);
                host.counter_add(metric, 1.0);
                self.note_total(host);
            }
            Receipt::Duplicate => host.stat_add("benaloh_duplicates", 1.0),
            Receipt::OwnEcho => {}
            Receipt::Rejected(why) => self.reject(host, || format!("rejected: {why}")),
        }
        self.flush(host)
    }

    #[on_stop]
    fn stopping(&mut self, host: &mut Host) {
        let c = self.proto.counters();
        host.log(format!(
            "{} local shares and {} subset sums taken, {} duplicates, {} rejected",
            c.local_accepted, c.sums_accepted, c.duplicates, c.rejected
        ));
    }

    /// Every instance printed the same total, and it is the sum of the printed secrets mod M.
    #[check]
    fn verdicts(outputs: &Outputs) -> Vec<Verdict> {
        let lines: Vec<(u64, Vec<String>)> = outputs
            .instance_ids()
            .into_iter()
            .map(|i| (i, outputs.lines(i)))
            .collect();
        verdict::judge(&lines, outputs.config("modulus").as_deref())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench_tests;
