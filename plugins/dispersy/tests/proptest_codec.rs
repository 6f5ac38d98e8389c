//! Property tests of the codec and the core's input path: arbitrary bytes
//! never panic the decoder or the core, encodings round-trip, and no
//! single-byte change to a signed packet is ever delivered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use peerlab_dispersy::wire::{
    self, Decoded, IntroductionRequest, IntroductionResponse, Puncture, Style, SyncRequest,
};
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, Keypair, MetaMessage,
    OverlayCore, OverlayEvent,
};
use proptest::prelude::*;

fn cid() -> CommunityId {
    CommunityId([0x42; 20])
}

fn core() -> OverlayCore {
    let mut c = OverlayCore::new(Config::new([3; 32], 1, "127.0.0.1:9".parse().unwrap()));
    c.define_message(MetaMessage::new(
        "m",
        Authentication::Member,
        Distribution::FullSync,
        Destination::Community(3),
    ))
    .unwrap();
    c.define_message(MetaMessage::new(
        "u",
        Authentication::None,
        Distribution::Direct,
        Destination::Candidate,
    ))
    .unwrap();
    c.set_community(cid());
    c.start(Instant::now());
    c
}

fn addr(v6: bool) -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>()).prop_map(move |(b, port)| {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        SocketAddr::new(ip, port)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let _ = wire::decode(&data);
        let _ = wire::decode_signed(&data);
        let _ = wire::decode_unsigned(&data);
        let _ = SyncRequest::decode(&data);
        let _ = IntroductionRequest::decode(&data, Style::New);
        let _ = IntroductionResponse::decode(&data, Style::Old);
        let _ = Puncture::decode(&data, Style::New);
    }

    #[test]
    fn decoder_never_panics_behind_a_valid_header(id in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut data = vec![0, 2];
        data.extend_from_slice(&cid().0);
        data.push(id);
        data.extend_from_slice(&body);
        let _ = wire::decode(&data);
        // The core drops or handles it without panicking and never delivers a signed message from it.
        let mut c = core();
        c.handle(Instant::now(), "127.0.0.1:5".parse().unwrap(), &data);
        while let Some(t) = c.poll_transmit(&mut [0u8; 1500]) { prop_assert!(t.size <= 1400); }
        while let Some(e) = c.poll_event() {
            if let OverlayEvent::Message(d) = e { prop_assert!(d.author.is_none()); }
        }
    }

    #[test]
    fn introduction_messages_round_trip(
        v6 in any::<bool>(), a in addr(false), b in addr(false), c in addr(true),
        flags in any::<u8>(), identifier in any::<u16>(), extra in proptest::collection::vec(any::<u8>(), 0..64),
        gt in any::<u64>(),
    ) {
        let style = if v6 { Style::New } else { Style::Old };
        let wan = if v6 { c } else { b };
        let req = IntroductionRequest { destination: a, source_lan: b, source_wan: wan, flags, identifier, extra: &extra };
        let kp = Keypair::from_seed(&[9; 32]);
        let mut buf = [0u8; 1400];
        let id = if v6 { wire::id::NEW_INTRODUCTION_REQUEST } else { wire::id::INTRODUCTION_REQUEST };
        let n = wire::encode_signed(&mut buf, &cid(), id, &kp, gt, |w| req.encode(w, style)).unwrap();
        match wire::decode(&buf[..n]).unwrap() {
            Decoded::IntroductionRequest(f, got) => {
                prop_assert_eq!(got, req);
                prop_assert_eq!(f.global_time, gt);
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
        let resp = IntroductionResponse { destination: a, source_lan: b, source_wan: wan, lan_introduction: a,
            wan_introduction: wan, flags, identifier, extra: &extra };
        let id = if v6 { wire::id::NEW_INTRODUCTION_RESPONSE } else { wire::id::INTRODUCTION_RESPONSE };
        let n = wire::encode_signed(&mut buf, &cid(), id, &kp, gt, |w| resp.encode(w, style)).unwrap();
        match wire::decode(&buf[..n]).unwrap() {
            Decoded::IntroductionResponse(_, got) => prop_assert_eq!(got, resp),
            other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    #[test]
    fn no_single_byte_change_to_a_signed_packet_is_delivered(pos in any::<usize>(), xor in 1u8..=255, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let kp = Keypair::from_seed(&[5; 32]);
        let mut buf = [0u8; 1400];
        let n = wire::encode_signed(&mut buf, &cid(), 1, &kp, 1, |w| w.put(&payload)).unwrap();
        let mut c = core();
        let from: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let mut bad = buf[..n].to_vec();
        bad[pos % n] ^= xor;
        c.handle(Instant::now(), from, &bad);
        // (A change of the message id to the unsigned type "u" makes it that type's
        // message, which anyone may send; it is then never attributed to an author.)
        while let Some(e) = c.poll_event() {
            if let OverlayEvent::Message(d) = e {
                prop_assert!(d.author.is_none(), "a changed packet was delivered as signed (byte {})", pos % n);
            }
        }
        // The genuine packet still is.
        c.handle(Instant::now(), from, &buf[..n]);
        let delivered = matches!(c.poll_event(), Some(OverlayEvent::Message(_)));
        prop_assert!(delivered);
    }
}
