"""The sync protocol's client side (docs/sync-protocol.md), on asyncio.

One connection per process: ``hello`` with the run's token, ``welcome``,
``ready`` per instance with its overlay address and public key, the barrier's
``start`` with the peer table, ``progress``, and ``done`` per instance.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import List, Optional

# The longest line the server sends (a peer table of 10,000 instances fits).
MAX_LINE = 16 * 1024 * 1024


class SyncError(Exception):
    """The server refused us, aborted the run, or broke the protocol."""


@dataclass(frozen=True)
class Peer:
    """One instance of the run, as the barrier's peer table lists it."""

    id: int
    addr: str
    public_key: str

    @property
    def address(self):
        """``(host, port)``, as sockets and py-ipv8 take it."""
        host, port = self.addr.rsplit(":", 1)
        return host.strip("[]"), int(port)

    @property
    def key_bytes(self) -> bytes:
        return bytes.fromhex(self.public_key)


class SyncClient:
    """A registered connection to the run's sync server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self.ids: List[int] = []
        self.instances = 0

    @classmethod
    async def connect(cls, address: str, token: str, ids: List[int], host: str = "localhost",
                      node: int = 1, timeout: float = 30.0) -> "SyncClient":
        """Connect to ``host:port``, say hello, and read the welcome."""
        h, p = address.rsplit(":", 1)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(h.strip("[]"), int(p), limit=MAX_LINE), timeout)
        client = cls(reader, writer)
        await client.send({"type": "hello", "token": token, "host": host, "node": node,
                           "pid": os.getpid(), "ids": list(ids), "count": len(ids)})
        welcome = await client.receive()
        if welcome.get("type") != "welcome":
            raise SyncError(f"expected a welcome, got {welcome!r}")
        client.ids = list(welcome["ids"])
        client.instances = int(welcome["instances"])
        return client

    async def send(self, msg: dict) -> None:
        self._writer.write((json.dumps(msg) + "\n").encode())
        await self._writer.drain()

    async def receive(self) -> dict:
        """The next message; ``refused`` and ``abort`` raise SyncError."""
        line = await self._reader.readline()
        if not line:
            raise SyncError("the sync server closed the connection")
        msg = json.loads(line)
        if msg.get("type") == "refused":
            raise SyncError("the sync server refused this process: " + msg.get("reason", ""))
        if msg.get("type") == "abort":
            raise SyncError("the run was aborted: " + msg.get("reason", ""))
        return msg

    async def ready(self, id: int, addr: str, public_key: str) -> None:
        await self.send({"type": "ready", "id": id, "addr": addr, "public_key": public_key})

    async def wait_start(self):
        """Wait at the barrier: ``(start_unix_ms, [Peer, ...])``."""
        msg = await self.receive()
        if msg.get("type") != "start":
            raise SyncError(f"expected the start, got {msg!r}")
        peers = [Peer(int(p["id"]), p["addr"], p["public_key"]) for p in msg["peers"]]
        return int(msg["start_unix_ms"]), peers

    async def progress(self, commands: int) -> None:
        await self.send({"type": "progress", "commands": commands})

    async def done(self, id: int, status: str, error: Optional[str] = None,
                   exit_code: Optional[int] = None) -> None:
        await self.send({"type": "done", "id": id, "status": status, "error": error,
                         "exit_code": exit_code})

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
