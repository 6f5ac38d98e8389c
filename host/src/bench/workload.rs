//! [`BenchWorkload`]: what `peerlab bench` needs to know about the protocol
//! it measures, and the ONE place in the host that names a plugin's
//! commands, annotations and messages ([`BENALOH`]).
//!
//! Why the names are here and not read from the plugin: a plugin declares
//! its callbacks and config keys, but not yet the annotations it records or
//! the messages it counts (module metrics, issue #16). Until it does, the
//! workload description carries them; everything else in [`crate::bench`]
//! reads only this description and the run folder. What the plugin does
//! declare is checked against it before measuring (the commands bind, the
//! fanout key is one of its config keys); the annotation and message types
//! cannot be checked yet.
//!
//! The subcommand's help (`cmd/bench.rs` takes [`BENALOH_HELP`] from here)
//! describes the protocol in the same names. What is left in `cmd/bench.rs`
//! is the subcommand's name and its flags' one-line helps (`--fanout` names
//! the config key), which `peerlab bench --help` shows.
//!
//! Must not: run, time or measure anything.

/// A protocol `peerlab bench` can measure, as a generated scenario and the
/// names that delimit and count it in the run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchWorkload {
    /// `peerlab bench <name>` and the experiment name prefix.
    pub name: &'static str,
    /// The protocol, in messages (`the Benaloh protocol needs ...`).
    pub protocol: &'static str,
    /// What the generated scenario runs, for its header line.
    pub about: &'static str,
    /// The plugin that must be built (`lib<plugin>.so`).
    pub plugin: &'static str,
    /// The modules the generated scenario loads, as written in it.
    pub modules: &'static [&'static str],
    /// The community the scenario isolates.
    pub community: &'static str,
    /// The scenario command whose earliest occurrence starts the protocol window.
    pub start_command: &'static str,
    /// The scenario line (command and arguments) run at [`SHARE_AT`].
    pub start_line: &'static str,
    /// Commands run at the deadline, in order.
    pub end_commands: &'static [&'static str],
    /// The annotation an instance records, once, when it is done; the
    /// window ends at the last one.
    pub done_annotation: &'static str,
    /// The message types counted as the protocol's messages (datagrams sent,
    /// the `msg_out/<type>` counters).
    pub message_types: &'static [&'static str],
    /// The config key for the number of peers each broadcast goes to.
    pub fanout_key: &'static str,
}

/// The Benaloh protocol in automatic mode (every instance broadcasts its
/// subset sum as soon as its local shares are in). The names are the
/// benaloh plugin's (`plugins/benaloh/src/lib.rs`: `TOTAL_KNOWN`,
/// `LOCAL_SHARE`, `BROADCAST_SHARE`, `broadcast_fanout`).
pub const BENALOH: BenchWorkload = BenchWorkload {
    name: "benaloh",
    protocol: "the Benaloh protocol",
    about: "the Benaloh protocol in automatic mode",
    plugin: "benaloh",
    modules: &["gumby.modules.dispersy_module.DispersyModule", "benaloh"],
    community: "BenalohCommunity",
    start_command: "share_local",
    start_line: "share_local auto=true",
    end_commands: &["print_local_value", "print_total_sum"],
    done_annotation: "benaloh: total known",
    message_types: &["local-share", "broadcast-share"],
    fanout_key: "broadcast_fanout",
};

/// `peerlab bench benaloh --help`'s closing text: examples, and what the
/// figures mean in the protocol's own terms (its commands and messages).
pub const BENALOH_HELP: &str = "Examples:
  peerlab bench benaloh                                  # N = 100, 400, 1000, all in one process
  peerlab bench benaloh --peers 100 --processes 100      # one process per instance
  peerlab bench benaloh --peers 400 --shared-verification both --json

Each instance sends its subset sum to every peer (--fanout N-1), as the py-ipv8 reference does.
The protocol wall time runs from the first `share_local` to the moment the last instance knows its total.
Messages are the local-share and broadcast-share datagrams sent; CPU is the instance processes' user+system
time within that window; peak RSS is summed over the instance processes.
Needs the benaloh plugin: run `cargo build --release --workspace` first.
Exit status: 0 when every run computed the right total, 1 when one did not, 2 when it could not run.";

/// Scenario time of the start command: every instance has its peers by then.
pub const SHARE_AT: f64 = 1.0;

/// Scenario seconds after which instances print and end, by default.
pub fn default_deadline(n: u32) -> f64 {
    (6.0 + f64::from(n) / 50.0).ceil()
}

/// `75` -> `1:15`, `8.5` -> `8.5` (scenario times).
pub fn scenario_time(secs: f64) -> String {
    let m = (secs / 60.0).floor();
    let s = secs - m * 60.0;
    if m >= 1.0 {
        format!("{}:{}{}", m as u64, if s < 10.0 { "0" } else { "" }, s)
    } else {
        format!("{s}")
    }
}

impl BenchWorkload {
    /// The generated scenario: the start line at [`SHARE_AT`], the end
    /// commands at `deadline`.
    pub fn scenario_text(&self, deadline: f64) -> String {
        let end = scenario_time(deadline);
        let mut s = format!(
            "# Generated by `peerlab bench {}`: {}.\n",
            self.name, self.about
        );
        for m in self.modules {
            s.push_str(&format!("&module {m}\n"));
        }
        s.push_str(&format!("@@ isolate_community {}\n", self.community));
        s.push_str("@0 start_session\n@0 introduce_peers\n");
        s.push_str(&format!(
            "@{} {}\n",
            scenario_time(SHARE_AT),
            self.start_line
        ));
        for c in self.end_commands {
            s.push_str(&format!("@{end} {c}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_shares_early_and_ends_at_the_deadline() {
        let s = BENALOH.scenario_text(75.0);
        assert!(s.contains("@1 share_local auto=true\n"), "{s}");
        assert!(s.contains("@1:15 print_total_sum\n"), "{s}");
        assert_eq!(scenario_time(8.5), "8.5");
        assert_eq!(scenario_time(65.0), "1:05");
        let (scenario, diags) = peerlab_lang::parse_scenario(
            "bench.scenario",
            &s,
            &mut peerlab_lang::NoIncludes,
            &peerlab_lang::Vars::default(),
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(scenario.timeline_length(), 75.0);
        assert_eq!(default_deadline(1000), 26.0);
    }

    #[test]
    fn the_start_line_runs_the_start_command() {
        assert_eq!(
            BENALOH.start_line.split_whitespace().next(),
            Some(BENALOH.start_command)
        );
    }

    #[test]
    fn the_scenario_text_is_the_one_bench_always_generated() {
        assert_eq!(
            BENALOH.scenario_text(14.0),
            "# Generated by `peerlab bench benaloh`: the Benaloh protocol in automatic mode.\n\
             &module gumby.modules.dispersy_module.DispersyModule\n\
             &module benaloh\n\
             @@ isolate_community BenalohCommunity\n\
             @0 start_session\n\
             @0 introduce_peers\n\
             @1 share_local auto=true\n\
             @14 print_local_value\n\
             @14 print_total_sum\n"
        );
    }
}
