"""The repair when the cascading standby fails, ad hoc (tasks/failover_cascade.py).

Its standbys are re-pointed to the master, the master archives to them and waits for one of
them instead of the cascade, and PostgreSQL reloads (no restart): the include files of the
cluster without the cascade (planner.failover_cascade.without_cascade), written with the same
template and applied with the same ensure_config_applied as the deploy's own.
"""
from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy

from deploys.context import ClusterConfigError, Context, load_context
from operations.failover_cascade import (
    check_failover_cascade,
    ensure_failover_include,
    ensure_streaming_from_master,
    failover_facts,
)
from operations.postgres import ensure_config_applied
from planner.failover_cascade import (
    CascadeChoiceError,
    choose_failed_cascade,
    describe_changes,
    plan_failover_cascade,
    without_cascade,
)
from planner.model import Topology
from planner.settings import config_file_paths


def _failed(topology: Topology) -> str:
    try:
        return choose_failed_cascade(topology, host.data.get("cascade"))
    except CascadeChoiceError as error:
        raise ClusterConfigError(f"failover_cascade: {error}") from None


def load_repair_context() -> tuple[Context, str, bool]:
    """(context, the failed cascade, force): every PostgreSQL host but the failed cascade must
    be reachable (leave it out with --exclude when it is down)."""
    ctx = load_context(tolerate_unreachable=lambda topology: {_failed(topology)})
    force = host.data.get("force", False)
    if not isinstance(force, bool):
        raise ClusterConfigError(f"failover_cascade: force={force!r}: use --data force=true (or false)")
    return ctx, _failed(ctx.topology), force


def check_before_repair(ctx: Context, failed: str, force: bool) -> None:
    """While preparing the master: the facts must call for the repair, or the run stops here,
    before any operation, with the reason (pyinfra re-checks when the operations run)."""
    if ctx.this_node.role != "master":
        return
    plan = plan_failover_cascade(ctx.topology, failover_facts(ctx.topology, failed, try_connect=True), failed,
                                 force)
    if plan.action == "refuse":
        changes = describe_changes(plan)
        raise ClusterConfigError(f"failover_cascade refused: {plan.reason}"
                                 + (f"\nit would change:\n{changes}" if changes else ""))
    preview = describe_changes(plan) or "(nothing)"
    master = ctx.topology.master.name
    hosts = sorted(dict.fromkeys(host_name for host_name, _ in plan.changes), key=lambda h: h == master)
    if hosts:
        preview += f"\nthen {', '.join(hosts)} reload, in this order (no restart)"
    logger.info(f"--> failover_cascade: {plan.action}: {plan.reason}\n    changes:\n    "
                + preview.replace("\n", "\n    "))


@deploy("Cascade failover")
def repair_cascade_failure(ctx: Context, failed: str, force: bool) -> None:
    c = ctx.cluster
    after = without_cascade(ctx.topology, failed)
    name = ctx.this_node.name
    managed = config_file_paths(c)
    repointed = [n.name for n in ctx.topology.children(failed)]
    check_failover_cascade(name=f"the cluster without {failed}: checked on the master", topology=ctx.topology,
                           failed=failed, force=force)
    ensure_failover_include(name=f"standbys: include file without {failed}", topology_after=after,
                            node_name=name, step="standbys", failed=failed)
    ensure_config_applied(name="standbys: PostgreSQL reloads it", version=c.version, cluster=c.name,
                          port=c.port, files=managed)
    ensure_failover_include(name=f"master: include file without {failed}", topology_after=after,
                            node_name=name, step="master", failed=failed)
    ensure_config_applied(name="master: PostgreSQL reloads it", version=c.version, cluster=c.name,
                          port=c.port, files=managed)
    ensure_streaming_from_master(name=f"re-pointed standbys stream from {ctx.topology.master.name}",
                                 topology_after=after, node_name=name, repointed=repointed)
