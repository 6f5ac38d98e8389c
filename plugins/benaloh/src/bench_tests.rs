//! Tests of the module's benchmark workload declaration (`bench(..)` in
//! its `#[module]`): it is the workload `peerlab bench benaloh` has always
//! run, and it crosses the boundary as written.

use peerlab_plugin_api::abi_stable::std_types::ROption;
use peerlab_plugin_api::{Bench, MetricKind, Module};

use super::*;

/// The workload as the host described it before plugins declared their own
/// (host/src/bench/workload.rs, `BENALOH`, up to b66143a): the same
/// scenario, window and message count.
#[test]
fn the_declared_workload_is_the_one_bench_always_ran() {
    let b = Benaloh::BENCH.expect("benaloh declares a workload");
    assert_eq!(
        b,
        Bench {
            about: "the Benaloh protocol in automatic mode",
            protocol: "the Benaloh protocol",
            modules: &["gumby.modules.dispersy_module.DispersyModule"],
            community: "BenalohCommunity",
            start: "share_local auto=true",
            end: &["print_local_value", "print_total_sum"],
            done: TIME_TO_TOTAL,
            messages: &[LOCAL_SHARE, BROADCAST_SHARE],
            fanout: "broadcast_fanout",
            help: b.help,
        }
    );
    assert_eq!(b.start_command(), "share_local");
    // `done` is the headline observation, recorded from the first
    // share_local (tests.rs, time_to_total_and_share_counters_are_recorded_as_declared).
    let done = Benaloh::METRICS
        .iter()
        .find(|m| m.name.as_str() == b.done)
        .expect("declared");
    assert!(done.kind == MetricKind::OBSERVATION && done.headline);
    assert!(
        Benaloh::CONFIG_KEYS.iter().any(|(k, _)| *k == b.fanout),
        "the fanout key is a declared config key"
    );
}

#[test]
fn the_root_module_hands_the_workload_to_the_host() {
    let root = crate::peerlab_root_module();
    let Some(ROption::RSome(spec)) = root.bench() else {
        panic!("the root module has no workload");
    };
    assert_eq!(spec.start().as_str(), "share_local auto=true");
    assert_eq!(spec.done().as_str(), TIME_TO_TOTAL);
    let messages: Vec<&str> = spec.messages().iter().map(|m| m.as_str()).collect();
    assert_eq!(messages, [LOCAL_SHARE, BROADCAST_SHARE]);
    assert!(spec.help().as_str().contains("--fanout N-1"));
}
