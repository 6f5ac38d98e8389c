"""Write py-ipv8-produced test vectors for peerlab's wire codec.

Every packet below is built by py-ipv8 itself: its payload classes, its
serializer and its packing function (EZPackOverlay._ez_pack, the one every
py-ipv8 community sends with), signed by its own key code. The peerlab test
plugins/dispersy/tests/vectors.rs decodes each one, checks the fields listed
here and re-encodes it byte for byte with the same key seed.

Run (creates the venv on first use):
    $(scripts/ipv8/venv.sh) scripts/ipv8/make_vectors.py > plugins/dispersy/tests/vectors/py-ipv8.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version
from types import SimpleNamespace

from ipv8.keyvault.crypto import default_eccrypto
from ipv8.lazy_community import EZPackOverlay
from ipv8.messaging.payload import (
    IntroductionRequestPayload,
    IntroductionResponsePayload,
    NewIntroductionRequestPayload,
    NewIntroductionResponsePayload,
    NewPuncturePayload,
    NewPunctureRequestPayload,
    PuncturePayload,
    PunctureRequestPayload,
)
from ipv8.messaging.lazy_payload import VariablePayloadWID, vp_compile
from ipv8.messaging.payload_headers import BinMemberAuthenticationPayload, GlobalTimeDistributionPayload
from ipv8.messaging.serialization import default_serializer
from ipv8.peer import Peer

# The ed25519 seed; peerlab's Keypair::from_seed uses it as is. py-ipv8's
# LibNaCLSK also holds a curve25519 secret: sha512(seed)[:32] gives the same
# curve25519 public key peerlab derives (the Montgomery form of the ed25519 key).
SEED = bytes(range(32))
COMMUNITY_ID = bytes.fromhex("5065657262616220766563746f727320763120ff")[:20]


@vp_compile
class TextMessage(VariablePayloadWID):
    """The interop community's application message: a text and a number."""

    msg_id = 1
    format_list = ["varlenHutf8", "q"]
    names = ["text", "number"]

    text: str
    number: int


def key():
    crypt = hashlib.sha512(SEED).digest()[:32]
    return default_eccrypto.key_from_private_bin(b"LibNaCLSK:" + crypt + SEED)


KEY = key()
PACKER = SimpleNamespace(serializer=default_serializer, my_peer=Peer(KEY))
PREFIX = b"\x00\x02" + COMMUNITY_ID


def pack(msg_id, payloads, sig=True):
    """py-ipv8's own packing: prefix + message id + serialised payloads (+ signature)."""
    if sig:
        payloads = [BinMemberAuthenticationPayload(KEY.pub().key_to_bin()), *payloads]
    return EZPackOverlay._ez_pack(PACKER, PREFIX, msg_id, payloads, sig)


def addr(a):
    host, port = a
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def vec(name, msg_id, packet, signed, global_time, fields):
    return {"name": name, "msg_id": msg_id, "signed": signed, "global_time": global_time,
            "fields": fields, "hex": packet.hex()}


def main():
    v = []
    gt = 4660
    dest, lan, wan = ("1.2.3.4", 8090), ("10.0.0.2", 7759), ("1.2.3.5", 7760)
    for extra, nsf in [(b"", False), (b"\x01\x02extra", True)]:
        p = IntroductionRequestPayload(dest, lan, wan, True, "unknown", 4660, extra, supports_new_style=nsf)
        v.append(vec(f"introduction-request{'-extra' if extra else ''}", 246,
                     pack(246, [GlobalTimeDistributionPayload(gt), p]), True, gt,
                     {"destination": addr(dest), "source_lan": addr(lan), "source_wan": addr(wan),
                      "advice": True, "supports_new_style": nsf, "identifier": 4660, "extra": extra.hex()}))
    ilan, iwan = ("10.0.0.3", 1000), ("1.2.3.6", 1001)
    p = IntroductionResponsePayload(dest, lan, wan, ilan, iwan, "unknown", 17, b"",
                                    intro_supports_new_style=True, peer_limit_reached=True)
    v.append(vec("introduction-response", 245, pack(245, [GlobalTimeDistributionPayload(gt), p]), True, gt,
                 {"destination": addr(dest), "source_lan": addr(lan), "source_wan": addr(wan),
                  "lan_introduction": addr(ilan), "wan_introduction": addr(iwan),
                  "supports_new_style": True, "intro_supports_new_style": True, "peer_limit_reached": True,
                  "identifier": 17, "extra": ""}))
    d6, l6, w6 = ("2001:db8::1", 8090), ("fe80::2", 7759), ("2001:db8::5", 7760)
    p = NewIntroductionRequestPayload(d6, l6, w6, 99, 0, 0, 1, 0, 0, 0, 0, 1, b"new")
    v.append(vec("new-introduction-request", 234, pack(234, [GlobalTimeDistributionPayload(gt), p]), True, gt,
                 {"destination": addr(d6), "source_lan": addr(l6), "source_wan": addr(w6),
                  "advice": True, "supports_new_style": True, "identifier": 99, "extra": b"new".hex()}))
    p = NewIntroductionResponsePayload(d6, lan, w6, ("0.0.0.0", 0), ("::", 0), 99, True,
                                       0, 0, 0, 0, 0, 0, 0, b"")
    v.append(vec("new-introduction-response", 233, pack(233, [GlobalTimeDistributionPayload(gt), p]), True, gt,
                 {"destination": addr(d6), "source_lan": addr(lan), "source_wan": addr(w6),
                  "lan_introduction": "0.0.0.0:0", "wan_introduction": "[::]:0",
                  "intro_supports_new_style": True, "identifier": 99, "extra": ""}))
    p = PunctureRequestPayload(lan, wan, 4660)
    v.append(vec("puncture-request", 250, pack(250, [GlobalTimeDistributionPayload(7), p], False), False, 7,
                 {"lan": addr(lan), "wan": addr(wan), "identifier": 4660}))
    p = NewPunctureRequestPayload(l6, w6, 5)
    v.append(vec("new-puncture-request", 232, pack(232, [GlobalTimeDistributionPayload(8), p], False), False, 8,
                 {"lan": addr(l6), "wan": addr(w6), "identifier": 5}))
    p = PuncturePayload(lan, wan, 4660)
    v.append(vec("puncture", 249, pack(249, [GlobalTimeDistributionPayload(9), p]), True, 9,
                 {"lan": addr(lan), "wan": addr(wan), "identifier": 4660}))
    p = NewPuncturePayload(l6, wan, 6)
    v.append(vec("new-puncture", 231, pack(231, [GlobalTimeDistributionPayload(10), p]), True, 10,
                 {"lan": addr(l6), "wan": addr(wan), "identifier": 6}))
    # Application messages as a py-ipv8 community sends them with
    # ez_send(peer, GlobalTimeDistributionPayload(t), TextMessage(...)) (signed) or sig=False.
    p = TextMessage("hello from py-ipv8", 42)
    v.append(vec("application-signed", 1, pack(1, [GlobalTimeDistributionPayload(12345), p]), True, 12345,
                 {"payload": default_serializer.pack_serializable(p).hex()}))
    v.append(vec("application-unsigned", 1, pack(1, [GlobalTimeDistributionPayload(3), p], False), False, 3,
                 {"payload": default_serializer.pack_serializable(p).hex()}))
    out = {
        "generator": "scripts/ipv8/make_vectors.py",
        "command": "$(scripts/ipv8/venv.sh) scripts/ipv8/make_vectors.py > plugins/dispersy/tests/vectors/py-ipv8.json",
        "pyipv8_version": version("pyipv8"),
        "key_seed": SEED.hex(),
        "community_id": COMMUNITY_ID.hex(),
        "public_key": KEY.pub().key_to_bin().hex(),
        "member_id": KEY.key_to_hash().hex(),
        "vectors": v,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
