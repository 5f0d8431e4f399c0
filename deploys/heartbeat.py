"""Heartbeat on the master and the cascade: the VIP (IPaddr2) and the hapostgres resource."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from deploys.context import Context
from deploys.managed_files import put_managed_files

HA_TEMPLATES = ("ha.cf.j2", "haresources.j2", "authkeys.j2", "hapostgres.j2")


@deploy("Heartbeat")
def configure_heartbeat(ctx: Context) -> None:
    if ctx.cluster.vip is None or ctx.node not in ctx.topology.vip_holders:
        return
    changed = list(put_managed_files(ctx, HA_TEMPLATES).values())
    # Restart first (it also starts a stopped daemon), so a first run starts heartbeat once.
    systemd.service(name="heartbeat restarted for its new configuration", service="heartbeat",
                    restarted=True, _if=any_changed(*changed))
    systemd.service(name="heartbeat running and enabled", service="heartbeat", running=True, enabled=True)
