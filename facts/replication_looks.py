"""ReplicationLooks: two looks at a server's pg_stat_replication, REPLY_WINDOW apart
(hostrules.sync_standby.looks): whether each standby still replies, not only what its row says.
Run as postgres; {"before": rows, "after": rows}, or {"error": why}."""
from __future__ import annotations

import json

from pyinfra.api import FactBase

from planner.settings import LIB_DIRECTORY


class ReplicationLooks(FactBase):
    def command(self, port: int) -> str:
        # Never a failed command (it would fail the host): an error is data (nothing counts as caught up).
        return (f"cd / && PYTHONPATH={LIB_DIRECTORY} python3 -s -m hostrules.sync_standby looks {int(port)} "
                "|| echo '{\"error\": \"hostrules.sync_standby looks failed\"}'")

    def process(self, output) -> dict:
        try:
            looks = json.loads("\n".join(output) or "{}")
        except ValueError:
            return {"error": "unreadable looks: " + "\n".join(output)[:300]}
        return looks if isinstance(looks, dict) else {"error": f"unreadable looks: {looks!r:.300}"}
