"""The cascade failover, prepared for the monitor to run by itself (deploys/failover_cascade.py is
the same switch run by hand: tasks/failover_cascade.py). On the master and on each standby of a
cascade: the include file of the cluster without that cascade, ready to switch to, and the
`cascade-failed` script that switches to it (as postgres, reload only); on each standby of a
cascade, the monitor service that runs it when the cascade is really down and the master really
the primary. pg_cascade_monitor = False removes them all. Which host gets which file is the
registry's (planner.registry, concern cascade_failover).
"""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd

from deploys.context import Context
from deploys.managed_files import put_managed_files
from operations.units import ensure_unit
from planner import registry, settings
from planner.failover_cascade import watched_cascade


@deploy("Cascade failover automation")
def prepare_failover_cascade(ctx: Context) -> None:
    watched = watched_cascade(ctx.topology, ctx.this_node.name)
    if not watched:  # stopped before its unit file goes
        ensure_unit(name="no cascade monitor", service=settings.CASCADE_MONITOR_UNIT, running=False, enabled=False)
    ops = put_managed_files(ctx, registry.CASCADE_FAILOVER)
    monitor = ops.get(registry.ON_CHANGE_MONITOR)
    if monitor is not None:  # the monitor's script and unit (present or removed)
        systemd.daemon_reload(name="systemd reads the monitor's unit", _if=monitor.did_change)
    if watched:
        assert monitor is not None  # a watched cascade's monitor has its files in the registry
        # Restart first (only when running), so a first run starts it once.
        systemd.service(name="cascade monitor restarted for its new script", service=settings.CASCADE_MONITOR_UNIT,
                        restarted=True, _if=monitor.did_change)
        ensure_unit(name="cascade monitor running and enabled", service=settings.CASCADE_MONITOR_UNIT, running=True,
                    enabled=True)
