"""pgcascade: the whole cluster set-up, idempotent. `pyinfra INVENTORY deploy.py [--dry]`.

Order matters and is explicit: packages everywhere (the backup repository host's too, all at
once), the backup repository host's ssh key, ssh trust, configuration everywhere, the master's
replication role, then one standby tier at a time (cascade, then downstream...), the backup
repository's stanza, heartbeat on the VIP holders, the monitoring script; the backup schedule
and the first backup last, when the inventory has a backup repository host.
"""
from pyinfra import host

from deploys.backup import check_repository_reachable, configure_backups, configure_repository, prepare_backup_host
from deploys.context import load_context
from deploys.drift import report_host_drift
from deploys.failover_cascade_prepared import prepare_failover_cascade
from deploys.heartbeat import configure_heartbeat
from deploys.held_failover import hold_failovers
from deploys.hostrules import install_hostrules, record_synchronous_set
from deploys.packages import install_packages
from deploys.pending import check_pending
from deploys.postgres_config import configure_master, configure_postgres
from deploys.preflight import check_cluster_state
from deploys.run_facts import share_fact_reads
from deploys.ssh_trust import configure_ssh_trust
from deploys.standby import configure_standby_tier

ctx = load_context()  # the inventory, secrets and reachability: stops here on bad input
share_fact_reads(ctx)  # each host's facts read in one command, shared until the run's first change

check_repository_reachable(ctx)  # the backup repository host, when the inventory has one: stops here
if ctx.node is not None:  # application hosts only appear in pg_hba
    check_cluster_state(ctx)  # the facts agree with the inventory's roles, or stop
    ctx = hold_failovers(ctx=ctx)  # a failed-over cascade comes back only once it has caught up
    report_host_drift(ctx=ctx)  # what drifted, the repair and what it disturbs (also with --dry)
install_packages(ctx=ctx)  # the PostgreSQL hosts and the backup repository host, all at once
prepare_backup_host(ctx=ctx)  # the backup repository host's ssh key, before the cluster's ssh trust
if ctx.node is not None:
    configure_ssh_trust(ctx=ctx)
    install_hostrules(ctx=ctx)  # the on-host decision rules, before any script that uses them
    configure_postgres(ctx=ctx)
    if ctx.this_node.role == "master":
        configure_master(ctx=ctx)
    for tier in host.loop(range(1, len(ctx.topology.tiers()))):
        configure_standby_tier(ctx=ctx, tier=tier)
configure_repository(ctx=ctx)  # pgBackRest's repository and stanza, once the master is the one primary (every host)
if ctx.node is not None:
    record_synchronous_set(ctx=ctx)  # whom the master waits for, on every host (may-promote reads it)
    configure_heartbeat(ctx=ctx)
    prepare_failover_cascade(ctx=ctx)  # the cascade's standbys fail over by themselves when it dies
    check_pending(ctx=ctx)  # fails naming what only tasks/rolling_restart.py applies (never a rerun)
configure_backups(ctx=ctx)  # pgBackRest's schedule and first backup (every host)
