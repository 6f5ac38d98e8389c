"""A real py-ipv8 peer for peerlab's interoperability test.

Runs one py-ipv8 Community (InteropCommunity, defined here) on 127.0.0.1 with
py-ipv8's own RandomWalk discovery and no bootstrap server: peerlab peers walk
to it, it answers with py-ipv8's introduction responses and walks back.
Every peer py-ipv8 verifies through introduction request/response gets two
signed "text" messages (message id 1: global time + varlenHutf8 text + q number):
first a tampered copy (one byte flipped after signing), then a genuine one.
Incoming text messages are checked with py-ipv8's own signature verification
(EZPackOverlay._ez_unpack_auth, as lazy_wrapper does).

It prints one JSON object per line on stdout:
  {"event": "listening", "port": P, "key": HEX}
  {"event": "peer", "address": "127.0.0.1:P", "key": HEX}
  {"event": "received", "address": ..., "key": HEX, "text": ..., "number": N, "global_time": T}
  {"event": "rejected", "address": ..., "error": ...}

Run: $(scripts/ipv8/venv.sh) scripts/ipv8/interop_peer.py --community-id HEX [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from ipv8.community import Community, CommunitySettings
from ipv8.keyvault.crypto import default_eccrypto
from ipv8.lazy_community import PacketDecodingError
from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint
from ipv8.messaging.lazy_payload import VariablePayloadWID, vp_compile
from ipv8.messaging.payload_headers import GlobalTimeDistributionPayload
from ipv8.peer import Peer
from ipv8.peerdiscovery.discovery import RandomWalk
from ipv8.peerdiscovery.network import Network


@vp_compile
class TextMessage(VariablePayloadWID):
    """The community's one application message."""

    msg_id = 1
    format_list = ["varlenHutf8", "q"]
    names = ["text", "number"]

    text: str
    number: int


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def fmt(address):
    return f"{address[0]}:{address[1]}"


class InteropCommunity(Community):
    """A community with one signed message type; its id comes from the command line."""

    community_id = b"\x00" * 20

    def __init__(self, settings: CommunitySettings) -> None:
        super().__init__(settings)
        self.add_message_handler(1, self.on_text)
        self.greeted: set[bytes] = set()
        self.counter = 0

    def on_text(self, source_address, data: bytes) -> None:
        try:
            auth, dist, payload = self._ez_unpack_auth(TextMessage, data)
        except PacketDecodingError as e:
            emit(event="rejected", address=fmt(source_address), error=str(e))
            return

        self.update_global_time(dist.global_time)
        emit(event="received", address=fmt(source_address), key=auth.public_key_bin.hex(),
             text=payload.text, number=payload.number, global_time=dist.global_time)

    def greet_new_peers(self) -> None:
        for peer in self.get_peers():
            key = peer.public_key.key_to_bin()
            if key in self.greeted:
                continue
            self.greeted.add(key)
            emit(event="peer", address=fmt(peer.address), key=key.hex())
            self.counter += 1
            tampered = bytearray(self.ezr_pack(1, GlobalTimeDistributionPayload(self.claim_global_time()),
                                               TextMessage("TAMPERED by py-ipv8", self.counter)))
            tampered[-65] ^= 0x01  # the last byte of the number, after signing
            self.endpoint.send(peer.address, bytes(tampered))
            self.ez_send(peer, GlobalTimeDistributionPayload(self.claim_global_time()),
                         TextMessage("hello from py-ipv8", self.counter))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--community-id", required=True, help="40 hex digits")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before exiting")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

    InteropCommunity.community_id = bytes.fromhex(args.community_id)
    endpoint = UDPEndpoint(port=0, ip="127.0.0.1")
    await endpoint.open()
    key = default_eccrypto.generate_key("curve25519")
    settings = CommunitySettings(my_peer=Peer(key), endpoint=endpoint, network=Network(), max_peers=30)
    community = InteropCommunity(settings)
    walker = RandomWalk(community, timeout=3.0)
    emit(event="listening", port=endpoint.get_address()[1], key=key.pub().key_to_bin().hex())

    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    while loop.time() < deadline:
        walker.take_step()
        community.greet_new_peers()
        await asyncio.sleep(0.1)
    await community.unload()
    endpoint.close()


if __name__ == "__main__":
    asyncio.run(main())
