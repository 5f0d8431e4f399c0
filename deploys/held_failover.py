"""Keep a cascade failover while the cascade has not caught up (planner.held_failover): read
every host's facts once, before anything changes, and say which failover stays and why."""
from __future__ import annotations

from dataclasses import replace

from pyinfra import logger

from deploys.context import Context
from deploys.preflight import cluster_facts
from planner.held_failover import held_failovers


def hold_failovers(ctx: Context) -> Context:
    held = held_failovers(ctx.topology, cluster_facts(ctx))
    if held and ctx.node.role == "master":
        for why in held.values():
            logger.warning(f"--> kept: {why}")
    return replace(ctx, held_failovers=held)
