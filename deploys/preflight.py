"""Before changing anything: do the hosts' roles agree with the inventory? Stop if not.

After a failover, for example, the inventory's master is in recovery and the cascade is the
primary: running the deploy then would fight the failover. Checked once, while preparing the
master, from every host's live facts.
"""
from __future__ import annotations

from deploys.context import ClusterConfigError, Context
from operations.postgres import pg_states
from planner.standby_plan import check_cluster_roles


def check_cluster_state(ctx: Context) -> None:
    if ctx.this_node.role != "master":
        return
    facts = pg_states(ctx.topology)
    problems = check_cluster_roles(ctx.topology, facts, include_drift=False)  # never-used: pristine_hosts_of
    if problems:
        raise ClusterConfigError(
            "the cluster does not match the inventory; nothing was changed:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
