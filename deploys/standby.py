"""Standby tiers, in order: every tier's step runs on every host (a no-op off-tier), so the
cascade is a streaming standby before any downstream clones from it."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from operations.standby import ensure_standby
from planner.held_failover import include_topology


@deploy("Standby tier")
def configure_standby_tier(ctx: Context, tier: int) -> None:
    # The standbys of a cascade whose failover is kept stay with the master (in that tree they
    # are one tier up).
    topology, _ = include_topology(ctx.topology, ctx.this_node.name, ctx.held_failovers)
    ensure_standby(name=f"tier {tier}: streaming standby of its upstream", topology=topology,
                   node_name=ctx.this_node.name, tier=tier)
