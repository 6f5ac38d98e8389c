"""A py-ipv8 peer in a peerlab run: the Python half of scenarios/mixed.

It runs as an external instance (external_cmd in mixed.conf) on peerlab's
Python client, and speaks the gossip plugin's rumor with py-ipv8's own
machinery: a py-ipv8 ``Community`` in the run's community (the id of
``isolate_community NAME``: docs/wire-format.md section 6, with the run token
as the run identity), message id 1, py-ipv8's signed frame
(``ezr_pack`` with a ``GlobalTimeDistributionPayload``, checked on receipt
with ``_ez_unpack_auth``), and the gossip plugin's payload (postcard: the
author's instance id and a sequence number, each an LEB128 varint).

Its scenario callbacks have the gossip experiment's names, so one scenario
drives both kinds of instance, and it prints the gossip plugin's lines, so
the gossip verdict judges it like any instance.

Regenerate the manifest after changing a callback:
    $(scripts/ipv8/venv.sh) -m peerlab manifest scenarios/mixed/mixed_peer.py > scenarios/mixed/mixed_peer.callbacks.json
"""

from __future__ import annotations

import hashlib
import logging
import sys

from ipv8.community import Community, CommunitySettings
from ipv8.keyvault.crypto import default_eccrypto
from ipv8.lazy_community import PacketDecodingError
from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint
from ipv8.messaging.lazy_payload import VariablePayloadWID, vp_compile
from ipv8.messaging.payload_headers import GlobalTimeDistributionPayload
from ipv8.peer import Peer
from ipv8.peerdiscovery.network import Network

from peerlab import ExperimentModule, experiment_callback, run


@vp_compile
class Rumor(VariablePayloadWID):
    """The gossip plugin's message: its payload bytes, verbatim."""

    msg_id = 1
    format_list = ["raw"]
    names = ["data"]

    data: bytes


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, i: int):
    n = shift = 0
    while i < len(data) and shift < 64:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, i
        shift += 7
    raise ValueError("truncated varint")


def decode_rumor(data: bytes):
    """``(author, seq)``, or ValueError (trailing bytes too, as postcard)."""
    author, i = read_varint(data, 0)
    seq, i = read_varint(data, i)
    if i != len(data):
        raise ValueError(f"{len(data) - i} bytes after the rumor")
    return author, seq


def isolated_community_id(name: str, run_identity: bytes) -> bytes:
    h = hashlib.sha1()
    h.update(b"peerlab isolate_community v1\0")
    h.update(len(run_identity).to_bytes(8, "big"))
    h.update(run_identity)
    h.update(name.encode())
    return h.digest()


class RumorCommunity(Community):
    """One signed FullSync-style message, as py-ipv8 signs and checks it."""

    community_id = b"\x00" * 20

    def __init__(self, settings: CommunitySettings, on_rumor) -> None:
        super().__init__(settings)
        self.on_rumor = on_rumor
        self.rejected = 0
        self.add_message_handler(Rumor.msg_id, self.on_rumor_packet)

    def on_rumor_packet(self, source_address, data: bytes) -> None:
        try:
            auth, dist, payload = self._ez_unpack_auth(Rumor, data)
        except PacketDecodingError:
            self.rejected += 1
            return
        self.update_global_time(dist.global_time)
        self.on_rumor(payload.data)

    def publish(self, data: bytes, addresses) -> None:
        packet = self.ezr_pack(Rumor.msg_id, GlobalTimeDistributionPayload(self.claim_global_time()),
                               Rumor(data))
        for address in addresses:
            self.endpoint.send(address, packet)


class MixedPeer(ExperimentModule):
    """The gossip experiment's callbacks over a py-ipv8 community."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.community_name = "peerlab"
        self.community = None
        self.endpoint = None
        self.published = 0
        self.seen = set()

    async def listen(self):
        self.endpoint = UDPEndpoint(port=self.port, ip=self.bind_ip)
        await self.endpoint.open()
        key = default_eccrypto.generate_key("curve25519")
        cid = isolated_community_id(self.community_name, self.run_token.encode())
        cls = type("MixedCommunity", (RumorCommunity,), {"community_id": cid})
        settings = CommunitySettings(my_peer=Peer(key), endpoint=self.endpoint, network=Network(),
                                     max_peers=100)
        self.community = cls(settings, self.on_rumor)
        host, port = self.endpoint.get_address()
        return f"{host}:{port}", key.pub().key_to_bin().hex()

    async def on_stop(self) -> None:
        if self.community is not None:
            await self.community.unload()
        if self.endpoint is not None:
            self.endpoint.close()

    def on_rumor(self, data: bytes) -> None:
        try:
            rumor = decode_rumor(data)
        except ValueError as e:
            sys.stderr.write(f"mixed_peer: a malformed rumor: {e}\n")
            return
        if rumor not in self.seen:
            self.seen.add(rumor)
            self.stat("rumors_held", len(self.seen))

    @experiment_callback
    def isolate_community(self, name: str):
        """The run's own community (set in @@, before the overlay opens)."""
        self.community_name = name

    @experiment_callback
    def start_session(self):
        """The community is live from `listen` on: nothing more to start."""

    @experiment_callback
    def introduce_peers(self, max_peers: int = 0):
        """Every other instance of the peer table becomes a verified py-ipv8 peer."""
        others = self.other_peers()
        if max_peers > 0:
            others = others[:max_peers]
        for p in others:
            key = default_eccrypto.key_from_public_bin(p.key_bytes)
            self.community.network.add_verified_peer(Peer(key, p.address))
            self.community.network.discover_services(Peer(key, p.address), [self.community.community_id])

    @experiment_callback
    def publish(self, count: int = 1):
        """Publish `count` signed rumors to every other instance."""
        if count < 1:
            raise ValueError(f"count={count}: publish at least one rumor")
        addresses = [p.address for p in self.other_peers()]
        for _ in range(count):
            self.published += 1
            rumor = (self.instance_id, self.published)
            self.seen.add(rumor)
            self.community.publish(varint(rumor[0]) + varint(rumor[1]), addresses)
        self.print(f"gossip: published {self.published}")
        self.stat("rumors_held", len(self.seen))

    @experiment_callback
    def report(self):
        """The gossip plugin's report line, for its verdict."""
        self.print(f"gossip: holding {len(self.seen)} rumors")


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    run(MixedPeer)
