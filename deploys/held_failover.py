"""Keep a cascade failover while the cascade has not caught up (planner.held_failover): read
every host's facts once, before anything changes, and say which failover stays and why."""
from __future__ import annotations

from dataclasses import replace

from pyinfra import inventory, logger

from deploys.context import Context
from operations.postgres import pg_states
from operations.sync_standby import replication_looks
from planner.held_failover import failed_over_cascades, held_failovers


def hold_failovers(ctx: Context) -> Context:
    states = pg_states(ctx.topology)
    looks = None
    if failed_over_cascades(ctx.topology, states):  # only then: two looks take REPLY_WINDOW
        looks = replication_looks(inventory.get_host(ctx.topology.master.name), ctx.topology.cluster.port)
    held = held_failovers(ctx.topology, states, looks)
    if held and ctx.this_node.role == "master":
        for why in held.values():
            logger.warning(f"--> kept: {why}")
    return replace(ctx, held_failovers=held)
