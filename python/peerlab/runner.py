"""Run an experiment module as one external instance of a peerlab run.

``run(MyModule)`` reads the environment peerlab sets (docs/sync-protocol.md
§6), registers with the sync server, runs the schedule's load and setup
commands, opens the overlay (``listen``), says ready, waits at the barrier,
fires the timed commands at their times on an asyncio loop, and at
``stop`` (or an abort) writes its end and reports it. The process exits 0
when the instance finished, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from typing import Dict, Optional

from .module import ExperimentModule, bind_args
from .outputs import Outputs
from .sync import SyncClient, SyncError

STAT_INTERVAL = 1.0


class _Stop(Exception):
    pass


def _env(name: str, env: Dict[str, str]) -> str:
    value = env.get(name)
    if value is None:
        raise SystemExit(
            f"peerlab: {name} is not set: this program is an external instance of a peerlab run "
            "and expects peerlab to start it (external_cmd; docs/sync-protocol.md)")
    return value


class _Instance:
    def __init__(self, module_cls, env: Dict[str, str]):
        self.module_cls = module_cls
        self.env = env
        self.id = int(_env("PEERLAB_INSTANCE_ID", env))
        with open(_env("PEERLAB_SCHEDULE", env), encoding="utf-8") as f:
            self.schedule = json.load(f)
        self.time_scale = float(self.schedule.get("time_scale", 1.0))
        self.outputs = Outputs(env.get("PEERLAB_OUT"), env.get("PEERLAB_EVENTS"),
                               env.get("PEERLAB_STATS"))
        self.module: Optional[ExperimentModule] = None
        self.status = "finished"
        self.error: Optional[str] = None
        self.fired = 0
        known = module_cls.callbacks()
        for c in self.schedule["commands"]:
            if c["callback"] not in known and c["callback"] != "stop":
                # `peerlab check` refuses this with the manifest; say it anyway.
                raise SystemExit(f"peerlab: {c['file']}:{c['line']}: {module_cls.__name__} has no "
                                 f"callback `{c['callback']}` (its @experiment_callbacks: "
                                 f"{', '.join(sorted(known))})")

    def fail(self, cmd: dict, err: BaseException) -> None:
        where = f"{cmd['file']}:{cmd['line']}"
        sys.stderr.write(f"peerlab: {where}: `{cmd['callback']}` failed: {err!r}\n")
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
        sys.stderr.flush()
        if self.status == "finished":
            self.status = "failed"
            self.error = f"{where}: `{cmd['callback']}` failed: {err}"

    async def fire(self, cmd: dict) -> None:
        self.fired += 1
        self.outputs.event("command", callback=cmd["callback"], file=cmd["file"], line=cmd["line"])
        if cmd["callback"] == "stop" and "stop" not in self.module_cls.callbacks():
            raise _Stop()
        try:
            f = self.module_cls.callbacks()[cmd["callback"]]
            args, kwargs = bind_args(self.module_cls, cmd["callback"], cmd["args"], cmd["kwargs"])
            result = f(self.module, *args, **kwargs)
            if asyncio.iscoroutine(result):
                await result
        except _Stop:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is recorded, none is fatal
            self.fail(cmd, e)

    async def timeline(self, start_s: float, client: SyncClient) -> None:
        for cmd in self.schedule["commands"]:
            if cmd["phase"] != "at":
                continue
            delay = start_s + cmd["t"] * self.time_scale - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.fire(cmd)
            await client.progress(self.fired)
        # Gumby's instances run until `stop` (or the run's timeout).
        await asyncio.Event().wait()

    async def sampler(self) -> None:
        while True:
            await asyncio.sleep(STAT_INTERVAL)
            self.outputs.sample()

    async def main(self) -> int:
        env = self.env
        client = await SyncClient.connect(
            _env("PEERLAB_SYNC", env), _env("PEERLAB_RUN_TOKEN", env), [self.id],
            host=env.get("PEERLAB_HOST", "localhost"), node=int(env.get("PEERLAB_NODE", "1")))
        self.module = self.module_cls(self.id, client.instances, self.outputs, env)
        try:
            for phase in ("load", "setup"):
                for cmd in self.schedule["commands"]:
                    if cmd["phase"] == phase:
                        await self.fire(cmd)
            addr, key = await self.module.listen()
            self.outputs.event("address", text=addr, key=key)
            await client.ready(self.id, addr, key)
            start_ms, peers = await client.wait_start()
        except _Stop:
            start_ms, peers = None, []
        except SyncError as e:
            self.outputs.event("end", status="interrupted")
            sys.stderr.write(f"peerlab: {e}\n")
            return 1
        if start_ms is not None:
            self.outputs.start_unix_ms = start_ms
            self.module.peers = peers
            await self.module.on_start()
            tasks = [asyncio.ensure_future(self.timeline(start_ms / 1000.0, client)),
                     asyncio.ensure_future(client.receive()),
                     asyncio.ensure_future(self.sampler())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            for t in done:
                err = t.exception()
                if isinstance(err, _Stop):
                    pass
                elif isinstance(err, SyncError):
                    self.status, self.error = "interrupted", str(err)
                elif err is not None:
                    self.status, self.error = "failed", repr(err)
        try:
            await self.module.on_stop()
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"peerlab: on_stop failed: {e!r}\n")
        self.outputs.sample()
        self.outputs.event("end", status=self.status)
        if self.outputs.lost and self.status == "finished":
            self.status, self.error = "failed", f"output lost: {self.outputs.lost} lines could not be written"
        try:
            await client.done(self.id, self.status, self.error)
            await client.close()
        except (ConnectionError, OSError):
            pass
        return 0 if self.status == "finished" else 1


def run(module_cls, env: Optional[Dict[str, str]] = None) -> None:
    """Run ``module_cls`` as the external instance peerlab started; exits."""
    env = dict(os.environ if env is None else env)
    instance = _Instance(module_cls, env)
    sys.exit(asyncio.run(instance.main()))
