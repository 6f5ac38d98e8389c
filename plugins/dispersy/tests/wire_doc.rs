//! docs/wire-format.md is checked against the code: every ```` ```hex NAME ````
//! block must equal the packet the codec produces for the inputs the doc
//! gives (py-ipv8's vectors must also equal tests/vectors/py-ipv8.json), and
//! the recorded codec hash must match src/wire.rs + src/bloom.rs.

use peerlab_dispersy::bloom;
use peerlab_dispersy::crypto::{hex, unhex};
use peerlab_dispersy::wire::{self, SyncRequest};
use peerlab_dispersy::{CommunityId, Keypair};
use sha2::{Digest, Sha256};

const DOC: &str = include_str!("../../../docs/wire-format.md");
const VECTORS: &str = include_str!("vectors/py-ipv8.json");
const CODEC: [&str; 2] = [
    include_str!("../src/wire.rs"),
    include_str!("../src/bloom.rs"),
];

/// The `hex` blocks of the doc: (name, bytes).
fn doc_vectors() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("```hex ") {
            let mut hexs = String::new();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                hexs.extend(l.split_whitespace());
            }
            out.push((name.trim().to_owned(), unhex(&hexs).expect("hex block")));
        }
    }
    out
}

fn codec_hash() -> String {
    let mut h = Sha256::new();
    for src in CODEC {
        h.update(src.as_bytes());
    }
    hex(&h.finalize())
}

/// The sync request the doc shows: community of the vectors, global time 5,
/// range [0, u64::MAX], salt 0x01020304, 3 functions, an 8-byte filter holding
/// the py-ipv8 `application-signed` vector.
fn sync_vector(app_packet: &[u8]) -> Vec<u8> {
    let cid = CommunityId::from_hex("5065657262616220766563746f727320763120ff").unwrap();
    let sig: &[u8; 64] = app_packet[app_packet.len() - 64..].try_into().unwrap();
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_unsigned(&mut buf, &cid, wire::id::SYNC_REQUEST, 5, |w| {
        SyncRequest::encode_fixed(w, 0, u64::MAX, 0x0102_0304, 3, 1, 0)?;
        let filter = w.reserve(8)?;
        filter.fill(0);
        bloom::insert(filter, &bloom::key_of(sig), 0x0102_0304, 3);
        Ok(())
    })
    .unwrap();
    buf[..n].to_vec()
}

#[test]
fn wire_format_doc_matches_the_codec() {
    let recorded = DOC
        .lines()
        .find_map(|l| l.split("codec-sha256: `").nth(1))
        .and_then(|rest| rest.split('`').next())
        .expect("docs/wire-format.md records `codec-sha256: `<hex>``");
    assert_eq!(
        recorded,
        codec_hash(),
        "src/wire.rs or src/bloom.rs changed: update docs/wire-format.md (layouts, vectors) and its codec-sha256"
    );
    let json: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let py = |name: &str| -> Vec<u8> {
        let v = json["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no py-ipv8 vector {name}"));
        unhex(v["hex"].as_str().unwrap()).unwrap()
    };
    let doc = doc_vectors();
    assert!(doc.len() >= 5, "the doc shows at least 5 vectors");
    for (name, bytes) in &doc {
        let expected = match name.as_str() {
            "sync-request" => sync_vector(&py("application-signed")),
            other => py(other),
        };
        assert_eq!(
            hex(bytes),
            hex(&expected),
            "vector {name} in docs/wire-format.md"
        );
        // And every doc vector decodes.
        wire::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let kp = Keypair::from_seed(&[0; 32]);
    assert_eq!(kp.public().as_bytes().len(), 74);
}
