"""The run's last step: what it left for tasks/rolling_restart.py, named, and a non-zero exit."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from deploys.managed_files import host_registry
from operations.managed_state import check_nothing_pending
from planner import registry


@deploy("Pending changes")
def check_pending(ctx: Context) -> None:
    start_files = [f.path for f in host_registry(ctx).files_of(registry.HEARTBEAT)
                   if f.on_change == registry.ON_CHANGE_HARESOURCES]
    check_nothing_pending(name="nothing left for tasks/rolling_restart.py", port=ctx.cluster.port,
                          heartbeat_start_files=start_files, vip=ctx.cluster.vip.address if ctx.cluster.vip else "")
