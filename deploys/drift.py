"""Before any change: every drifted registry entry of the host, with its repair and what that
disturbs (the same diff as tasks.status; --dry prints it)."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from deploys.managed_files import host_registry
from operations.managed_state import report_drift
from planner import registry


@deploy("Drift")
def report_host_drift(ctx: Context) -> None:
    c = ctx.cluster
    report_drift(name="drifted entries, their repair and its disturbance", entries=host_registry(ctx),
                 setting_names=list(registry.managed_setting_names(ctx.topology)), port=c.port,
                 role=c.replication_user, vip=c.vip.address if c.vip else "")
