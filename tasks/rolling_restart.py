"""Apply what a deploy rerun leaves pending, without an outage: restart-only settings and
heartbeat's haresources on the primary's node.

    pyinfra inventories/lab.py tasks/rolling_restart.py [--data force=true] [--dry] -y

Steps (planner/rolling_restart.py): the standbys with pending settings restart, leaves first;
heartbeat restarts where it holds no resources; a switchover onto the master's direct standby;
the old primary comes back as its standby (it starts with its new settings) and heartbeat
restarts there; a switchover back. The write pause is the switchovers' (about 1 s each). It
refuses, before any change, when the cluster does not match the inventory or the standby to
switch over to is not caught up; a second run finds nothing pending.
"""
from pyinfra import host, inventory

from deploys.context import ClusterConfigError, Context, load_context
from deploys.failover_cascade_prepared import prepare_failover_cascade
from deploys.managed_files import put_managed_files
from facts.managed import HeartbeatConfigState
from operations.cascade_hold import end_planned_restart_hold, hold_for_planned_restart
from operations.managed_state import HEARTBEAT_REREAD_STAMP, check_nothing_pending, ensure_heartbeat_config_read
from operations.postgres import ensure_config_applied, pg_states
from operations.rejoin import start_standby_streaming
from operations.rolling_restart import restart_pending_standby
from operations.switchover import mark_standby, move_vip, promote_caught_up, stop_primary
from planner import registry, settings
from planner.model import Topology
from planner.rolling_restart import plan_rolling_restart

ctx = load_context()


def _haresources_pending() -> dict:
    if ctx.cluster.vip is None:
        return {}
    pending = {}
    for node in ctx.topology.vip_holders:
        files = _start_files(node.name)
        state = inventory.get_host(node.name).get_fact(
            HeartbeatConfigState, files=files, stamp=HEARTBEAT_REREAD_STAMP,
            started_copy_dir=settings.HEARTBEAT_STARTED_COPY_DIRECTORY, vip=ctx.cluster.vip.address, _sudo=True)
        pending[node.name] = registry.heartbeat_action(state, [], files)[0] in ("restart", "pending")
    return pending


def _start_files(name: str) -> list[str]:
    reg = registry.entries(ctx.topology, name, ctx.secrets)
    return [f.path for f in reg.files_of(registry.HEARTBEAT) if f.on_change == registry.ON_CHANGE_HARESOURCES]


def _heartbeat(name: str) -> None:
    if ctx.cluster.vip is not None and ctx.node in ctx.topology.vip_holders:
        ensure_heartbeat_config_read(name=name, reread_files=[], start_files=_start_files(ctx.node.name),
                                     vip=ctx.cluster.vip.address)


def _switch(before: Topology, after: Topology, target: str) -> None:
    """The switchover steps of tasks/switchover.py, from `before` to `after` (target the master)."""
    old, me, c = before.master.name, ctx.this_node.name, ctx.cluster
    stop_primary(name=f"stop {old} cleanly", topology=before, node_name=me, primary=old)
    promote_caught_up(name=f"promote {target} once it has {old}'s last WAL, and give it the VIP", topology=before,
                      node_name=me, primary=old, target=target)
    move_vip(name=f"heartbeat hands its resources to {target}", topology=before, node_name=me, primary=old,
             target=target)
    put_managed_files(Context(topology=after, secrets=ctx.secrets, node=after.node(me)), registry.POSTGRES)
    mark_standby(name=f"{old} becomes a standby", topology=after, node_name=me, target=old)
    start_standby_streaming(name=f"{old} streams from {target} (with its new settings)", topology=after,
                            node_name=me, target=old)
    ensure_config_applied(name="PostgreSQL runs with its configuration (reload, or restart of a standby)",
                          version=c.version, cluster=c.name, port=c.port, files=settings.config_file_paths(c))
    prepare_failover_cascade(ctx=Context(topology=after, secrets=ctx.secrets, node=after.node(me)))


plan = plan_rolling_restart(ctx.topology, pg_states(ctx.topology), _haresources_pending(),
                            force=bool(host.data.get("force", False)))
if plan.action == "refuse":
    raise ClusterConfigError(plan.reason)

if ctx.node is not None and plan.action == "nothing":
    host.noop(plan.reason)
elif ctx.node is not None:
    assert plan.away is not None and plan.via is not None  # a rolling plan has its switchover
    if ctx.node.name == ctx.topology.master.name:
        host.log(f"rolling restart: {plan.reason}")
    for tier in host.loop(range(len(ctx.topology.tiers()) - 1, 0, -1)):
        hold_for_planned_restart(name=f"tier {tier}: cascade monitors wait while their cascade restarts",
                                 topology=ctx.topology, node_name=ctx.node.name, files=[], tier=tier)
        restart_pending_standby(name=f"tier {tier}: standbys restart for their pending settings",
                                topology=ctx.topology, node_name=ctx.node.name, tier=tier)
        end_planned_restart_hold(name=f"tier {tier}: cascade monitors judge again", topology=ctx.topology,
                                 node_name=ctx.node.name)
    _heartbeat("heartbeat restarts where it holds no resources (haresources)")
    _switch(ctx.topology, plan.away, plan.via)
    _heartbeat("heartbeat restarts on the old primary's node, which holds nothing now (haresources)")
    _switch(plan.away, ctx.topology, ctx.topology.master.name)
    check_nothing_pending(name="nothing left pending", port=ctx.cluster.port,
                          heartbeat_start_files=_start_files(ctx.node.name) if ctx.node in ctx.topology.vip_holders
                          and ctx.cluster.vip else [], vip=ctx.cluster.vip.address if ctx.cluster.vip else "")
