//! py-ipv8-produced test vectors (tests/vectors/py-ipv8.json, written by
//! scripts/ipv8/make_vectors.py): each packet is decoded by peerlab's codec,
//! its fields checked, and re-encoded byte for byte with the same key seed.

use std::net::SocketAddr;

use peerlab_dispersy::crypto::{hex, unhex};
use peerlab_dispersy::wire::{
    self, Decoded, IntroductionRequest, IntroductionResponse, Puncture, Style, flags, id,
};
use peerlab_dispersy::{CommunityId, Keypair};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/py-ipv8.json");

fn a(v: &Value) -> SocketAddr {
    v.as_str().unwrap().parse().unwrap()
}

fn b(v: &Value) -> Vec<u8> {
    unhex(v.as_str().unwrap()).unwrap()
}

fn style(msg_id: u8) -> Style {
    if [
        id::NEW_INTRODUCTION_REQUEST,
        id::NEW_INTRODUCTION_RESPONSE,
        id::NEW_PUNCTURE_REQUEST,
        id::NEW_PUNCTURE,
    ]
    .contains(&msg_id)
    {
        Style::New
    } else {
        Style::Old
    }
}

#[test]
fn py_ipv8_vectors_decode_and_re_encode_byte_for_byte() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let seed: [u8; 32] = b(&doc["key_seed"]).try_into().unwrap();
    let kp = Keypair::from_seed(&seed);
    assert_eq!(
        hex(kp.public().as_bytes()),
        doc["public_key"].as_str().unwrap()
    );
    assert_eq!(
        hex(&kp.public().member_id().0),
        doc["member_id"].as_str().unwrap()
    );
    let cid = CommunityId::from_hex(doc["community_id"].as_str().unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 11);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let packet = b(&v["hex"]);
        let msg_id = v["msg_id"].as_u64().unwrap() as u8;
        let gt = v["global_time"].as_u64().unwrap();
        let f = &v["fields"];
        let st = style(msg_id);
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        let n = match wire::decode(&packet).unwrap_or_else(|e| panic!("{name}: {e}")) {
            Decoded::IntroductionRequest(frame, req) => {
                assert_eq!(frame.global_time, gt, "{name}");
                assert_eq!(frame.public_key, kp.public().as_bytes(), "{name}");
                assert_eq!(req.destination, a(&f["destination"]), "{name}");
                assert_eq!(req.source_lan, a(&f["source_lan"]), "{name}");
                assert_eq!(req.source_wan, a(&f["source_wan"]), "{name}");
                assert_eq!(
                    req.identifier as u64,
                    f["identifier"].as_u64().unwrap(),
                    "{name}"
                );
                assert_eq!(req.extra, b(&f["extra"]).as_slice(), "{name}");
                assert_eq!(
                    req.flags & flags::REQ_ADVICE != 0,
                    f["advice"].as_bool().unwrap()
                );
                assert_eq!(
                    req.flags & flags::REQ_SUPPORTS_NEW_STYLE != 0,
                    f["supports_new_style"].as_bool().unwrap(),
                    "{name}"
                );
                let re = IntroductionRequest { ..req };
                wire::encode_signed(&mut buf, &cid, msg_id, &kp, gt, |w| re.encode(w, st)).unwrap()
            }
            Decoded::IntroductionResponse(frame, resp) => {
                assert_eq!(frame.global_time, gt, "{name}");
                assert_eq!(resp.destination, a(&f["destination"]), "{name}");
                assert_eq!(resp.source_lan, a(&f["source_lan"]), "{name}");
                assert_eq!(resp.source_wan, a(&f["source_wan"]), "{name}");
                assert_eq!(resp.lan_introduction, a(&f["lan_introduction"]), "{name}");
                assert_eq!(resp.wan_introduction, a(&f["wan_introduction"]), "{name}");
                assert_eq!(
                    resp.identifier as u64,
                    f["identifier"].as_u64().unwrap(),
                    "{name}"
                );
                if st == Style::Old {
                    assert_ne!(resp.flags & flags::RESP_SUPPORTS_NEW_STYLE, 0, "{name}");
                    assert_ne!(
                        resp.flags & flags::RESP_INTRO_SUPPORTS_NEW_STYLE,
                        0,
                        "{name}"
                    );
                    assert_ne!(resp.flags & flags::RESP_PEER_LIMIT_REACHED, 0, "{name}");
                } else {
                    assert_eq!(
                        resp.flags,
                        flags::NEW_RESP_INTRO_SUPPORTS_NEW_STYLE,
                        "{name}"
                    );
                }
                let re = IntroductionResponse { ..resp };
                wire::encode_signed(&mut buf, &cid, msg_id, &kp, gt, |w| re.encode(w, st)).unwrap()
            }
            Decoded::PunctureRequest(frame, p) => {
                assert_eq!(frame.global_time, gt, "{name}");
                check_puncture(name, &p, f);
                wire::encode_unsigned(&mut buf, &cid, msg_id, gt, |w| p.encode(w, st)).unwrap()
            }
            Decoded::Puncture(frame, p) => {
                assert_eq!(frame.global_time, gt, "{name}");
                check_puncture(name, &p, f);
                wire::encode_signed(&mut buf, &cid, msg_id, &kp, gt, |w| p.encode(w, st)).unwrap()
            }
            Decoded::SyncRequest(..) => panic!("{name}: py-ipv8 has no sync request"),
            Decoded::Application(header, _) => {
                assert_eq!(header.community, &cid.0);
                let payload = b(&f["payload"]);
                if v["signed"].as_bool().unwrap() {
                    let frame = wire::decode_signed(&packet).unwrap();
                    assert_eq!(frame.global_time, gt);
                    assert_eq!(frame.payload, payload.as_slice(), "{name}");
                    let vk = kp.verifying_key();
                    assert!(peerlab_dispersy::crypto::verify(
                        &vk,
                        frame.signed,
                        frame.signature
                    ));
                    wire::encode_signed(&mut buf, &cid, msg_id, &kp, gt, |w| w.put(&payload))
                        .unwrap()
                } else {
                    let frame = wire::decode_unsigned(&packet).unwrap();
                    assert_eq!((frame.global_time, frame.payload), (gt, payload.as_slice()));
                    wire::encode_unsigned(&mut buf, &cid, msg_id, gt, |w| w.put(&payload)).unwrap()
                }
            }
        };
        assert_eq!(hex(&buf[..n]), hex(&packet), "{name}: re-encoding differs");
    }
}

fn check_puncture(name: &str, p: &Puncture, f: &Value) {
    assert_eq!(p.lan, a(&f["lan"]), "{name}");
    assert_eq!(p.wan, a(&f["wan"]), "{name}");
    assert_eq!(
        p.identifier as u64,
        f["identifier"].as_u64().unwrap(),
        "{name}"
    );
}
