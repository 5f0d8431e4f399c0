"""Heartbeat on the master and the cascade: the hapostgres resource and the VIP (IPaddr2), the
failover scripts, the boot guard of the PostgreSQL unit and the ha-watch service."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from deploys.context import Context
from deploys.managed_files import put_managed_files

# heartbeat reads these when it starts: a change needs a restart (a restart job: the newest primary
# keeps running and keeps its VIP, hostrules.release).
HA_CONFIG = ("ha.cf.j2", "haresources.j2", "authkeys.j2")
# Read at each run: a change needs nothing.
HA_SCRIPTS = ("hapostgres.j2", "pgcascade-vip.sh.j2", "may-promote.sh.j2", "boot-guard.sh.j2")
# The ha-watch loop reads them once: a change restarts it (its script carries the hostrules digest).
WATCH_FILES = ("ha-lib.sh.j2", "ha-watch.sh.j2", "pgcascade-ha-watch.service.j2")
# systemd units and drop-ins: a change needs a daemon-reload. heartbeat-restart makes systemd start
# heartbeat again after heartbeat restarted itself (when a partition heals).
UNITS = ("postgresql-boot-guard.conf.j2", "heartbeat-restart.conf.j2", "pgcascade-ha-watch.service.j2")


@deploy("Heartbeat")
def configure_heartbeat(ctx: Context) -> None:
    if ctx.cluster.vip is None or ctx.node not in ctx.topology.vip_holders:
        return
    ops = put_managed_files(ctx, tuple(dict.fromkeys(HA_CONFIG + HA_SCRIPTS + WATCH_FILES + UNITS)))
    systemd.daemon_reload(name="systemd reads the boot guard, ha-watch and heartbeat's restart",
                          _if=any_changed(*(ops[t] for t in UNITS)))
    systemd.service(name="ha-watch restarted for its new scripts", service="pgcascade-ha-watch",
                    restarted=True, _if=any_changed(*(ops[t] for t in WATCH_FILES)))
    systemd.service(name="ha-watch running and enabled", service="pgcascade-ha-watch", running=True,
                    enabled=True)
    # Restart first (it also starts a stopped daemon), so a first run starts heartbeat once.
    systemd.service(name="heartbeat restarted for its new configuration", service="heartbeat",
                    restarted=True, _if=any_changed(*(ops[t] for t in HA_CONFIG)))
    systemd.service(name="heartbeat running and enabled", service="heartbeat", running=True, enabled=True)
