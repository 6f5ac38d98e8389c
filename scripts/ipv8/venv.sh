#!/usr/bin/env bash
# Creates (once) the Python venv with py-ipv8 that the vector script, the
# interop peer and the mixed experiment (scenarios/mixed) use, with
# peerlab's own Python client (python/, installed editable so it follows
# the checkout), and prints its python path. PyPI only; nothing else is fetched.
#   usage: scripts/ipv8/venv.sh        -> prints <repo>/target/ipv8-venv/bin/python
# IPV8_VENV: where the venv lives instead (absolute, or relative to the repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${IPV8_VENV:-target/ipv8-venv}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
PYIPV8_VERSION="${PYIPV8_VERSION:-3.2.1}"
if ! "$VENV/bin/python" -c "import ipv8, sys; from importlib.metadata import version; sys.exit(version('pyipv8') != '$PYIPV8_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pyipv8==$PYIPV8_VERSION" >&2
fi
if ! "$VENV/bin/python" -c "import peerlab, sys; sys.exit(not peerlab.__file__.startswith('$PWD/python/'))" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -e ./python >&2
fi
echo "$VENV/bin/python"
