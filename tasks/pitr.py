"""Point-in-time recovery from the backup repository onto a chosen host, as a new cluster.

    pyinfra inventories/lab.py tasks/pitr.py --data onto=pg3 --data time='2026-12-01 15:30:00+00' [--dry] -y
        (or --data lsn=0/3000060, or --data restore_point=NAME)
        [--data cluster=pitr] [--data port=5440] [--data stanza=main] [--data confirm=pg3 --data cluster=main]

The restored cluster (Debian cluster `pitr` on port 5440 by default, started by hand only:
--start-conf=manual) is promoted at the target and never archives: the live cluster and its
stanza are untouched. The other cluster hosts may be down (leave them out with --exclude). Bad
input is refused before any host is touched; the plan is checked again on live facts
when the restore runs; a second run with the same target changes nothing.
"""
from pyinfra import host

from deploys.backup import check_repository_reachable
from deploys.context import ClusterConfigError, load_context
from operations.restore import archive_current_wal, pitr_plan, restore_pitr
from planner.restore import DEFAULT_CLUSTER, DEFAULT_PORT, BadTarget, parse_target, stanza_problem

destination = host.data.get("onto")
# Only the destination and the repository host are needed: the other cluster hosts may be down
# (after a failover, leave the dead master out with --exclude).
ctx = load_context(tolerate_unreachable=lambda topology: {n.name for n in topology.nodes} - {destination})
names = [n.name for n in ctx.topology.nodes]
if destination not in names:
    raise ClusterConfigError(f"give the host to restore onto: --data onto=NAME (one of {', '.join(names)})")
try:
    target = parse_target(host.data.get("time"), host.data.get("lsn"), host.data.get("restore_point"))
except BadTarget as error:
    raise ClusterConfigError(str(error)) from None
if problem := stanza_problem(ctx.topology, host.data.get("stanza")):
    raise ClusterConfigError(problem)
check_repository_reachable(ctx)
cluster_name = str(host.data.get("cluster") or DEFAULT_CLUSTER)
try:
    port = int(host.data.get("port") or DEFAULT_PORT)
except ValueError:
    raise ClusterConfigError(f"port {host.data.get('port')!r} is not a number") from None
confirm = host.data.get("confirm")
if ctx.node is not None and ctx.node.name == destination:  # refused here, before any host is touched
    plan = pitr_plan(ctx.topology, destination, target, cluster_name, port, confirm)
    if plan.action == "refuse":
        raise ClusterConfigError(plan.reason)
if ctx.node is not None:
    archive_current_wal(name="the primary's current WAL file reaches the repository", topology=ctx.topology,
                        node_name=ctx.node.name, destination=destination, target=target, cluster_name=cluster_name,
                        port=port, confirm=confirm)
if ctx.node is not None:
    restore_pitr(name=f"restore to {target.describe()} onto {destination} as {cluster_name}", topology=ctx.topology,
                 node_name=ctx.node.name, destination=destination, target=target, cluster_name=cluster_name,
                 port=port, confirm=confirm)
