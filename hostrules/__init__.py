"""pgcascade's on-host decision rules: a stdlib-only package shipped by the deploy to every
PostgreSQL host (/usr/local/lib/pgcascade/hostrules) and imported by the planner.

Decisions are pure functions of observed state that return a Verdict (a decision and a stable
reason code, plus a sentence for the journal); reading state and acting on it live in separate
modules (nodestate reads a node, hostio talks to the other hosts, netlink reads this host's
addresses, the entry points act):

    nodestate   the one SQL query for a node's state, parsed into a NodeState
    timeline    timeline histories: is a newer timeline this primary's successor or a branch?
    syncset     the generation-numbered record of the synchronous set, and its writer
    promotion   may this standby be promoted?
    watch       what ha-watch does on this heartbeat node, check by check
    canfailover the standing "can the cluster fail over?" check
    cascade_health  the cascade monitor's verdict: does WAL flow to the cascade, fail over?
    cascademon      the cascade monitor: three psql kept open, cascade_health's verdict acted on
    sync_standby    may a standby become synchronous? only once it has caught up
    wal_backlog     archive-wal's bounded backlog of a child that does not take its WAL
    delayed_standby heartbeat's 30 s-delayed hb_standby after a failed resource start, found
                    for ha-watch to disarm

Entry points (run with PYTHONPATH=/usr/local/lib/pgcascade): python3 -m hostrules.nodestate,
python3 -m hostrules.syncset, python3 -m hostrules.maypromote, python3 -m hostrules.hawatch,
python3 -m hostrules.cascade_health, python3 -m hostrules.cascademon, python3 -m hostrules.sync_standby,
python3 -m hostrules.wal_backlog.
Python 3.7+, nothing outside the standard library.
"""
