"""Heartbeat on the master and the cascade: the hapostgres resource and the VIP (IPaddr2), the
failover scripts, the boot guard of the PostgreSQL unit and the ha-watch service."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from deploys.context import Context
from deploys.managed_files import host_registry, put_managed_files
from deploys.run_facts import heartbeat_files
from operations.managed_state import ensure_heartbeat_config_read
from operations.units import ensure_unit
from planner import registry


def _paths(ctx: Context, on_change: str) -> list[str]:
    return heartbeat_files(host_registry(ctx), on_change)


@deploy("Heartbeat")
def configure_heartbeat(ctx: Context) -> None:
    if ctx.cluster.vip is None or ctx.node not in ctx.topology.vip_holders:
        return
    ops = put_managed_files(ctx, registry.HEARTBEAT)
    systemd.daemon_reload(name="systemd reads the boot guard, ha-watch and heartbeat's restart",
                          _if=any_changed(ops[registry.ON_CHANGE_UNIT], ops[registry.ON_CHANGE_WATCH]))
    # From the files' change times, not this run's changes: a mode fix reloads nothing, and a
    # change left by an interrupted run is still applied. Never a restart on the resource holder.
    ensure_heartbeat_config_read(name="heartbeat runs with its files (heartbeat -r; haresources: restart off the holder)",
                                 reread_files=_paths(ctx, registry.ON_CHANGE_HEARTBEAT),
                                 start_files=_paths(ctx, registry.ON_CHANGE_HARESOURCES),
                                 vip=ctx.cluster.vip.address)
    ensure_unit(name="heartbeat running and enabled", service="heartbeat", running=True, enabled=True)
    # After heartbeat: on a first deploy heartbeat is still failed from its package's start
    # without a configuration, which ha-watch would otherwise repair in the deploy's stead.
    systemd.service(name="ha-watch restarted for its new scripts", service="pgcascade-ha-watch",
                    restarted=True, _if=ops[registry.ON_CHANGE_WATCH].did_change)
    ensure_unit(name="ha-watch running and enabled", service="pgcascade-ha-watch", running=True, enabled=True)
