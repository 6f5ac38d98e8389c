//! Micro-benchmarks of the overlay's per-message costs: encode, decode, sign,
//! verify, batch verify (per message), and the core's whole receive path for a
//! signed FullSync message, single and batched, with and without the shared pool.
//! Run: `cargo bench -p peerlab-dispersy --bench codec`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signature;
use peerlab_dispersy::wire::{self, Decoded, IntroductionRequest, Style};
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, Keypair, MetaMessage,
    OverlayCore, PeerDirectory, SharedPool,
};

const PAYLOAD: &[u8] = &[7u8; 64];
const BATCH: usize = 64;

fn cid() -> CommunityId {
    CommunityId([1; 20])
}

fn authors(n: usize) -> Vec<Keypair> {
    (0..n)
        .map(|i| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            Keypair::from_seed(&s)
        })
        .collect()
}

fn signed_packet(kp: &Keypair, gt: u64) -> Vec<u8> {
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_signed(&mut buf, &cid(), 1, kp, gt, |w| w.put(PAYLOAD)).unwrap();
    buf[..n].to_vec()
}

fn receiver(dir: Arc<PeerDirectory>, pool: Option<Arc<SharedPool>>) -> OverlayCore {
    let mut cfg = Config::new([200; 32], 1, "127.0.0.1:1".parse().unwrap());
    cfg.pool = pool;
    let mut c = OverlayCore::new(cfg);
    c.define_message(
        MetaMessage::new(
            "m",
            Authentication::Member,
            Distribution::FullSync,
            Destination::Community(1),
        )
        .with_forwarding(false),
    )
    .unwrap();
    c.set_community(cid());
    c.introduce_from_directory(dir, None);
    c.start(Instant::now());
    c
}

fn benches(c: &mut Criterion) {
    let kp = Keypair::from_seed(&[1; 32]);
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let mut g = c.benchmark_group("per_message");
    g.throughput(Throughput::Elements(1));

    g.bench_function("encode_unsigned_64B", |b| {
        b.iter(|| {
            wire::encode_unsigned(&mut buf, &cid(), 2, black_box(5), |w| w.put(PAYLOAD)).unwrap()
        })
    });
    g.bench_function("encode_signed_64B (includes sign)", |b| {
        b.iter(|| {
            wire::encode_signed(&mut buf, &cid(), 1, &kp, black_box(5), |w| w.put(PAYLOAD)).unwrap()
        })
    });
    let packet = signed_packet(&kp, 5);
    g.bench_function("decode_signed_64B", |b| {
        b.iter(|| wire::decode_signed(black_box(&packet)).unwrap())
    });
    let req = IntroductionRequest {
        destination: "1.2.3.4:5".parse().unwrap(),
        source_lan: "10.0.0.1:6".parse().unwrap(),
        source_wan: "1.2.3.5:6".parse().unwrap(),
        flags: 1,
        identifier: 9,
        extra: b"",
    };
    let n = wire::encode_signed(
        &mut buf,
        &cid(),
        wire::id::INTRODUCTION_REQUEST,
        &kp,
        1,
        |w| req.encode(w, Style::Old),
    )
    .unwrap();
    let intro = buf[..n].to_vec();
    g.bench_function("decode_introduction_request", |b| {
        b.iter(|| match wire::decode(black_box(&intro)).unwrap() {
            Decoded::IntroductionRequest(_, r) => r.identifier,
            _ => unreachable!(),
        })
    });
    g.bench_function("sign_145B", |b| {
        b.iter(|| kp.sign(black_box(&packet[..packet.len() - 64])))
    });
    let vk = kp.verifying_key();
    let f = wire::decode_signed(&packet).unwrap();
    g.bench_function("verify", |b| {
        b.iter(|| {
            assert!(peerlab_dispersy::crypto::verify(
                &vk,
                black_box(f.signed),
                f.signature
            ))
        })
    });
    g.finish();

    // Batch verification: 64 packets from 64 authors, reported per message.
    let keys = authors(BATCH);
    let packets: Vec<Vec<u8>> = keys.iter().map(|k| signed_packet(k, 1)).collect();
    let msgs: Vec<&[u8]> = packets.iter().map(|p| &p[..p.len() - 64]).collect();
    let sigs: Vec<Signature> = packets
        .iter()
        .map(|p| Signature::from_bytes(p[p.len() - 64..].try_into().unwrap()))
        .collect();
    let vks: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let mut g = c.benchmark_group("batch64");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("verify_batch", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&msgs), &sigs, &vks).unwrap())
    });

    // The core's whole receive path: decode, dedupe, key lookup, verify, store, event.
    let dir = Arc::new(
        PeerDirectory::new(keys.iter().enumerate().map(|(i, k)| {
            (
                std::net::SocketAddr::from(([127, 0, 0, 2], 1000 + i as u16)),
                *k.public(),
                i as u32,
            )
        }))
        .unwrap(),
    );
    let from: std::net::SocketAddr = "127.0.0.2:1000".parse().unwrap();
    g.bench_function("core_handle_single", |b| {
        b.iter_batched(
            || receiver(dir.clone(), None),
            |mut core| {
                let now = Instant::now();
                for p in &packets {
                    core.handle(now, from, p);
                }
                assert_eq!(core.stored_count(), BATCH);
                core
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("core_handle_batch", |b| {
        b.iter_batched(
            || receiver(dir.clone(), None),
            |mut core| {
                core.handle_batch(Instant::now(), packets.iter().map(|p| (from, p.as_slice())));
                assert_eq!(core.stored_count(), BATCH);
                core
            },
            BatchSize::LargeInput,
        )
    });
    let pool = Arc::new(SharedPool::new(10_000));
    let mut warm = receiver(dir.clone(), Some(pool.clone()));
    warm.handle_batch(Instant::now(), packets.iter().map(|p| (from, p.as_slice())));
    g.bench_function("core_handle_batch_pool_hit", |b| {
        b.iter_batched(
            || receiver(dir.clone(), Some(pool.clone())),
            |mut core| {
                core.handle_batch(Instant::now(), packets.iter().map(|p| (from, p.as_slice())));
                assert_eq!(core.stored_count(), BATCH);
                core
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Batch verification by batch size, reported per message (ed25519-dalek
    // switches from Straus to Pippenger at about 95 signatures).
    let mut g = c.benchmark_group("verify_batch_size");
    let keys = authors(512);
    let packets: Vec<Vec<u8>> = keys.iter().map(|k| signed_packet(k, 1)).collect();
    for size in [8, 32, 64, 128, 256, 512] {
        let msgs: Vec<&[u8]> = packets[..size].iter().map(|p| &p[..p.len() - 64]).collect();
        let sigs: Vec<Signature> = packets[..size]
            .iter()
            .map(|p| Signature::from_bytes(p[p.len() - 64..].try_into().unwrap()))
            .collect();
        let vks: Vec<_> = keys[..size].iter().map(|k| k.verifying_key()).collect();
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(format!("{size}"), |b| {
            b.iter(|| ed25519_dalek::verify_batch(black_box(&msgs), &sigs, &vks).unwrap())
        });
    }
    g.finish();
}

criterion_group!(codec, benches);
criterion_main!(codec);
