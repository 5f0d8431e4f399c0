"""Standby tiers, in order: every tier's step runs on every host (a no-op off-tier), so the
cascade is a streaming standby before any downstream clones from it."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from operations.standby import ensure_standby


@deploy("Standby tier")
def configure_standby_tier(ctx: Context, tier: int) -> None:
    ensure_standby(name=f"tier {tier}: streaming standby of its upstream", topology=ctx.topology,
                   node_name=ctx.this_node.name, tier=tier)
