"""Planned switchover onto the master's caught-up synchronous standby: a short write pause,
nothing lost. Without a target, it puts the inventory's master back (after a failover and a
rejoin).

    pyinfra inventories/lab.py tasks/switchover.py [--data target=pg1] [--data max_lag_bytes=N]
                                                    [--data force=true] [--dry] -y

Steps: the archiver ships its backlog, the primary stops cleanly (its WAL senders hand every
record over), the target is promoted once it has the shutdown checkpoint and takes the VIP,
heartbeat is handed its resources there, the old primary comes back as the target's standby,
and every host gets the files of the new tree. The write pause is measured by
bench/switchover_rejoin.py.
"""
from pyinfra import host

from deploys.context import ClusterConfigError, Context, load_context
from deploys.failover_cascade_prepared import prepare_failover_cascade
from deploys.hostrules import record_synchronous_set
from deploys.managed_files import put_managed_files
from operations.postgres import ensure_config_applied, pg_states
from operations.rejoin import start_standby_streaming
from operations.switchover import mark_standby, move_vip, promote_caught_up, stop_primary
from operations.sync_standby import wait_caught_up
from planner import registry as managed_registry
from planner import settings
from planner.switchover import DEFAULT_MAX_LAG_BYTES, plan_switchover

ctx = load_context()
target = host.data.get("target") or ctx.topology.master.name
plan = plan_switchover(ctx.topology, target, pg_states(ctx.topology),
                       max_lag_bytes=int(host.data.get("max_lag_bytes", DEFAULT_MAX_LAG_BYTES)),
                       force=bool(host.data.get("force", False)))
if plan.action == "refuse":
    raise ClusterConfigError(plan.reason)

if ctx.node is not None and plan.action == "nothing":
    host.noop(plan.reason)
elif ctx.node is not None:
    assert plan.now is not None and plan.after is not None  # a switchover plan has both topologies
    old, me, c = plan.now.master.name, ctx.node.name, ctx.cluster
    stop_primary(name=f"stop {old} cleanly", topology=plan.now, node_name=me, primary=old)
    promote_caught_up(name=f"promote {target} once it has {old}'s last WAL, and give it the VIP", topology=plan.now,
                      node_name=me, primary=old, target=target)
    move_vip(name=f"heartbeat hands its resources to {target}", topology=plan.now, node_name=me, primary=old,
             target=target)
    put_managed_files(Context(topology=plan.after, secrets=ctx.secrets, node=plan.after.node(me)), managed_registry.POSTGRES)
    mark_standby(name=f"{old} becomes a standby", topology=plan.after, node_name=me, target=old)
    start_standby_streaming(name=f"{old} streams from {target}", topology=plan.after, node_name=me, target=old)
    # The new master waits for it (synchronous_standby_names) only once it has caught up.
    wait_caught_up(name=f"{old} has caught up with {target}", topology=plan.after, node_name=me, standby=old)
    ensure_config_applied(name="PostgreSQL runs with its configuration (reload or restart)", version=c.version,
                          cluster=c.name, port=c.port, files=settings.config_file_paths(c))
    # Whom the new master waits for, recorded on every host (may-promote reads it).
    record_synchronous_set(ctx=Context(topology=plan.after, secrets=ctx.secrets, node=plan.after.node(ctx.node.name)))
    # The cascade monitors watch the cascade of the tree as it now is (not the inventory's).
    prepare_failover_cascade(ctx=Context(topology=plan.after, secrets=ctx.secrets, node=plan.after.node(ctx.node.name)))
