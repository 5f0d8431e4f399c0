"""Rebuild a standby from its upstream (the downstream failed and cannot simply restart).

    pyinfra inventories/lab.py tasks/rebuild.py --data target=pg3 [--data force=true] [--dry] -y

Runs on every host so that the cluster's facts are read and checked first (a failover that
left the inventory wrong stops it), and acts on the target only. When the master waits for the
target (its synchronous standby, the cascade), the target's standbys take over first, as the
cascade failover does: they stream from the master, and once caught up the master waits for
them instead; a rerun of the deploy restores the tree once the rebuilt cascade has caught up.
With nobody to take over, the rebuild is refused unless forced.
"""
from pyinfra import host, inventory, logger

from deploys.context import ClusterConfigError, load_context
from deploys.preflight import check_cluster_state
from operations.failover_cascade import ensure_failover_include, ensure_streaming_from_master
from operations.postgres import ensure_config_applied, pg_states
from operations.standby import forget_archive_backlog, rebuild_standby
from operations.sync_standby import replication_looks, wait_caught_up
from operations.syncset import ensure_syncset_record
from planner.failover_cascade import without_cascade
from planner.rebuild import not_a_standby, plan_rebuild, plan_sync_handover
from planner.settings import config_file_paths, synchronous_standby_names

ctx = load_context()
target = host.data.get("target")
if not target or target not in {n.name for n in ctx.topology.nodes}:
    raise ClusterConfigError(f"give the standby to rebuild: --data target=NAME (one of "
                             f"{', '.join(n.name for n in ctx.topology.nodes if n.upstream)})")
if why := not_a_standby(ctx.topology, target):  # refused before any host is touched
    raise ClusterConfigError(why)
force = bool(host.data.get("force", False))


def hand_over_synchronous_commit(ctx, target: str) -> None:
    """The target's standbys stream from the master, then (caught up) the master waits for them."""
    after, name, c = without_cascade(ctx.topology, target), ctx.node.name, ctx.cluster
    children = [n.name for n in ctx.topology.children(target)]
    ensure_failover_include(name=f"standbys of {target}: include file without it", topology_after=after,
                            node_name=name, step="standbys", failed=target)
    ensure_config_applied(name="standbys: PostgreSQL reloads it", version=c.version, cluster=c.name, port=c.port,
                          files=config_file_paths(c))
    ensure_streaming_from_master(name=f"{', '.join(children)} stream from {after.master.name}", topology_after=after,
                                 node_name=name, repointed=children)
    for child in host.loop(children):
        wait_caught_up(name=f"{child} has caught up with {after.master.name}", topology=after, node_name=name,
                       standby=child)
    ensure_failover_include(name=f"master: include file without {target}", topology_after=after, node_name=name,
                            step="master", failed=target)
    ensure_config_applied(name="master: PostgreSQL reloads it (synchronous commit moves)", version=c.version,
                          cluster=c.name, port=c.port, files=config_file_paths(c))
    # Whom the master now waits for, recorded on every host (may-promote reads it).
    ensure_syncset_record(name="the master's synchronous set recorded on every host",
                          is_master=ctx.node.role == "master",
                          setting=synchronous_standby_names(after, after.master.name),
                          hosts=[n.name for n in ctx.topology.nodes], _sudo=True, _sudo_user="postgres")


if ctx.node is not None:
    check_cluster_state(ctx)
    facts = pg_states(ctx.topology)
    node = ctx.topology.node(target)
    upstream = node.upstream
    rebuild = plan_rebuild(ctx.topology, target, facts.get(target), facts.get(upstream) if upstream else None,
                           facts.get(ctx.topology.master.name), force=force)
    if rebuild.action == "clone":
        master = ctx.topology.master.name
        looks = replication_looks(inventory.get_host(master), ctx.topology.cluster.port) if facts.get(master) else None
        handover = plan_sync_handover(ctx.topology, target, facts, looks, force=force)
        if handover.action == "refuse":
            raise ClusterConfigError(f"rebuild {target} refused: {handover.reason}")
        if ctx.node.role == "master":
            logger.info(f"--> synchronous commit: {handover.reason}")
        if handover.action == "move":
            hand_over_synchronous_commit(ctx, target)
    rebuild_standby(name=f"rebuild {target} from its upstream", topology=ctx.topology, node_name=ctx.node.name,
                    target=target, force=force)
    forget_archive_backlog(name=f"{target}'s archive backlog on its upstream", topology=ctx.topology,
                           node_name=ctx.node.name, target=target, _if=lambda: rebuild.action == "clone")
