//! A tracker: a peer that only answers introduction requests, in any
//! community (as py-ipv8's tracker plugin does). It remembers who asked,
//! per community, and introduces each requester to another recent one
//! (with a puncture request to that one), so peers that know only the
//! tracker's address find each other: Gumby's `tracker_cmd`/`tracker_port`.
//!
//! Sans-IO like the core: datagrams and time in, datagrams out
//! ([`Tracker::handle`]); the host's runner carries them over a socket.
//! Must not: store or forward application messages, or answer anything
//! but a signed, verified introduction request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crypto::{CommunityId, Keypair, PublicKey, verify};
use crate::wire::{self, IntroductionRequest, IntroductionResponse, Puncture, Style, id};

/// How long a requester stays introducible after its last request.
pub const FORGET_AFTER: Duration = Duration::from_secs(120);

/// Most requesters remembered per community (the oldest go first).
const MAX_PER_COMMUNITY: usize = 10_000;

/// The tracker's state: its key and who asked recently, per community.
pub struct Tracker {
    keypair: Keypair,
    addr: SocketAddr,
    rng: ChaCha8Rng,
    seen: HashMap<[u8; 20], Vec<(SocketAddr, Instant)>>,
    /// Requests answered, and datagrams ignored (not a valid request).
    pub answered: u64,
    pub ignored: u64,
}

impl Tracker {
    /// A tracker signing with the key of `key_seed`, reachable at `addr`.
    pub fn new(key_seed: [u8; 32], rng_seed: u64, addr: SocketAddr) -> Self {
        Self {
            keypair: Keypair::from_seed(&key_seed),
            addr,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            seen: HashMap::new(),
            answered: 0,
            ignored: 0,
        }
    }

    /// Its public key (py-ipv8's key bytes).
    pub fn public_key(&self) -> &PublicKey {
        self.keypair.public()
    }

    /// Handle one datagram from `from`; the datagrams to send in answer.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        match self.answer(now, from, data) {
            Some(out) => {
                self.answered += 1;
                out
            }
            None => {
                self.ignored += 1;
                Vec::new()
            }
        }
    }

    fn answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<Vec<(SocketAddr, Vec<u8>)>> {
        if data.len() > wire::MAX_DATAGRAM {
            return None;
        }
        let (header, _) = wire::split_header(data).ok()?;
        let style = match header.msg_id {
            id::INTRODUCTION_REQUEST => Style::Old,
            id::NEW_INTRODUCTION_REQUEST => Style::New,
            _ => return None,
        };
        let frame = wire::decode_signed(data).ok()?;
        let key = PublicKey::from_bin(frame.public_key).ok()?;
        if !verify(&key.verifying_key().ok()?, frame.signed, frame.signature) {
            return None;
        }
        let req = IntroductionRequest::decode(frame.payload, style).ok()?;
        let community = CommunityId(*header.community);
        // Who else asked lately in this community (not the requester).
        let list = self.seen.entry(community.0).or_default();
        list.retain(|(a, t)| *a != from && now.saturating_duration_since(*t) < FORGET_AFTER);
        let introduced = if list.is_empty() {
            None
        } else {
            Some(list[self.rng.random_range(0..list.len())].0)
        };
        if list.len() >= MAX_PER_COMMUNITY {
            list.remove(0);
        }
        list.push((from, now));

        let intro = introduced.unwrap_or(wire::NO_ADDRESS);
        let flags = match style {
            Style::Old => wire::flags::RESP_SUPPORTS_NEW_STYLE,
            Style::New => 0,
        };
        let resp = IntroductionResponse {
            destination: from,
            source_lan: self.addr,
            source_wan: self.addr,
            lan_introduction: intro,
            wan_introduction: intro,
            flags,
            identifier: req.identifier,
            extra: b"",
        };
        let (resp_id, punct_id) = match style {
            Style::Old => (id::INTRODUCTION_RESPONSE, id::PUNCTURE_REQUEST),
            Style::New => (id::NEW_INTRODUCTION_RESPONSE, id::NEW_PUNCTURE_REQUEST),
        };
        let global_time = frame.global_time % 65536;
        let mut buf = vec![0u8; wire::MAX_DATAGRAM];
        let n = wire::encode_signed(
            &mut buf,
            &community,
            resp_id,
            &self.keypair,
            global_time,
            |w| resp.encode(w, style),
        )
        .ok()?;
        buf.truncate(n);
        let mut out = vec![(from, buf)];
        if let Some(other) = introduced {
            // Ask the introduced peer to puncture towards the requester.
            let p = Puncture {
                lan: from,
                wan: from,
                identifier: req.identifier,
            };
            let mut buf = vec![0u8; wire::MAX_DATAGRAM];
            if let Ok(n) = wire::encode_unsigned(&mut buf, &community, punct_id, global_time, |w| {
                p.encode(w, style)
            }) {
                buf.truncate(n);
                out.push((other, buf));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Config, OverlayCore};

    /// Two cores that know only the tracker's address find each other.
    #[test]
    fn peers_that_know_only_the_tracker_meet() {
        let t0 = Instant::now();
        let taddr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let mut tracker = Tracker::new([9; 32], 1, taddr);
        let community = CommunityId([5; 20]);
        let mut cores: Vec<OverlayCore> = (0..2u8)
            .map(|i| {
                let addr: SocketAddr = format!("127.0.0.1:{}", 7001 + u16::from(i))
                    .parse()
                    .unwrap();
                let mut cfg = Config::new([i + 1; 32], u64::from(i), addr);
                cfg.bootstrap = vec![taddr];
                cfg.walk_interval = Duration::from_millis(100);
                let mut c = OverlayCore::new(cfg);
                c.set_community(community);
                c.start(t0);
                c
            })
            .collect();
        let addrs: Vec<SocketAddr> = cores.iter().map(|c| c.config().local_addr).collect();
        let mut buf = vec![0u8; 2048];
        let mut now = t0;
        for _ in 0..50 {
            now += Duration::from_millis(100);
            let mut wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
            for (i, c) in cores.iter_mut().enumerate() {
                c.handle_timeout(now);
                while let Some(t) = c.poll_transmit(&mut buf) {
                    wire.push((addrs[i], t.destination, buf[..t.size].to_vec()));
                }
            }
            while let Some((from, to, data)) = wire.pop() {
                if to == taddr {
                    for (dest, d) in tracker.handle(now, from, &data) {
                        wire.push((taddr, dest, d));
                    }
                } else if let Some(i) = addrs.iter().position(|a| *a == to) {
                    cores[i].handle(now, from, &data);
                    while let Some(t) = cores[i].poll_transmit(&mut buf) {
                        wire.push((addrs[i], t.destination, buf[..t.size].to_vec()));
                    }
                }
            }
        }
        assert!(tracker.answered >= 2, "answered {}", tracker.answered);
        for (i, c) in cores.iter().enumerate() {
            let other = addrs[1 - i];
            assert!(
                c.peer_addrs().any(|a| a == other),
                "core {i} knows {:?}, not {other}",
                c.peer_addrs().collect::<Vec<_>>()
            );
        }
        // Anything but a valid request is ignored.
        assert!(tracker.handle(now, addrs[0], b"\x00\x02garbage").is_empty());
    }
}
