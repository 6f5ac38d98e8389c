//! A benchmark workload a module declares (since 1.5): what `peerlab bench
//! <module>` runs and how it reads the run folder afterwards. [`Bench`] is
//! the Rust-side declaration (`Module::BENCH`, written by
//! `#[module(bench(...))]`); [`BenchSpec`] is what crosses the boundary,
//! an abi_stable prefix type (fields are only ever appended, so a newer
//! host reads an older plugin's declaration and sees the fields it lacks
//! as absent).
//!
//! Must not: know how the host runs or measures (the host generates the
//! scenario and reads the run folder); the names here are the module's
//! own (its commands, its declared observation, its message names, its
//! config key).

// abi_stable's generated name (`BenchSpec_Ref`) is kept as it is.
#![allow(non_camel_case_types)]

use abi_stable::StableAbi;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RSlice, RStr};

/// A benchmark workload, as a module declares it (`Module::BENCH`).
///
/// `peerlab bench <module>` generates a scenario from it: the `modules`
/// (then the module itself) loaded with `&module`, `@@ isolate_community
/// <community>`, `@0 start_session`, `@0 introduce_peers`, the `start`
/// line at scenario second 1 and every `end` command at the deadline. It
/// sets `<fanout> = N-1` (or `--fanout`) in the run's config. Afterwards
/// it reads the run folder:
///
/// - the protocol window runs from the earliest `start` command (the first
///   word of `start`, as the instances' events record it) to the moment the
///   last instance was done: each instance records the observation `done`
///   once, the scenario seconds from its own first `start` command to being
///   done, so it was done at that command's time plus the observation;
/// - an instance that never recorded `done` did not finish the protocol;
/// - the messages are the datagrams of the `messages` types the instances
///   sent (their `msg_out/<type>` statistics, resends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bench {
    /// What the workload runs, in a few words (`the Benaloh protocol in
    /// automatic mode`): the generated scenario's header and the command's
    /// help.
    pub about: &'static str,
    /// The protocol's name in error messages (`the Benaloh protocol needs at
    /// least 2 instances`).
    pub protocol: &'static str,
    /// Modules loaded before this one, as `&module` names them (the overlay:
    /// `dispersy` or Gumby's `gumby.modules.dispersy_module.DispersyModule`).
    pub modules: &'static [&'static str],
    /// The community the scenario isolates (`@@ isolate_community`; empty:
    /// no such line).
    pub community: &'static str,
    /// The scenario line that starts the protocol, command and arguments
    /// (`share_local auto=true`); its command marks the window's start.
    pub start: &'static str,
    /// Commands run at the deadline, in order (printing results the
    /// verdicts judge).
    pub end: &'static [&'static str],
    /// An observation this module declares and records once per instance:
    /// scenario seconds from the instance's first `start` command to being
    /// done (`time_to_total`).
    pub done: &'static str,
    /// The message types counted as the protocol's messages (names given to
    /// `define_message`).
    pub messages: &'static [&'static str],
    /// The config key for the number of peers each broadcast goes to
    /// (empty: the workload has none, and `--fanout` is refused).
    pub fanout: &'static str,
    /// More help for `peerlab bench <module> --help`: what the figures mean
    /// in the protocol's own terms (may be empty).
    pub help: &'static str,
}

/// A benchmark workload across the boundary (since 1.5): the root
/// module's `bench` field points at one. See [`Bench`] for each field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BenchSpec_Ref)))]
pub struct BenchSpec {
    /// [`Bench::about`].
    pub about: RStr<'static>,
    /// [`Bench::protocol`].
    pub protocol: RStr<'static>,
    /// [`Bench::modules`].
    pub modules: RSlice<'static, RStr<'static>>,
    /// [`Bench::community`].
    pub community: RStr<'static>,
    /// [`Bench::start`].
    pub start: RStr<'static>,
    /// [`Bench::end`].
    pub end: RSlice<'static, RStr<'static>>,
    /// [`Bench::done`].
    pub done: RStr<'static>,
    /// [`Bench::messages`].
    pub messages: RSlice<'static, RStr<'static>>,
    /// [`Bench::fanout`].
    pub fanout: RStr<'static>,
    /// [`Bench::help`].
    #[sabi(last_prefix_field)]
    pub help: RStr<'static>,
}

fn strs(items: &[&'static str]) -> RSlice<'static, RStr<'static>> {
    let v: Vec<RStr<'static>> = items.iter().map(|s| RStr::from_str(s)).collect();
    RSlice::from_slice(Box::leak(v.into_boxed_slice()))
}

impl Bench {
    /// The declaration across the boundary (leaked once per root module;
    /// libraries are never unloaded).
    pub fn to_spec(&self) -> BenchSpec_Ref {
        BenchSpec {
            about: RStr::from_str(self.about),
            protocol: RStr::from_str(self.protocol),
            modules: strs(self.modules),
            community: RStr::from_str(self.community),
            start: RStr::from_str(self.start),
            end: strs(self.end),
            done: RStr::from_str(self.done),
            messages: strs(self.messages),
            fanout: RStr::from_str(self.fanout),
            help: RStr::from_str(self.help),
        }
        .leak_into_prefix()
    }

    /// The command of [`Bench::start`] (its first word).
    pub fn start_command(&self) -> &'static str {
        self.start.split_whitespace().next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_crosses_the_boundary_unchanged() {
        let b = Bench {
            about: "pings in a ring",
            protocol: "the ring",
            modules: &["dispersy"],
            community: "RingCommunity",
            start: "ping_all rounds=2",
            end: &["print_rtt"],
            done: "ring_time",
            messages: &["ping", "pong"],
            fanout: "",
            help: "",
        };
        let s = b.to_spec();
        assert_eq!(s.about().as_str(), "pings in a ring");
        assert_eq!(s.start().as_str(), "ping_all rounds=2");
        let messages: Vec<&str> = s.messages().iter().map(|m| m.as_str()).collect();
        assert_eq!(messages, ["ping", "pong"]);
        assert_eq!(s.end().len(), 1);
        assert_eq!(b.start_command(), "ping_all");
    }
}
