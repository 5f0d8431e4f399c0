"""Rejoin the former master as a standby of the new one, and restore a full cascade.

    pyinfra inventories/lab.py tasks/rejoin.py [--data target=pg1] [--data force=true]
                                               [--data method=rewind|basebackup] [--dry] -y

After heartbeat promoted the cascade, the cluster is the inventory's with the master and the
cascade swapped. This makes the former master the new master's cascading standby (pg_rewind,
else a fresh base backup) and re-points the downstream standbys to it: master -> cascade ->
downstream again, with the roles swapped. `tasks/switchover.py` then puts the inventory's roles
back. Reads every host's facts first and refuses when rejoining could lose data.
"""
from pyinfra import host

from deploys.context import ClusterConfigError, Context, load_context
from deploys.failover_cascade_prepared import prepare_failover_cascade
from deploys.hostrules import record_synchronous_set
from deploys.managed_files import put_managed_files
from operations.postgres import ensure_config_applied, pg_states
from operations.rejoin import checkpoint_new_master, rewind_former_master, start_standby_streaming
from operations.sync_standby import wait_caught_up
from planner import registry as managed_registry
from planner import settings
from planner.rejoin import current_topology

ctx = load_context()
now, why = current_topology(ctx.topology, pg_states(ctx.topology))
if now is None:
    raise ClusterConfigError(f"cannot rejoin: {why}")
target = host.data.get("target") or ctx.topology.master.name
if target == now.master.name:
    raise ClusterConfigError(f"{target} is the live primary: nothing to rejoin (give --data target=NAME)")
force = bool(host.data.get("force", False))

if ctx.node is not None:
    c = ctx.cluster
    checkpoint_new_master(name=f"checkpoint on {now.master.name} (its timeline in pg_control)",
                          inventory_topology=ctx.topology, node_name=ctx.node.name, target=target, force=force)
    rewind_former_master(name=f"rejoin {target}: stop, rewind onto {now.master.name}", inventory_topology=ctx.topology,
                         node_name=ctx.node.name, target=target, force=force,
                         method=str(host.data.get("method", "rewind")))
    # Every host's files as the cluster now is (the live primary as master): written now, applied below.
    put_managed_files(Context(topology=now, secrets=ctx.secrets, node=now.node(ctx.node.name)), managed_registry.POSTGRES)
    start_standby_streaming(name=f"{target} streams from {now.upstream_of(now.node(target)).name}", topology=now,
                            node_name=ctx.node.name, target=target)
    # The new master waits for it (synchronous_standby_names) only once it has caught up.
    wait_caught_up(name=f"{target} has caught up with {now.master.name}", topology=now, node_name=ctx.node.name,
                   standby=target)
    ensure_config_applied(name="PostgreSQL runs with its configuration (reload or restart)", version=c.version,
                          cluster=c.name, port=c.port, files=settings.config_file_paths(c))
    # Whom the new master waits for, recorded on every host (may-promote reads it).
    record_synchronous_set(ctx=Context(topology=now, secrets=ctx.secrets, node=now.node(ctx.node.name)))
    # The cascade monitors watch the cascade of the tree as it now is (not the inventory's).
    prepare_failover_cascade(ctx=Context(topology=now, secrets=ctx.secrets, node=now.node(ctx.node.name)))
