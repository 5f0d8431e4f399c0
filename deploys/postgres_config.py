"""Every PostgreSQL host: archive directory, managed configuration, passfile, scripts; then the
running server picks them up (reload or restart, from the facts)."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.context import Context
from deploys.managed_files import put_managed_files
from operations.postgres import ensure_config_applied, ensure_replication_role
from planner import settings
from planner.secrets import REPLICATION_PASSWORD

CONFIG_TEMPLATES = ("pgcascade.conf.j2", "pg_hba.conf.j2", "pgpass.j2", "archive-wal.sh.j2",
                    "replication-status.sh.j2", "pgbackrest-cluster-host.conf.j2",
                    "archive-pgbackrest.sh.j2")


@deploy("PostgreSQL configuration")
def configure_postgres(ctx: Context) -> None:
    c = ctx.cluster
    files.directory(name="WAL archive directory", path=c.archive_dir, user="postgres", group="postgres",
                    mode="700")
    files.directory(name="pgcascade scripts directory", path=settings.LIB_DIRECTORY, mode="755")
    put_managed_files(ctx, CONFIG_TEMPLATES)
    ensure_config_applied(name="PostgreSQL runs with its configuration (reload or restart)", version=c.version,
                          cluster=c.name, port=c.port, files=settings.config_file_paths(c))


@deploy("Master")
def configure_master(ctx: Context) -> None:
    """The replication role, before any standby clones (pyinfra orders by each host's op list)."""
    c = ctx.cluster
    ensure_replication_role(name=f"replication role {c.replication_user} (SCRAM)", version=c.version,
                            cluster=c.name, port=c.port, role=c.replication_user,
                            password=ctx.secrets[REPLICATION_PASSWORD])
