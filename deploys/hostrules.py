"""The on-host decision rules on every PostgreSQL host: the hostrules package (stdlib-only python3,
the same code the planner imports) in /usr/local/lib/pgcascade/hostrules, where this host stands
for it (/etc/pgcascade/hostrules.json), and, on the master, the synchronous-set record."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.context import Context
from deploys.hostrules_package import package_files
from deploys.managed_files import put_managed_files
from operations.syncset import ensure_syncset_record
from planner import settings


@deploy("On-host decision rules")
def install_hostrules(ctx: Context) -> None:
    files.directory(name="hostrules package directory", path=settings.HOSTRULES_DIRECTORY, mode="755")
    for path in package_files():
        files.put(name=f"{settings.HOSTRULES_DIRECTORY}/{path.name}", src=str(path),
                  dest=f"{settings.HOSTRULES_DIRECTORY}/{path.name}", mode="644")
    put_managed_files(ctx, ("hostrules.json.j2",))


@deploy("Synchronous-set record")
def record_synchronous_set(ctx: Context) -> None:
    """On the master, once its standbys exist: the record of whom it waits for, on every host."""
    ensure_syncset_record(name="the master's synchronous set recorded on every host",
                          is_master=ctx.node.role == "master",
                          setting=settings.synchronous_standby_names(ctx.topology, ctx.node.name),
                          hosts=[n.name for n in ctx.topology.nodes],
                          _sudo=True, _sudo_user="postgres")
