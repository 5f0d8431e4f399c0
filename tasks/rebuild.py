"""Rebuild a standby from its upstream (the downstream failed and cannot simply restart).

    pyinfra inventories/lab.py tasks/rebuild.py --data target=pg3 [--data force=true] [--dry] -y

Runs on every host so that the cluster's facts are read and checked first (a failover that
left the inventory wrong stops it), and acts on the target only.
"""
from pyinfra import host

from deploys.context import ClusterConfigError, load_context
from deploys.preflight import check_cluster_state
from operations.standby import rebuild_standby
from planner.rebuild import not_a_standby

ctx = load_context()
target = host.data.get("target")
if not target or target not in {n.name for n in ctx.topology.nodes}:
    raise ClusterConfigError(f"give the standby to rebuild: --data target=NAME (one of "
                             f"{', '.join(n.name for n in ctx.topology.nodes if n.upstream)})")
if why := not_a_standby(ctx.topology, target):  # refused before any host is touched
    raise ClusterConfigError(why)
if ctx.node is not None:
    check_cluster_state(ctx)
    rebuild_standby(name=f"rebuild {target} from its upstream", topology=ctx.topology, node_name=ctx.node.name,
                    target=target, force=bool(host.data.get("force", False)))
