"""Each host's managed files (planner.settings.managed_files) rendered with their variables.

Files that hold a secret go through ensure_private_file (0600 from the start, never diffed);
the others through files.template.
"""
from __future__ import annotations

from pyinfra import host
from pyinfra.operations import files

from deploys.context import Context
from deploys.hostrules_package import package_digest
from operations.private_files import ensure_private_file
from planner import settings
from planner.backup import archive_pgbackrest_vars, cluster_host_config_vars
from planner.render import render, template_path
from planner.secrets import HEARTBEAT_KEY, REPLICATION_PASSWORD


def template_vars(ctx: Context, template: str) -> dict:
    topology, node = ctx.topology, ctx.node.name
    builders = {
        "pgcascade.conf.j2": lambda: settings.render_vars_pgconf(topology, node),
        "pg_hba.conf.j2": lambda: settings.render_vars_hba(topology, node),
        "pgpass.j2": lambda: settings.render_vars_pgpass(topology, node, ctx.secrets[REPLICATION_PASSWORD]),
        "archive-wal.sh.j2": settings.archive_wal_vars,
        "replication-status.sh.j2": lambda: settings.replication_status_vars(topology),
        "ha.cf.j2": lambda: settings.heartbeat_vars(topology, node),
        "haresources.j2": lambda: settings.heartbeat_vars(topology, node),
        "authkeys.j2": lambda: settings.authkeys_vars(ctx.secrets[HEARTBEAT_KEY]),
        "hapostgres.j2": lambda: settings.ha_script_vars(topology),
        "may-promote.sh.j2": lambda: settings.ha_script_vars(topology),
        "boot-guard.sh.j2": lambda: settings.ha_script_vars(topology),
        "ha-watch.sh.j2": lambda: {**settings.ha_script_vars(topology), "hostrules_digest": package_digest()},
        "ha-lib.sh.j2": lambda: settings.ha_lib_vars(topology, node),
        "postgresql-boot-guard.conf.j2": lambda: settings.boot_guard_dropin_vars(topology),
        "pgcascade-ha-watch.service.j2": settings.ha_watch_unit_vars,
        "heartbeat-restart.conf.j2": lambda: settings.heartbeat_dropin_vars(topology, node),
        "hostrules.json.j2": lambda: settings.hostrules_config_vars(topology, node),
        "pgcascade-vip.sh.j2": lambda: settings.vip_resource_vars(topology, node),
        "archive-pgbackrest.sh.j2": lambda: archive_pgbackrest_vars(topology.cluster.backup, topology.cluster),
        "pgbackrest-cluster-host.conf.j2": lambda: cluster_host_config_vars(topology.cluster.backup,
                                                                            topology.cluster),
    }
    return builders[template]()


def put_managed_files(ctx: Context, templates: tuple[str, ...]) -> dict:
    """Install the host's managed files among `templates`; returns {template: operation}."""
    ops = {}
    wanted = [m for m in settings.managed_files(ctx.topology, ctx.node.name) if m.template in templates]
    for managed in host.loop(wanted):  # one pyinfra operation per file, in the same order on every host
        variables = template_vars(ctx, managed.template)
        if managed.secret:
            ops[managed.template] = ensure_private_file(
                name=f"{managed.dest} (private)", dest=managed.dest, content=render(managed.template, variables),
                user=managed.owner, group=managed.group)
        else:
            ops[managed.template] = files.template(
                name=managed.dest, src=template_path(managed.template), dest=managed.dest,
                user=managed.owner, group=managed.group, mode=managed.mode, **variables)
    return ops
