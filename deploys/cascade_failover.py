"""The cascade's failure, prepared (the seed's postgresql.cascade / recovery.cascade copies and
its ping monitor): on the master and on each standby of a cascade, the include file of the
cluster without that cascade and the `cascade-failed` script that switches to it (as postgres,
reload only); on each standby of a cascade, the monitor service that runs it when the cascade
is really down and the master really the primary. pg_cascade_monitor = False removes them all.
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from deploys.context import Context
from planner import settings
from planner.failover_cascade import prepared_cascades, watched_cascade, without_cascade
from planner.render import template_path


def _variants(ctx: Context, cascades: tuple[str, ...]) -> None:
    name = ctx.node.name
    files.directory(name="cascade-failed variants directory", path=settings.CASCADE_FAILED_DIRECTORY,
                    user="root", group="root", mode="755")
    for cascade in host.loop(cascades):
        path = settings.cascade_variant_path(cascade)
        files.directory(name=f"{path.rsplit('/', 1)[0]}", path=path.rsplit("/", 1)[0], user="root",
                        group="root", mode="755")
        files.template(name=f"{path} (the include file without {cascade})", src=template_path("pgcascade.conf.j2"),
                       dest=path, user="root", group="root", mode="644",
                       **settings.render_vars_pgconf(without_cascade(ctx.topology, cascade), name, variant_without=cascade))
    files.template(name=settings.CASCADE_FAILED_PATH, src=template_path("cascade-failed.sh.j2"),
                   dest=settings.CASCADE_FAILED_PATH, user="root", group="root", mode="755",
                   **settings.cascade_failed_vars(ctx.topology, name))


def _monitor(ctx: Context) -> None:
    name = ctx.node.name
    script = files.template(name=settings.CASCADE_MONITOR_PATH, src=template_path("cascade-monitor.sh.j2"),
                            dest=settings.CASCADE_MONITOR_PATH, user="root", group="root", mode="755",
                            **settings.cascade_monitor_vars(ctx.topology, name))
    unit = files.template(name=settings.CASCADE_MONITOR_UNIT_PATH, src=template_path("cascade-monitor.service.j2"),
                          dest=settings.CASCADE_MONITOR_UNIT_PATH, user="root", group="root", mode="644",
                          **settings.cascade_monitor_unit_vars(ctx.topology, name))
    systemd.daemon_reload(name="systemd reads the monitor's unit", _if=unit.did_change)
    # Restart first (only when running), so a first run starts it once.
    systemd.service(name="cascade monitor restarted for its new script", service=settings.CASCADE_MONITOR_UNIT,
                    restarted=True, _if=any_changed(script, unit))
    systemd.service(name="cascade monitor running and enabled", service=settings.CASCADE_MONITOR_UNIT,
                    running=True, enabled=True)


def _no_monitor() -> None:
    systemd.service(name="no cascade monitor", service=settings.CASCADE_MONITOR_UNIT, running=False,
                    enabled=False)
    unit = files.file(name=f"no {settings.CASCADE_MONITOR_UNIT_PATH}", path=settings.CASCADE_MONITOR_UNIT_PATH,
                      present=False)
    systemd.daemon_reload(name="systemd forgets the monitor's unit", _if=unit.did_change)
    files.file(name=f"no {settings.CASCADE_MONITOR_PATH}", path=settings.CASCADE_MONITOR_PATH, present=False)


def _no_variants() -> None:
    files.directory(name=f"no {settings.CASCADE_FAILED_DIRECTORY}", path=settings.CASCADE_FAILED_DIRECTORY,
                    present=False)
    files.file(name=f"no {settings.CASCADE_FAILED_PATH}", path=settings.CASCADE_FAILED_PATH, present=False)


@deploy("Cascade failover automation")
def configure_cascade_failover(ctx: Context) -> None:
    cascades = prepared_cascades(ctx.topology, ctx.node.name)
    if cascades:
        _variants(ctx, cascades)
    else:
        _no_variants()
    if watched_cascade(ctx.topology, ctx.node.name):
        _monitor(ctx)
    else:
        _no_monitor()
