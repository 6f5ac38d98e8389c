"""The Benaloh protocol on py-ipv8: the reference `peerlab bench benaloh` is compared with.

N py-ipv8 peers (one Community and one UDPEndpoint each) run in this one
process on 127.0.0.1, as issue 9's reference does:

* peers are introduced directly (every peer knows every other; no walking),
* local-share (message 1) is unsigned and sent to one peer,
* broadcast-share (message 2) carries a global time and an ed25519
  signature (LibNaCL keys), is signed once and sent to every other peer, and
  every receiver verifies its signature (py-ipv8's lazy_wrapper),
* automatic mode: a peer broadcasts its subset sum as soon as its n-1
  local shares are in, and knows the total once it holds the n-1 other
  subset sums.

The payload is the same 26 bytes peerlab's benaloh plugin sends
(version, kind, origin, modulus, value; big-endian).

It prints one JSON object with the fields of `peerlab bench benaloh --json`:
peers, protocol_wall_s (every peer starts sharing at once; until the last
peer knows its total), messages (datagrams of the two messages sent),
msgs_per_s, cpu_s (this process, within that window), peak_rss_mb (this
process), kib_per_instance, other_load (cores other processes used
meanwhile) and correct (every total known and equal to the sum of the
secrets mod M).

Run: $(scripts/ipv8/venv.sh) scripts/bench/ipv8_benaloh.py --peers 100 [--timeout S] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import sys
import time

from ipv8.community import Community, CommunitySettings
from ipv8.keyvault.crypto import default_eccrypto
from ipv8.lazy_community import lazy_wrapper, lazy_wrapper_unsigned
from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint
from ipv8.messaging.lazy_payload import VariablePayloadWID, vp_compile
from ipv8.messaging.payload_headers import GlobalTimeDistributionPayload
from ipv8.peer import Peer
from ipv8.peerdiscovery.network import Network

MODULUS = (1 << 31) - 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
VERSION = 1
KIND_LOCAL, KIND_SUM = 1, 2


@vp_compile
class LocalShare(VariablePayloadWID):
    """One share of a secret, for one peer (unsigned)."""

    msg_id = 1
    format_list = ["B", "B", "Q", "Q", "Q"]
    names = ["version", "kind", "origin", "modulus", "value"]


@vp_compile
class BroadcastShare(VariablePayloadWID):
    """A peer's subset sum, for everyone (signed, with a global time)."""

    msg_id = 2
    format_list = ["B", "B", "Q", "Q", "Q"]
    names = ["version", "kind", "origin", "modulus", "value"]


class Run:
    """What every peer reports to: completion times and counters."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent = 0
        self.totals: dict[int, int] = {}
        self.known_at: dict[int, float] = {}
        self.rejected = 0
        self.done = asyncio.Event()

    def total_known(self, me: int, total: int) -> None:
        self.totals[me] = total
        self.known_at[me] = time.perf_counter()
        if len(self.totals) == self.n:
            self.done.set()


class BenalohCommunity(Community):
    """One peer of the protocol."""

    community_id = bytes.fromhex("62656e616c6f68" + "00" * 13)  # "benaloh"

    def __init__(self, settings: CommunitySettings, me: int, secret: int, run: Run) -> None:
        super().__init__(settings)
        self.me = me
        self.secret = secret
        self.run = run
        self.others: list[tuple[tuple[str, int], int]] = []  # (address, instance id)
        self.id_of: dict[tuple[str, int], int] = {}
        self.local: dict[int, int] = {}
        self.sums: dict[int, int] = {}
        self.subset_sum: int | None = None
        self.add_message_handler(LocalShare, self.on_local_share)
        self.add_message_handler(BroadcastShare, self.on_broadcast_share)

    def introduce(self, others: list[tuple[tuple[str, int], int, bytes]]) -> None:
        """Know every other peer directly (address, id, public key)."""
        for address, ident, key in others:
            if ident == self.me:
                continue
            peer = Peer(key, address)
            self.network.add_verified_peer(peer)
            self.network.discover_services(peer, [self.community_id])
            self.others.append((address, ident))
            self.id_of[address] = ident

    def share_local(self, rng: random.Random) -> None:
        """Split the secret into n-1 shares and send one to each other peer (unsigned)."""
        values = [rng.randrange(MODULUS) for _ in range(len(self.others) - 1)]
        values.append((self.secret - sum(values)) % MODULUS)
        for (address, _), value in zip(self.others, values, strict=True):
            packet = self.ezr_pack(LocalShare.msg_id,
                                   LocalShare(VERSION, KIND_LOCAL, self.me, MODULUS, value), sig=False)
            self.endpoint.send(address, packet)
            self.run.sent += 1

    @lazy_wrapper_unsigned(LocalShare)
    def on_local_share(self, source_address: tuple[str, int], payload: LocalShare) -> None:
        sender = self.id_of.get(source_address)
        if sender is None or sender != payload.origin or payload.kind != KIND_LOCAL:
            self.run.rejected += 1
            return
        if sender in self.local:
            return
        self.local[sender] = payload.value
        if len(self.local) == len(self.others):
            self.subset_sum = sum(self.local.values()) % MODULUS
            self.broadcast()
            self.check_total()

    def broadcast(self) -> None:
        """Sign the subset sum once and send it to every other peer."""
        packet = self.ezr_pack(BroadcastShare.msg_id,
                               GlobalTimeDistributionPayload(self.claim_global_time()),
                               BroadcastShare(VERSION, KIND_SUM, self.me, MODULUS, self.subset_sum))
        for address, _ in self.others:
            self.endpoint.send(address, packet)
            self.run.sent += 1

    @lazy_wrapper(GlobalTimeDistributionPayload, BroadcastShare)
    def on_broadcast_share(self, peer: Peer, dist: GlobalTimeDistributionPayload,
                           payload: BroadcastShare) -> None:
        # lazy_wrapper has verified the ed25519 signature (a bad one raises before this).
        self.update_global_time(dist.global_time)
        if payload.origin == self.me or payload.origin in self.sums or payload.kind != KIND_SUM:
            return
        self.sums[payload.origin] = payload.value
        self.check_total()

    def check_total(self) -> None:
        if self.subset_sum is None or len(self.sums) < len(self.others) or self.me in self.run.totals:
            return
        self.run.total_known(self.me, (self.subset_sum + sum(self.sums.values())) % MODULUS)


def machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine so far (every core), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
    return busy / CLOCK_TICKS


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, required=True, help="number of py-ipv8 peers")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    n = args.peers
    if n < 2:
        parser.error("--peers must be at least 2")
    rng = random.Random(args.seed)
    run = Run(n)

    communities: list[BenalohCommunity] = []
    table = []
    for i in range(1, n + 1):
        endpoint = UDPEndpoint(port=0, ip="127.0.0.1")
        await endpoint.open()
        key = default_eccrypto.generate_key("curve25519")
        settings = CommunitySettings(my_peer=Peer(key), endpoint=endpoint, network=Network(), max_peers=n)
        c = BenalohCommunity(settings, i, rng.randrange(MODULUS), run)
        communities.append(c)
        table.append((endpoint.get_address(), i, key.pub().key_to_bin()))
    for c in communities:
        c.introduce(table)
    await asyncio.sleep(0.5)

    busy0 = machine_busy_s()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for c in communities:
        c.share_local(rng)
    try:
        await asyncio.wait_for(run.done.wait(), timeout=args.timeout)
    except asyncio.TimeoutError:
        pass
    cpu1 = time.process_time()
    busy1 = machine_busy_s()
    t1 = time.perf_counter()
    complete = len(run.known_at) == n
    end = max(run.known_at.values()) if complete else None
    expected = sum(c.secret for c in communities) % MODULUS
    correct = complete and all(t == expected for t in run.totals.values()) and run.rejected == 0
    wall = end - t0 if end is not None else None
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "implementation": "py-ipv8",
        "peers": n,
        "protocol_wall_s": round(wall, 3) if wall is not None else None,
        "messages": run.sent,
        "msgs_per_s": round(run.sent / wall) if wall else None,
        "cpu_s": round(cpu1 - cpu0, 3),
        "peak_rss_mb": round(peak_kib / 1024, 3),
        "kib_per_instance": round(peak_kib / n, 3),
        "totals_known": len(run.known_at),
        # Cores other processes used meanwhile: above zero, py-ipv8 was slowed by them.
        "other_load": (round(max(0.0, (busy1 - busy0 - (cpu1 - cpu0)) / (t1 - t0)), 3)
                       if busy0 is not None and busy1 is not None and t1 > t0 else None),
        "correct": correct,
    }
    print(json.dumps(result), flush=True)
    for c in communities:
        await c.unload()
        c.endpoint.close()


if __name__ == "__main__":
    asyncio.run(main())
