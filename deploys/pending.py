"""The run's last step: what it left for tasks/rolling_restart.py, named, and a non-zero exit."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from deploys.managed_files import host_registry
from deploys.run_facts import heartbeat_files
from operations.managed_state import check_nothing_pending
from planner import registry, settings


@deploy("Pending changes")
def check_pending(ctx: Context) -> None:
    reg = host_registry(ctx)
    check_nothing_pending(name="nothing left for tasks/rolling_restart.py", port=ctx.cluster.port,
                          heartbeat_start_files=heartbeat_files(reg, registry.ON_CHANGE_HARESOURCES),
                          vip=ctx.cluster.vip.address if ctx.cluster.vip else "",
                          config_files=settings.config_file_paths(ctx.cluster),
                          heartbeat_reread_files=heartbeat_files(reg, registry.ON_CHANGE_HEARTBEAT))
