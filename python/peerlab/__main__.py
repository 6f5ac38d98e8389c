"""``python3 -m peerlab manifest my_peer.py [ClassName]``: print the callback
manifest of the module's ExperimentModule subclass (the one defined in the
file, or ClassName), for the config key ``external_callbacks``."""

from __future__ import annotations

import importlib.util
import json
import sys

from .module import ExperimentModule


def _load(path: str):
    spec = importlib.util.spec_from_file_location("peerlab_user_module", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"peerlab: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv) -> int:
    if len(argv) < 2 or argv[0] != "manifest":
        sys.stderr.write(__doc__ + "\n")
        return 2
    module = _load(argv[1])
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, ExperimentModule)
               and c is not ExperimentModule and c.__module__ == module.__name__]
    if len(argv) > 2:
        classes = [c for c in classes if c.__name__ == argv[2]]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        sys.stderr.write(f"peerlab: expected one ExperimentModule class in {argv[1]} (found: {names}); "
                         "name it: python3 -m peerlab manifest FILE CLASS\n")
        return 2
    json.dump(classes[0].manifest(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
