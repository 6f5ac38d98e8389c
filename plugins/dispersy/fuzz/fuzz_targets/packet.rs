//! Fuzz target: arbitrary datagrams into the codec and into a started core.
//! Run from plugins/dispersy/fuzz: `cargo +nightly fuzz run packet`.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use peerlab_dispersy::{
    Authentication, CommunityId, Config, OverlayCore, Destination, Distribution, Keypair, MetaMessage,
    PeerDirectory, wire,
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
    let mut core = OverlayCore::new(Config::new([1; 32], 1, "127.0.0.1:1".parse().unwrap()));
    core.define_message(MetaMessage::new("m", Authentication::Member, Distribution::FullSync, Destination::Community(2)))
        .unwrap();
    core.set_community(CommunityId([7; 20]));
    core.start(start());
    core.handle(start(), "127.0.0.1:2".parse().unwrap(), &framed);
    core.handle(start(), "127.0.0.1:2".parse().unwrap(), data);
    let mut buf = [0u8; 1500];
    while core.poll_transmit(&mut buf).is_some() {}
    while core.poll_event().is_some() {}
    // A run member's core: a peer directory, unknown authors dropped, a
    // small per-author limit (the checks against hostile authors).
    let mut cfg = Config::new([1; 32], 1, "127.0.0.1:1".parse().unwrap());
    cfg.drop_unknown_authors = true;
    cfg.max_messages_per_author = 2;
    let mut member = OverlayCore::new(cfg);
    member
        .define_message(MetaMessage::new("m", Authentication::Member, Distribution::FullSync, Destination::Community(2)))
        .unwrap();
    member.set_community(CommunityId([7; 20]));
    let dir = PeerDirectory::new([
        ("127.0.0.1:1".parse().unwrap(), *member.public_key(), 1),
        ("127.0.0.1:2".parse().unwrap(), *Keypair::from_seed(&[2; 32]).public(), 2),
    ])
    .unwrap();
    member.set_directory(Arc::new(dir));
    member.start(start());
    member.handle_batch(
        start(),
        [("127.0.0.1:2".parse().unwrap(), framed.as_slice()), ("127.0.0.1:3".parse().unwrap(), data)],
    );
    while member.poll_transmit(&mut buf).is_some() {}
    while member.poll_event().is_some() {}
});
