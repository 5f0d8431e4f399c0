"""Keep a cascade failover while the cascade has not caught up (planner.held_failover): read
every host's facts once, before anything changes, and say which failover stays and why."""
from __future__ import annotations

from dataclasses import replace

from pyinfra import inventory, logger
from pyinfra.api.host import Host
from pyinfra.context import ctx_state

from deploys.context import Context
from facts.replication_looks import ReplicationLooks
from operations.postgres import AS_POSTGRES, pg_states
from operations.run_snapshot import read_fact
from planner.held_failover import failed_over_cascades, held_failovers

# The master's looks, read once per run (every host's deploy asks; two looks take over a second).
_LOOKS: dict[tuple[int, str, int], dict] = {}


def master_looks(master: Host, port: int) -> dict:
    key = (id(ctx_state.get()), master.name, port)
    if key not in _LOOKS:
        _LOOKS[key] = read_fact(master, ReplicationLooks, port=port, **AS_POSTGRES)
    return _LOOKS[key]


def hold_failovers(ctx: Context) -> Context:
    states = pg_states(ctx.topology)
    looks = None
    if failed_over_cascades(ctx.topology, states):  # only then: two looks take REPLY_WINDOW
        looks = master_looks(inventory.get_host(ctx.topology.master.name), ctx.topology.cluster.port)
    held = held_failovers(ctx.topology, states, looks)
    if held and ctx.this_node.role == "master":
        for why in held.values():
            logger.warning(f"--> kept: {why}")
    return replace(ctx, held_failovers=held)
