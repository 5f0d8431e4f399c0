"""The on-host decision rules on every PostgreSQL host: the hostrules package (stdlib-only python3,
the same code the planner imports) in /usr/local/lib/pgcascade/hostrules, where this host stands
for it (/etc/pgcascade/hostrules.json), and, on the master, the synchronous-set record."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from deploys.managed_files import put_managed_files
from operations.syncset import ensure_syncset_record
from planner import registry, settings
from planner.held_failover import include_topology


@deploy("On-host decision rules")
def install_hostrules(ctx: Context) -> None:
    put_managed_files(ctx, registry.HOSTRULES)  # its directory, the package's files, hostrules.json


@deploy("Synchronous-set record")
def record_synchronous_set(ctx: Context) -> None:
    """On the master, once its standbys exist: the record of whom it waits for, on every host
    (while a cascade failover is kept, the cluster without that cascade's: planner.held_failover)."""
    topology, _ = include_topology(ctx.topology, ctx.this_node.name, ctx.held_failovers)
    ensure_syncset_record(name="the master's synchronous set recorded on every host",
                          is_master=ctx.this_node.role == "master",
                          setting=settings.synchronous_standby_names(topology, ctx.this_node.name),
                          hosts=[n.name for n in ctx.topology.nodes],
                          _sudo=True, _sudo_user="postgres")
