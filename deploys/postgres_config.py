"""Every PostgreSQL host: archive directory, managed configuration, passfile, scripts; then the
running server picks them up (reload or restart, from the facts)."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import systemd

from deploys.context import Context
from deploys.managed_files import put_managed_files
from operations.cascade_hold import end_planned_restart_hold, hold_for_planned_restart
from operations.managed_state import ensure_setting_sources
from operations.postgres import ensure_cluster_exists, ensure_config_applied, ensure_replication_role
from planner import registry, settings
from planner.secrets import REPLICATION_PASSWORD


@deploy("PostgreSQL configuration")
def configure_postgres(ctx: Context) -> None:
    c = ctx.cluster
    ensure_cluster_exists(name=f"cluster {c.version}/{c.name} exists", version=c.version, cluster=c.name, port=c.port,
                          config_directory=c.config_directory, data_directory=c.data_directory)
    ops = put_managed_files(ctx, registry.POSTGRES)  # the WAL archive and scripts directories too
    systemd.daemon_reload(name="systemd reads the PostgreSQL unit's restart drop-in",
                          _if=ops[registry.ON_CHANGE_UNIT].did_change)
    ensure_setting_sources(name="managed settings come from the include file only (ALTER SYSTEM, other files, roles)",
                           version=c.version, cluster=c.name, port=c.port,
                           include_file=f"{c.config_directory}/conf.d/{settings.INCLUDE_FILE_NAME}",
                           main_config_file=f"{c.config_directory}/postgresql.conf",
                           managed=list(settings.guc_names(ctx.topology)),
                           guarded=list(registry.GUARDED_ROLE_SETTINGS), role=c.replication_user)
    files = settings.config_file_paths(c)
    # A restart of the cascade is planned, not a failure: its standbys' monitors wait meanwhile.
    hold_for_planned_restart(name="cascade monitors wait while the cascade restarts", topology=ctx.topology,
                             node_name=ctx.this_node.name, files=files)
    ensure_config_applied(name="PostgreSQL runs with its configuration (reload or restart)", version=c.version,
                          cluster=c.name, port=c.port, files=files,
                          is_standby=ctx.this_node.role != "master")
    end_planned_restart_hold(name="cascade monitors judge again once the cascade streams", topology=ctx.topology,
                             node_name=ctx.this_node.name)


@deploy("Master")
def configure_master(ctx: Context) -> None:
    """The replication role, before any standby clones (pyinfra orders by each host's op list)."""
    c = ctx.cluster
    ensure_replication_role(name=f"replication role {c.replication_user} (SCRAM)", version=c.version,
                            cluster=c.name, port=c.port, role=c.replication_user,
                            password=ctx.secrets[REPLICATION_PASSWORD])
