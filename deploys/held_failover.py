"""Keep a cascade failover while the cascade has not caught up (planner.held_failover): read
every host's facts once, before anything changes, and say which failover stays and why."""
from __future__ import annotations

from dataclasses import replace

from pyinfra import logger

from deploys.context import Context
from operations.postgres import pg_states
from planner.held_failover import held_failovers


def hold_failovers(ctx: Context) -> Context:
    held = held_failovers(ctx.topology, pg_states(ctx.topology))
    if held and ctx.this_node.role == "master":
        for why in held.values():
            logger.warning(f"--> kept: {why}")
    return replace(ctx, held_failovers=held)
