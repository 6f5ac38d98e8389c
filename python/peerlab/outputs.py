"""An instance's output files, as a peerlab instance writes them
(docs/outputs.md): ``.out`` (printed lines), ``.events.jsonl``
(annotations, commands, the address, the end) and ``.stats.jsonl``
(counters, sampled). ``.err`` is the process's stderr.

Lines are written at once and flushed: a crash must not lose them. A write
that fails is counted, never fatal.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Dict, Optional


class Outputs:
    def __init__(self, out: Optional[str], events: Optional[str], stats: Optional[str]):
        self._out = out
        self._events = events
        self._stats = stats
        self.start_unix_ms: Optional[int] = None
        self.counters: Dict[str, float] = {}
        self.lost = 0

    def t(self) -> float:
        """Wall seconds since the run's common start (0 before it)."""
        if self.start_unix_ms is None:
            return 0.0
        return max(0.0, time.time() - self.start_unix_ms / 1000.0)

    def _append(self, path: Optional[str], line: str) -> None:
        if path is None:
            return
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            self.lost += 1

    def print(self, line: str) -> None:
        """A line of the instance's ``.out`` (what verdicts read)."""
        if self._out is None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            self._append(self._out, line)

    def event(self, kind: str, **fields) -> None:
        record = {"t": round(self.t(), 6), "kind": kind}
        record.update({k: v for k, v in fields.items() if v is not None})
        self._append(self._events, json.dumps(record))

    def annotate(self, text: str) -> None:
        self.event("annotation", text=text)

    def stat_set(self, name: str, value: float) -> None:
        self.counters[name] = float(value)

    def stat_add(self, name: str, value: float = 1.0) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + float(value)

    def sample(self) -> None:
        """One ``.stats.jsonl`` line with every counter, named ``stat/NAME``
        as a peerlab instance names its modules' counters."""
        counters = {f"stat/{k}": v for k, v in sorted(self.counters.items())}
        self._append(self._stats, json.dumps({"t": round(self.t(), 6), "counters": counters}))
