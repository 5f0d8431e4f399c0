"""Before changing anything: do the hosts' roles agree with the inventory? Stop if not.

After a failover, for example, the inventory's master is in recovery and the cascade is the
primary: running the deploy then would fight the failover. Checked once, while preparing the
master, from every host's live facts.
"""
from __future__ import annotations

from pyinfra import inventory

from deploys.context import ClusterConfigError, Context
from facts.replication import PgState
from operations.postgres import AS_POSTGRES
from planner.standby_plan import check_cluster_roles


def cluster_facts(ctx: Context) -> dict:
    c = ctx.cluster
    return {n.name: inventory.get_host(n.name).get_fact(PgState, version=c.version, cluster=c.name, port=c.port,
                                                        **AS_POSTGRES)
            for n in ctx.topology.nodes}


def check_cluster_state(ctx: Context) -> None:
    if ctx.node.role != "master":
        return
    facts = cluster_facts(ctx)
    pristine = [name for name, fact in facts.items() if fact.get("pristine")]
    problems = check_cluster_roles(ctx.topology, facts, pristine_hosts=pristine, include_drift=False)
    if problems:
        raise ClusterConfigError(
            "the cluster does not match the inventory; nothing was changed:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
