"""Ad hoc: the cascading standby failed; repair the cluster without it, by
hand (what the cascade monitor does by itself).

    pyinfra -y inventories/lab.py tasks/failover_cascade.py --exclude pg2   # pg2 is down
    pyinfra inventories/lab.py tasks/failover_cascade.py --exclude pg2 --dry
    --data cascade=NAME   the failed cascade (default: the inventory's only one)
    --data force=true     also when the cascade is healthy (taking it out for maintenance)

The cascade's standbys replicate from the master, the master archives to them and waits for one
of them (synchronous_standby_names), PostgreSQL reloads (no restart). Refuses, before changing
anything, when the master is not a running primary, when the cascade is healthy (unless forced),
and so on; a second run changes nothing. Once the cascade is back, `pyinfra -y INVENTORY
deploy.py` restores the original tree.
"""
from deploys.failover_cascade import check_before_repair, load_repair_context, repair_cascade_failure

ctx, failed, force = load_repair_context()

if ctx.node is not None and ctx.node.name != failed:  # application hosts take no part
    check_before_repair(ctx, failed, force)
    repair_cascade_failure(ctx=ctx, failed=failed, force=force)
