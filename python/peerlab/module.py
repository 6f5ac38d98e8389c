"""Experiment modules in Gumby's style: a class whose methods decorated with
``@experiment_callback`` are the scenario commands its instances answer.

The callbacks' signatures are the manifest (``python3 -m peerlab manifest``):
parameter names, types from annotations (``int``, ``float``, ``bool``, else
``str``) and defaults. Arguments arrive as the scenario's words and are
converted to those types before the call. A callback may be a coroutine.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

from .outputs import Outputs
from .sync import Peer

_MARK = "__peerlab_callback__"

_TYPES = {int: "int", float: "float", bool: "bool", str: "str",
          "int": "int", "float": "float", "bool": "bool", "str": "str"}


def experiment_callback(func=None, *, name: Optional[str] = None):
    """Mark a method as a scenario callback (``@experiment_callback`` or
    ``@experiment_callback(name="other_name")``)."""
    def mark(f):
        setattr(f, _MARK, name or f.__name__)
        return f
    return mark(func) if func is not None else mark


class ExperimentModule:
    """Base class of a Python experiment module. peerlab's runner creates
    one per instance; override ``listen`` to open the instance's overlay
    socket (its address and key go into the peer table), ``on_start`` to
    act on the peer table at the common start, and ``on_stop`` to clean up.
    """

    def __init__(self, instance_id: int, instances: int, outputs: Outputs, env: Dict[str, str]):
        self.instance_id = instance_id
        self.instances = instances
        self.outputs = outputs
        self.env = env
        self.peers: List[Peer] = []
        self.run_token = env.get("PEERLAB_RUN_TOKEN", "")
        self.bind_ip = env.get("PEERLAB_BIND_IP", "127.0.0.1")
        self.port = int(env.get("PEERLAB_PORT", "0") or 0)

    # -- what a module may override ---------------------------------------

    async def listen(self) -> Tuple[str, str]:
        """Open the instance's overlay socket; return ``(addr, public_key_hex)``
        for the peer table. By default there is no overlay: a placeholder
        key (py-ipv8's ``LibNaCLPK:`` prefix and zeros) and port 0."""
        return f"{self.bind_ip}:0", "4c69624e61434c504b3a" + "00" * 64

    async def on_start(self) -> None:
        """The barrier opened: ``self.peers`` is the peer table."""

    async def on_stop(self) -> None:
        """The instance is ending (``stop``, an abort, or an error)."""

    # -- services, as a peerlab instance's host context offers them --------

    def print(self, line: str) -> None:
        """A line of this instance's ``.out``: what verdicts read."""
        self.outputs.print(str(line))

    def annotate(self, text: str) -> None:
        """An annotation in ``.events.jsonl`` (the report draws it)."""
        self.outputs.annotate(str(text))

    def stat(self, name: str, value: float) -> None:
        """Set a counter (written to ``.stats.jsonl`` every second)."""
        self.outputs.stat_set(name, value)

    def stat_add(self, name: str, value: float = 1.0) -> None:
        self.outputs.stat_add(name, value)

    def other_peers(self) -> List[Peer]:
        """Every instance of the peer table but this one."""
        return [p for p in self.peers if p.id != self.instance_id]

    # -- the callbacks ------------------------------------------------------

    @classmethod
    def callbacks(cls) -> Dict[str, Any]:
        """Scenario name -> the function, for every ``@experiment_callback``."""
        out = {}
        for klass in reversed(cls.__mro__):
            for attr, f in vars(klass).items():
                name = getattr(f, _MARK, None)
                if name is not None:
                    out[name] = f
        return out

    @classmethod
    def manifest(cls) -> Dict[str, Any]:
        """The callback manifest ``external_callbacks`` names."""
        callbacks = {}
        for name, f in sorted(cls.callbacks().items()):
            params = []
            for p in list(inspect.signature(f).parameters.values())[1:]:
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                spec = {"name": p.name, "type": _TYPES.get(p.annotation, "str")}
                if p.default is not p.empty:
                    spec["default"] = str(p.default)
                params.append(spec)
            callbacks[name] = {"params": params}
        return {"callbacks": callbacks}


def convert(ty: str, word: str):
    """A scenario word as the parameter's type."""
    if ty == "int":
        return int(word)
    if ty == "float":
        return float(word)
    if ty == "bool":
        low = word.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected bool, found `{word}`")
    return word


def bind_args(module_cls, callback: str, args: List[str], kwargs: Dict[str, str]):
    """``(positional, keyword)`` values for a call, typed by the manifest."""
    spec = module_cls.manifest()["callbacks"][callback]["params"]
    by_name = {p["name"]: p for p in spec}
    pos = []
    for i, word in enumerate(args):
        if i >= len(spec):
            raise TypeError(f"`{callback}` takes {len(spec)} arguments, got {len(args)}")
        pos.append(convert(spec[i]["type"], word))
    kw = {}
    for k, word in kwargs.items():
        if k not in by_name:
            raise TypeError(f"`{callback}` has no parameter `{k}`")
        kw[k] = convert(by_name[k]["type"], word)
    return pos, kw
