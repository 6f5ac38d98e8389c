#!/usr/bin/env python3
"""peerlab against py-ipv8 on the Benaloh protocol, side by side, in one go.

For each N it runs `peerlab bench benaloh --peers N --json` (the real host,
plugin and UDP overlay) and scripts/bench/ipv8_benaloh.py with N py-ipv8
peers (installed into target/ipv8-venv by scripts/ipv8/venv.sh), one after
the other on this machine, and prints both rows and the ratio of their
protocol wall times (py-ipv8 / peerlab). "others" is the number of cores
other processes used meanwhile: compare figures taken with it near zero.

  scripts/bench/compare.py                      # N = 100, 400
  scripts/bench/compare.py --peers 100,400,1000 --shared-verification both
  scripts/bench/compare.py --peers 400 --json   # the rows as JSON lines

Needs a release build: cargo build --release --workspace.
Exit status: 0 when every run computed the right total, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def machine() -> str:
    model = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run_json(cmd: list[str], what: str) -> list[dict]:
    print(f"# running {what}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    if not rows:
        sys.exit(f"compare: {what} printed no result (exit status {proc.returncode})")
    return rows


def fmt(v, spec: str) -> str:
    if v is None:
        return "-"
    return format(v, spec)


def table(rows: list[dict]) -> str:
    head = ["N", "implementation", "pool", "wall s", "messages", "msgs/s", "cpu s",
            "peak RSS MB", "KiB/inst", "correct", "others", "py-ipv8/peerlab"]
    lines = [head]
    for r in rows:
        pool = r.get("shared_verification")
        lines.append([
            str(r["peers"]),
            r["implementation"],
            "-" if pool is None else ("on" if pool else "off"),
            fmt(r["protocol_wall_s"], ".3f"),
            fmt(r["messages"], ",d"),
            fmt(r["msgs_per_s"], ",.0f"),
            fmt(r["cpu_s"], ".2f"),
            fmt(r["peak_rss_mb"], ".1f"),
            fmt(r["kib_per_instance"], ".0f"),
            "yes" if r["correct"] else "no",
            fmt(r.get("other_load"), ".2f"),
            fmt(r.get("ratio"), ".1f") + ("x" if r.get("ratio") else ""),
        ])
    widths = [max(len(row[c]) for row in lines) for c in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers", default="100,400", help="comma-separated instance counts")
    ap.add_argument("--processes", type=int, default=1, help="peerlab processes (py-ipv8 always runs in one)")
    ap.add_argument("--shared-verification", default="auto", choices=["auto", "on", "off", "both"],
                    help="peerlab's signature pool (see peerlab bench benaloh --help)")
    ap.add_argument("--peerlab", default=str(ROOT / "target/release/peerlab"), help="the peerlab binary")
    ap.add_argument("--ipv8-timeout", type=float, default=900.0, help="seconds before py-ipv8 gives up")
    ap.add_argument("--output", default=str(ROOT / "target/bench-output"), help="peerlab's output root")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    args = ap.parse_args()
    peers = [int(p) for p in args.peers.split(",") if p.strip()]

    if not Path(args.peerlab).is_file():
        sys.exit(f"compare: {args.peerlab} is missing: run cargo build --release --workspace first")
    python = subprocess.run([str(ROOT / "scripts/ipv8/venv.sh")], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, check=True).stdout.strip()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {started}, {machine()}, load {load()} at the start", file=sys.stderr)

    rows = []
    for n in peers:
        ours = run_json([args.peerlab, "bench", "benaloh", "--json", "--peers", str(n),
                         "--processes", str(args.processes),
                         "--shared-verification", args.shared_verification,
                         "--output", args.output], f"peerlab N={n}")
        theirs = run_json([python, str(ROOT / "scripts/bench/ipv8_benaloh.py"), "--peers", str(n),
                           "--timeout", str(args.ipv8_timeout)], f"py-ipv8 N={n}")[0]
        for r in ours:
            r["implementation"] = "peerlab"
            if r["protocol_wall_s"] and theirs["protocol_wall_s"]:
                r["ratio"] = theirs["protocol_wall_s"] / r["protocol_wall_s"]
            rows.append(r)
        theirs["shared_verification"] = None
        rows.append(theirs)
        if args.json:
            for r in ours + [theirs]:
                print(json.dumps(r), flush=True)
    if not args.json:
        print(f"# {started}, {machine()}")
        print(table(rows), end="")
    return 0 if all(r["correct"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
