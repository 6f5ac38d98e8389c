//! Fuzz the config parser and the typed experiment: any bytes, as text,
//! must give a value and diagnostics, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use peerlab_lang::{Experiment, parse_config};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (raw, _) = parse_config("fuzz.conf", &text);
    let _ = Experiment::from_config(&raw, &BTreeMap::new());
});
