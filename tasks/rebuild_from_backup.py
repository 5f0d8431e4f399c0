"""Rebuild a standby from the backup repository instead of a base backup from its upstream:
a delta restore of the newest backup (only the files that differ are fetched), replay of the
archived WAL from the repository, then streaming from its upstream again.

    pyinfra inventories/lab.py tasks/rebuild_from_backup.py --data target=pg3 [--data force=true] [--dry] -y

The same rules as tasks/rebuild.py (never a primary, never from an unhealthy upstream, a healthy
standby only with force); refused before any host is touched when the repository host cannot be
reached or holds no backup of the cluster. A second run changes nothing.
"""
from pyinfra import host

from deploys.backup import check_repository_reachable
from deploys.context import ClusterConfigError, load_context
from deploys.preflight import check_cluster_state
from operations.restore import read_repository, rebuild_from_repository
from planner.rebuild import not_a_standby
from planner.restore import repository_problem, stanza_problem

ctx = load_context()
target = host.data.get("target")
if not target or target not in {n.name for n in ctx.topology.nodes}:
    raise ClusterConfigError(f"give the standby to rebuild: --data target=NAME (one of "
                             f"{', '.join(n.name for n in ctx.topology.nodes if n.upstream)})")
if why := not_a_standby(ctx.topology, target) or stanza_problem(ctx.topology):  # before any host is touched
    raise ClusterConfigError(why)
check_repository_reachable(ctx)
if ctx.node is not None and ctx.node.name == target:
    if problem := repository_problem(ctx.topology, read_repository(ctx.topology)):
        raise ClusterConfigError(f"{target} cannot be rebuilt from the repository: {problem}")
if ctx.node is not None:
    check_cluster_state(ctx)
    rebuild_from_repository(name=f"rebuild {target} from the backup repository", topology=ctx.topology,
                            node_name=ctx.node.name, target=target, force=bool(host.data.get("force", False)))
