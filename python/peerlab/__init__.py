"""peerlab's Python client: run your own code as instances of a peerlab run.

A peerlab run can include *external instances* (``external_instances``,
``external_cmd`` in the experiment's config). peerlab starts each one with
its environment naming the sync server, the run's token, the instance id and
its output files (docs/sync-protocol.md). This package speaks the sync
protocol for it, fires the scenario's commands for its instance on an
asyncio loop (Gumby's ``@experiment_callback`` style), and writes the same
``.out``/``.events.jsonl``/``.stats.jsonl`` files as a peerlab instance, so
verdicts and the report read them like any other::

    from peerlab import ExperimentModule, experiment_callback, run

    class MyPeer(ExperimentModule):
        @experiment_callback
        def publish(self, count: int = 1):
            self.print(f"published {count}")

    if __name__ == "__main__":
        run(MyPeer)

``python3 -m peerlab manifest my_peer.py`` writes the callback manifest
that ``external_callbacks`` names, so ``peerlab check`` checks the
scenario's commands for these instances before anything starts.
"""

from .module import ExperimentModule, experiment_callback
from .runner import run
from .sync import Peer, SyncClient, SyncError

__all__ = [
    "ExperimentModule",
    "experiment_callback",
    "run",
    "Peer",
    "SyncClient",
    "SyncError",
]
