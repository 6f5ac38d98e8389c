//! Fuzz target: arbitrary datagrams into the codec and into a started core.
//! Run from plugins/dispersy/fuzz: `cargo +nightly fuzz run packet`.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Core, Destination, Distribution, MetaMessage, wire,
};

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode(data);
    let _ = wire::decode_signed(data);
    let _ = wire::decode_unsigned(data);
    // Behind this community's header too, so the fuzzer reaches the message decoders.
    let mut framed = vec![0u8, 2];
    framed.extend_from_slice(&[7; 20]);
    framed.extend_from_slice(data);
    let mut core = Core::new(Config::new([1; 32], 1, "127.0.0.1:1".parse().unwrap()));
    core.define_message(MetaMessage::new("m", Authentication::Member, Distribution::FullSync, Destination::Community(2)))
        .unwrap();
    core.set_community(CommunityId([7; 20]));
    core.start(start());
    core.handle(start(), "127.0.0.1:2".parse().unwrap(), &framed);
    core.handle(start(), "127.0.0.1:2".parse().unwrap(), data);
    let mut buf = [0u8; 1500];
    while core.poll_transmit(&mut buf).is_some() {}
    while core.poll_event().is_some() {}
});
