"""planner.standby_plan: the safety core, one scenario per row."""
from __future__ import annotations

import pytest

from planner.standby_plan import (
    PrimaryPlan,
    StandbyPlan,
    check_cluster_roles,
    parse_conninfo,
    plan_primary,
    plan_standby,
    restart_or_reload,
    server_state,
)
from tests.unit.pg_states import (
    CASCADE_UP,
    MASTER_UP,
    OTHER_SYSID,
    PG4_UP,
    STANDBY_SETTINGS,
    TOPOLOGY,
    configured_standby,
    conninfo,
    five_hosts_topology,
    pg_state,
)

# (id, host, fact, upstream_fact, is_pristine, master_fact, action, words in the reason)
STANDBY_CASES = [
    # --- nothing to lose: clone
    ("no-cluster", "pg2", pg_state("absent"), MASTER_UP, False, None,
     "clone", ["pg2 is without a cluster 15/main", "take a base backup from pg1"]),
    ("not-installed", "pg2", pg_state("not_installed"), MASTER_UP, False, None,
     "clone", ["without PostgreSQL 15 installed"]),
    ("pristine-debian-default-same-image", "pg2", pg_state("primary"), MASTER_UP, True, None,
     "clone", ["never-used cluster 15/main", "take a base backup from pg1"]),
    ("pristine-debian-default-own-sysid", "pg3", pg_state("primary", system_identifier=OTHER_SYSID), CASCADE_UP, True, MASTER_UP,
     "clone", ["never-used", "from pg2"]),
    ("pristine-stopped", "pg2", pg_state("stopped_primary"), MASTER_UP, True, None, "clone", ["never-used"]),
    ("empty-data-directory", "pg2", pg_state("empty"), MASTER_UP, False, None,
     "clone", ["nothing worth keeping", "interrupted base backup"]),
    ("unreadable-declared-pristine", "pg2", pg_state("unreadable"), MASTER_UP, True, None,
     "clone", ["nothing worth keeping"]),
    ("pristine-from-the-fact", "pg2", pg_state("primary", pristine=True), MASTER_UP, None, None,
     "clone", ["never-used cluster"]),
    ("not-pristine-from-the-fact", "pg2", pg_state("primary", pristine=False), MASTER_UP, None, None,
     "refuse", ["holds data"]),
    ("pristine-unknown-from-the-fact", "pg2", pg_state("primary", pristine=None), MASTER_UP, None, None,
     "refuse", ["holds data"]),
    ("deeper-chain-clone-from-downstream", "pg5", pg_state("absent"), PG4_UP, False, MASTER_UP,
     "clone", ["take a base backup from pg4"]),
    # --- what an interrupted clone left: clone again, and nothing else
    ("interrupted-clone-copied-never-run", "pg2", pg_state("stopped_primary", backup_label="pgcascade clone"),
     MASTER_UP, None, None, "clone", ["a copy that a clone made and never ran"]),
    ("interrupted-clone-partial-copy", "pg2", pg_state("unreadable", backup_label="pgcascade clone"),
     MASTER_UP, None, None, "clone", ["never ran"]),
    ("someone-elses-base-backup-never-run", "pg2", pg_state("stopped_primary", backup_label="pg_basebackup base backup"),
     MASTER_UP, None, None, "refuse", ["whether it was ever used cannot be"]),
    ("clone-copied-and-signalled-not-started", "pg2",
     pg_state("stopped_standby", backup_label="pgcascade clone", primary_conninfo=conninfo("pg2"),
              settings=STANDBY_SETTINGS), MASTER_UP, None, None, "start", ["stopped standby"]),
    ("interrupted-clone-emptied-directory", "pg2", pg_state("unreadable", clone_marker=OTHER_SYSID),
     MASTER_UP, None, None, "clone", ["interrupted clone left"]),
    ("unreadable-without-marker", "pg2", pg_state("unreadable"), MASTER_UP, None, None, "refuse", ["check it by hand"]),
    ("interrupted-clone-stopped-the-never-used-cluster", "pg2",
     pg_state("stopped_primary", system_identifier=OTHER_SYSID, clone_marker=OTHER_SYSID),
     MASTER_UP, None, None, "clone", ["never-used cluster that an interrupted clone was replacing"]),
    ("marker-of-another-cluster", "pg2", pg_state("stopped_primary", clone_marker=OTHER_SYSID),
     MASTER_UP, None, None, "refuse", ["whether it was ever used cannot be"]),
    ("marker-but-promoted-since", "pg2",
     pg_state("stopped_primary", system_identifier=OTHER_SYSID, clone_marker=OTHER_SYSID, timeline=2),
     MASTER_UP, None, None, "refuse", []),
    ("marker-but-running-with-data", "pg2", pg_state("primary", clone_marker="none"),
     MASTER_UP, None, None, "refuse", ["holds data"]),
    ("marker-left-by-a-clone-that-ran", "pg2", {**CASCADE_UP, "clone_marker": "none"},
     MASTER_UP, None, None, "nothing", ["running standby of pg1"]),
    # --- real data that is not a standby of ours: refuse
    ("used-primary-same-timeline", "pg2", pg_state("primary"), MASTER_UP, False, None,
     "refuse", ["pg2 is a running primary on timeline 1 that holds data", "refusing to clone over it",
                "pg_dropcluster --stop 15 main"]),
    ("promoted-cascade", "pg2", pg_state("primary", timeline=2), pg_state("standby", timeline=1), False, None,
     "refuse", ["pg2 is a running primary on timeline 2, newer than its upstream pg1 (timeline 1)", "failover",
                "make it the master in the inventory"]),
    ("pristine-flag-but-promoted", "pg2", pg_state("primary", timeline=2), MASTER_UP, True, None,
     "refuse", ["newer than its upstream pg1"]),
    ("pristine-flag-but-in-recovery-without-signal", "pg2", pg_state("primary", in_recovery=True, primary_conninfo=conninfo("pg2"),
                                                                      settings=dict(STANDBY_SETTINGS)), MASTER_UP, True, None,
     "repoint", ["no standby.signal"]),
    ("old-master-after-failover", "pg2", pg_state("primary", timeline=1), pg_state("primary", timeline=2), False, None,
     "refuse", ["older than its upstream pg1 (timeline 2)", "former primary", "pg_rewind"]),
    ("stopped-old-master", "pg2", pg_state("stopped_primary", timeline=1), pg_state("primary", timeline=2), False, None,
     "refuse", ["pg2 is a stopped primary on timeline 1, older than its upstream"]),
    ("stopped-debian-default", "pg2", pg_state("stopped_primary"), MASTER_UP, None, None,
     "refuse", ["cannot be told while it is stopped", "pg_ctlcluster 15 main start"]),
    ("primary-of-another-cluster", "pg3", pg_state("primary", system_identifier=OTHER_SYSID), CASCADE_UP, False, MASTER_UP,
     "refuse", ["holding another cluster (system identifier 7399999999999999999, the cluster's is 7300000000000000001)"]),
    ("unreadable-with-content", "pg2", pg_state("unreadable"), MASTER_UP, False, None,
     "refuse", ["pg_control cannot be read", "not empty", "rm -rf /var/lib/postgresql/15/main/*"]),
    ("unreachable-host", "pg2", None, MASTER_UP, False, None, "refuse", ["could not be read"]),
    # --- standbys of our cluster: never cloned
    ("healthy-cascade", "pg2", CASCADE_UP, MASTER_UP, False, None, "nothing", ["running standby of pg1"]),
    ("healthy-but-pristine-flag", "pg2", CASCADE_UP, MASTER_UP, True, None, "nothing", ["running standby of pg1"]),
    ("healthy-downstream-upstream-down", "pg3", configured_standby("pg3"), None, False, MASTER_UP, "nothing", ["pg3"]),
    ("conninfo-same-pairs-other-spelling", "pg2",
     configured_standby("pg2", primary_conninfo="passfile='/var/lib/postgresql/.pgpass'  application_name=standby_1 "
                                                "user = replicator host='10.0.0.1' port=5432"),
     MASTER_UP, False, None, "nothing", ["as configured"]),
    ("stopped-standby", "pg2", configured_standby("pg2", "stopped_standby"), MASTER_UP, False, None,
     "start", ["stopped standby of pg1", "start it"]),
    ("stopped-standby-settings-unknown", "pg2",
     configured_standby("pg2", "stopped_standby", primary_conninfo=None, settings={k: None for k in STANDBY_SETTINGS}),
     MASTER_UP, False, None, "start", ["start it"]),
    ("stopped-standby-upstream-unreachable", "pg3", configured_standby("pg3", "stopped_standby"), None, False, MASTER_UP,
     "start", ["pg2 is down", "connect when pg2 is back"]),
    ("wrong-upstream", "pg3", configured_standby("pg3", primary_conninfo=conninfo("pg2")), CASCADE_UP, False, MASTER_UP,
     "repoint", ["host=10.0.0.1", "wanted host=10.0.0.2", "no clone"]),
    ("seed-style-password-in-conninfo", "pg2",
     configured_standby("pg2", primary_conninfo="host=10.0.0.1 port=5432 application_name=standby_1 user=replicator password=secret"),
     MASTER_UP, False, None, "repoint", ["password=***", "passfile=/var/lib/postgresql/.pgpass"]),
    ("restore-command-differs", "pg2", configured_standby("pg2", settings={**STANDBY_SETTINGS, "restore_command": "false"}),
     MASTER_UP, False, None, "repoint", ["restore_command is 'false' (wanted 'cp /var/lib/postgresql/wal_archive/%f %p')"]),
    ("setting-not-reported", "pg2", configured_standby("pg2", settings={"restore_command": STANDBY_SETTINGS["restore_command"]}),
     MASTER_UP, False, None, "repoint", ["recovery_target_timeline is not set"]),
    ("setting-unknown-guc-when-running", "pg2", configured_standby("pg2", settings={**STANDBY_SETTINGS, "restore_command": None}),
     MASTER_UP, False, None, "repoint", ["restore_command is not set"]),
    ("masked-password-from-the-fact", "pg2",
     configured_standby("pg2", primary_conninfo="host=10.0.0.1 port=5432 user=replicator password=********"),
     MASTER_UP, False, None, "repoint", ["password=***"]),
    ("stopped-standby-unset-conninfo", "pg2", configured_standby("pg2", "stopped_standby", primary_conninfo=""),
     MASTER_UP, False, None, "repoint", ["primary_conninfo is unset"]),
    ("deeper-chain-repoint", "pg5", configured_standby("pg5", primary_conninfo=conninfo("pg3")), PG4_UP, False, MASTER_UP,
     "repoint", ["wanted host=10.0.0.4"]),
    ("standby-of-another-cluster", "pg3", configured_standby("pg3", system_identifier=OTHER_SYSID), CASCADE_UP, False, MASTER_UP,
     "refuse", ["a running standby on timeline 1 of another cluster", "7399999999999999999"]),
    ("standby-newer-timeline-than-upstream", "pg3", configured_standby("pg3", timeline=3), configured_standby("pg2", timeline=2),
     False, MASTER_UP, "refuse", ["newer than its upstream pg2 (timeline 2)", "followed another primary"]),
    # --- an upstream that cannot be trusted blocks clone and repoint
    ("clone-upstream-unreachable", "pg2", pg_state("absent"), None, False, None,
     "refuse", ["its upstream pg1 could not be reached"]),
    ("clone-upstream-stopped", "pg2", pg_state("absent"), pg_state("stopped_primary"), False, None,
     "refuse", ["its upstream pg1 is not running", "pg_ctlcluster 15 main start"]),
    ("clone-master-in-recovery", "pg2", pg_state("primary"), pg_state("standby"), True, None,
     "refuse", ["the master in the inventory, is in recovery", "failover"]),
    ("clone-upstream-not-cloned-yet", "pg3", pg_state("primary"), pg_state("primary"), True, MASTER_UP,
     "refuse", ["its upstream pg2 is a primary, not a standby", "deploy pg2 first"]),
    ("clone-upstream-of-another-cluster", "pg3", pg_state("absent"), configured_standby("pg2", system_identifier=OTHER_SYSID),
     False, MASTER_UP, "refuse", ["its upstream pg2 holds another cluster"]),
    ("clone-upstream-absent", "pg3", pg_state("absent"), pg_state("absent"), False, MASTER_UP,
     "refuse", ["its upstream pg2 is without a cluster 15/main (deploy pg2 first)"]),
    ("repoint-upstream-unreachable", "pg3", configured_standby("pg3", primary_conninfo=conninfo("pg2")), None, False, MASTER_UP,
     "refuse", ["needs re-pointing", "its upstream pg2 could not be reached"]),
    ("repoint-upstream-not-cloned-yet", "pg3", configured_standby("pg3", primary_conninfo=""), pg_state("primary"),
     False, MASTER_UP, "refuse", ["needs re-pointing", "its upstream pg2 is a primary, not a standby"]),
    ("repoint-master-in-recovery", "pg2", configured_standby("pg2", primary_conninfo=""), pg_state("standby"), False, None,
     "refuse", ["needs re-pointing", "is in recovery (a standby)"]),
]


# Refusals that only wait for the upstream to be deployed earlier in the same run.
WAITS_FOR = {
    "clone-upstream-stopped": "pg1",
    "clone-upstream-not-cloned-yet": "pg2",
    "clone-upstream-absent": "pg2",
    "repoint-upstream-not-cloned-yet": "pg2",
}


@pytest.mark.parametrize(
    "case_id, host, fact, upstream_fact, is_pristine, master_fact, action, words",
    STANDBY_CASES,
    ids=[case[0] for case in STANDBY_CASES],
)
def test_plan_standby(case_id, host, fact, upstream_fact, is_pristine, master_fact, action, words):
    plan = plan_standby(
        TOPOLOGY, TOPOLOGY.node(host), fact, upstream_fact,
        desired_conninfo=conninfo(host), desired_settings=STANDBY_SETTINGS,
        is_pristine=is_pristine, master_fact=master_fact,
    )
    assert plan.action == action, plan.reason
    for word in words:
        assert word in plan.reason
    assert "secret" not in plan.reason  # a password found in a conninfo is never echoed
    assert plan.waits_for == WAITS_FOR.get(case_id)


def test_plan_standby_refuses_the_master():
    with pytest.raises(ValueError):
        plan_standby(TOPOLOGY, TOPOLOGY.master, MASTER_UP, None, desired_conninfo="")


def test_plans_are_frozen_and_check_their_action():
    plan = StandbyPlan("nothing", "fine")
    with pytest.raises(AttributeError):
        plan.action = "clone"
    with pytest.raises(ValueError):
        StandbyPlan("wipe", "no such action")
    with pytest.raises(ValueError):
        PrimaryPlan("clone", "the master is never cloned")
    with pytest.raises(ValueError):
        StandbyPlan("clone", "only a refusal waits", waits_for="pg1")


# (id, fact of pg1, facts of the other hosts, pristine hosts, action, words)
PRIMARY_CASES = [
    ("running", MASTER_UP, {}, (), "nothing", ["pg1: the running primary"]),
    ("stopped", pg_state("stopped_primary"), {}, (), "start", ["start it"]),
    ("no-cluster", pg_state("absent"), {}, (), "create", ["without a cluster 15/main", "create the cluster"]),
    ("not-installed", pg_state("not_installed"), {}, (), "create", ["without PostgreSQL 15 installed"]),
    ("unreadable", pg_state("unreadable"), {}, (), "refuse", ["pg_control cannot be read", "never initializes"]),
    ("unreachable", None, {}, (), "refuse", ["could not be read"]),
    ("lab-first-deploy-same-image", MASTER_UP,
     {"pg2": pg_state("primary"), "pg3": pg_state("primary"), "pg4": pg_state("primary"), "pg5": pg_state("primary")},
     ("pg2", "pg3", "pg4", "pg5"), "nothing", ["running primary"]),
    ("lab-first-deploy-pristine-from-the-facts", MASTER_UP,
     {"pg2": pg_state("primary", pristine=True), "pg3": pg_state("primary", pristine=True)}, None,
     "nothing", ["running primary"]),
    ("used-copies-are-not-ignored", pg_state("standby"),
     {"pg2": pg_state("primary", pristine=False)}, None, "refuse", ["make pg2 the master"]),
    ("master-in-recovery-pristine-copy-is-no-candidate", pg_state("standby"),
     {"pg2": pg_state("primary", pristine=True)}, None, "refuse", ["no other host is a primary of this cluster"]),
    ("failover-master-in-recovery", pg_state("standby", timeline=2),
     {"pg2": pg_state("primary", timeline=2), "pg3": pg_state("standby", timeline=2)}, (),
     "refuse", ["pg1, the master in the inventory, is running in recovery (a standby) on timeline 2",
                "pg2 is a running primary on timeline 2", "make pg2 the master in the inventory", "never promotes"]),
    ("master-stopped-with-standby-signal", pg_state("stopped_standby"), {"pg2": configured_standby("pg2"), "pg3": None}, (),
     "refuse", ["stopped with standby.signal", "no other host is a primary of this cluster (could not read: pg3)"]),
    ("master-in-recovery-older-primary-is-no-candidate", pg_state("standby", timeline=2),
     {"pg2": pg_state("primary", timeline=2), "pg3": pg_state("primary", timeline=1)}, (),
     "refuse", ["; pg2 is a running primary on timeline 2. ", "make pg2 the master in the inventory"]),
    ("master-in-recovery-two-primaries", pg_state("standby", timeline=2),
     {"pg2": pg_state("primary", timeline=2), "pg3": pg_state("primary", timeline=3)}, (),
     "refuse", ["pg2 is a running primary on timeline 2; pg3 is a running primary on timeline 3", "fence all but one"]),
    ("master-in-recovery-other-cluster-primary-ignored", pg_state("standby", timeline=2),
     {"pg2": pg_state("primary", timeline=5, system_identifier=OTHER_SYSID)}, (),
     "refuse", ["no other host is a primary of this cluster"]),
    ("old-master-back-after-failover", MASTER_UP, {"pg2": pg_state("primary", timeline=2)}, (),
     "refuse", ["pg2 is a running primary on timeline 2", "former primary (split-brain risk)", "pg_ctlcluster 15 main stop"]),
    ("old-master-promoted-host-unreachable", MASTER_UP, {"pg2": None, "pg3": pg_state("standby", timeline=2)}, (),
     "refuse", ["pg3 is a running standby on timeline 2"]),
    ("newer-timeline-of-another-cluster-ignored", MASTER_UP, {"pg2": pg_state("primary", timeline=4, system_identifier=OTHER_SYSID)},
     (), "nothing", ["running primary"]),
]


@pytest.mark.parametrize(
    "fact, others, pristine, action, words",
    [case[1:] for case in PRIMARY_CASES],
    ids=[case[0] for case in PRIMARY_CASES],
)
def test_plan_primary(fact, others, pristine, action, words):
    facts_by_host = {"pg1": fact, **others}
    plan = plan_primary(TOPOLOGY, TOPOLOGY.master, fact, facts_by_host, pristine)
    assert plan.action == action, plan.reason
    for word in words:
        assert word in plan.reason


def test_plan_primary_refuses_a_standby_node():
    with pytest.raises(ValueError):
        plan_primary(TOPOLOGY, TOPOLOGY.node("pg2"), MASTER_UP)


def healthy_facts() -> dict:
    return {
        "pg1": MASTER_UP,
        "pg2": CASCADE_UP,
        "pg3": configured_standby("pg3"),
        "pg4": configured_standby("pg4"),
        "pg5": configured_standby("pg5"),
    }


def facts_with(**changes) -> dict:
    return {**healthy_facts(), **changes}


# (id, facts, pristine hosts, expected problems: each listed text is in one problem, and the count)
ROLE_CASES = [
    ("healthy", healthy_facts(), (), []),
    ("first-deploy-pristine-copies", facts_with(**{n: pg_state("primary") for n in ("pg2", "pg3", "pg4", "pg5")}),
     ("pg2", "pg3", "pg4", "pg5"), []),
    ("pristine-read-from-the-facts", facts_with(**{n: pg_state("primary", pristine=True) for n in ("pg2", "pg3", "pg4", "pg5")}),
     None, []),
    ("down-and-absent-hosts-are-not-role-problems", facts_with(pg2=None, pg3=pg_state("absent"), pg4=pg_state("unreadable"), pg5=pg_state("empty")), (), []),
    ("stopped-standby-is-fine", facts_with(pg3=configured_standby("pg3", "stopped_standby")), (), []),
    ("master-without-a-cluster-beside-standbys-that-hold-it", facts_with(pg1=pg_state("absent")), (), [
        "pg1, the master in the inventory, is without a cluster 15/main, but pg2 is a running standby"]),
    ("master-unreadable-beside-standbys", facts_with(pg1=pg_state("unreadable")), (), [
        "pg1, the master in the inventory, is a stopped cluster without a readable pg_control, but pg2"]),
    ("first-deploy-master-without-a-cluster-beside-never-used-ones",
     {"pg1": pg_state("absent"), **{n: pg_state("primary", pristine=True) for n in ("pg2", "pg3", "pg4", "pg5")}},
     None, []),

    ("used-copies-are-primaries", facts_with(pg2=pg_state("primary"), pg3=pg_state("stopped_primary")), (), [
        "pg2 (cascade, standby of pg1 in the inventory) is a running primary on timeline 1, not a standby",
        "pg3 (downstream, standby of pg2 in the inventory) is a stopped primary on timeline 1, not a standby",
        "pg1, pg2: 2 running primaries of the same cluster (split-brain risk)",
    ]),
    ("failover", facts_with(pg1=pg_state("standby", timeline=2), pg2=pg_state("primary", timeline=2),
                            pg3=configured_standby("pg3", timeline=2), pg4=configured_standby("pg4", timeline=2),
                            pg5=configured_standby("pg5", timeline=2)), (), [
        "pg1, the master in the inventory, is running in recovery (a standby) on timeline 2",
        "pg2 (cascade, standby of pg1 in the inventory) is a running primary on timeline 2, not a standby",
    ]),
    ("split-brain-after-failover", facts_with(pg2=pg_state("primary", timeline=2)), (), [
        "pg1, the master in the inventory, is a running primary on timeline 1 but pg2 is a running primary on timeline 2",
        "is a running primary on timeline 2, not a standby (promoted by a failover?)",
        "pg1, pg2: 2 running primaries",
    ]),
    ("streams-from-the-wrong-upstream", facts_with(pg3=configured_standby("pg3", wal_receiver={
        "status": "streaming", "sender_host": "10.0.0.1", "sender_port": 5432, "received_tli": 1})), (), [
        "pg3 (downstream, standby of pg2 in the inventory) streams from 10.0.0.1:5432, not from pg2 (10.0.0.2:5432)",
    ]),
    ("streams-from-the-wrong-port", facts_with(pg5=configured_standby("pg5", wal_receiver={
        "status": "streaming", "sender_host": "10.0.0.4", "sender_port": 5433, "received_tli": 1})), (), [
        "pg5 (downstream, standby of pg4 in the inventory) streams from 10.0.0.4:5433",
    ]),
    ("another-cluster", facts_with(pg4=configured_standby("pg4", system_identifier=OTHER_SYSID)), (), [
        "pg4 (downstream, standby of pg2 in the inventory) is a running standby on timeline 1 of another cluster "
        "(system identifier 7399999999999999999, the master pg1 has 7300000000000000001)",
    ]),
    ("standby-on-newer-timeline", facts_with(pg5=configured_standby("pg5", timeline=2)), (), [
        "newer than the master pg1 (timeline 1): it follows another primary",
        # the master also sees a newer timeline in its cluster
        "pg1, the master in the inventory, is a running primary on timeline 1 but pg5 is a running standby on timeline 2",
    ]),
]


@pytest.mark.parametrize(
    "facts, pristine, expected",
    [case[1:] for case in ROLE_CASES],
    ids=[case[0] for case in ROLE_CASES],
)
def test_check_cluster_roles(facts, pristine, expected):
    problems = check_cluster_roles(TOPOLOGY, facts, pristine)
    assert len(problems) == len(expected), problems
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)


def test_pristine_copies_are_problems_when_not_declared_pristine():
    facts = facts_with(**{n: pg_state("primary") for n in ("pg2", "pg3", "pg4", "pg5")})
    problems = check_cluster_roles(TOPOLOGY, facts)
    assert problems[-1].startswith("pg1, pg2, pg3, pg4, pg5: 5 running primaries")
    assert len(problems) == 5


@pytest.mark.parametrize(
    "fact, expected",
    [
        (None, "unreachable"),
        (pg_state("absent"), "absent"),
        (pg_state("not_installed"), "absent"),
        (pg_state("unreadable"), "unreadable"),
        (pg_state("empty"), "unreadable"),
        (pg_state("primary"), "primary"),
        (pg_state("stopped_primary"), "primary"),
        (pg_state("standby"), "standby"),
        (pg_state("stopped_standby"), "standby"),
        (pg_state("primary", in_recovery=True), "standby"),
    ],
    ids=["none", "absent", "not-installed", "unreadable", "empty", "primary", "stopped-primary", "standby",
         "stopped-standby", "archive-recovery"],
)
def test_server_state(fact, expected):
    assert server_state(fact) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("host=10.0.0.1 port=5432", {"host": "10.0.0.1", "port": "5432"}),
        ("host = 10.0.0.1   port= 5432 ", {"host": "10.0.0.1", "port": "5432"}),
        ("application_name='my name' password='it''s'", None),
        ("password='it\\'s \\\\ ok' user=x", {"password": "it's \\ ok", "user": "x"}),
        ("passfile=/a\\ b", {"passfile": "/a b"}),
        ("", {}),
        ("host", None),
        ("host='unterminated", None),
        ("=x", None),
    ],
    ids=["plain", "spaces", "sql-style-quote-is-not-libpq", "escapes", "bare-escape", "empty", "no-equals",
         "unterminated", "no-key"],
)
def test_parse_conninfo(text, expected):
    assert parse_conninfo(text) == expected


@pytest.mark.parametrize(
    "changed, pending, restart_contexts, expected",
    [
        (set(), [], {"shared_buffers"}, "nothing"),
        ({"work_mem"}, [], {"shared_buffers"}, "reload"),
        ({"work_mem", "shared_buffers"}, [], {"shared_buffers"}, "restart"),
        ({"Shared_Buffers"}, [], {"shared_buffers"}, "restart"),
        (set(), ["max_connections"], set(), "restart"),
        ({"archive_command"}, ["wal_level"], {"wal_level"}, "restart"),
        ({"primary_conninfo"}, [], {"shared_buffers", "wal_level"}, "reload"),
    ],
    ids=["nothing", "sighup-only", "postmaster-setting", "names-case-insensitive", "pending-restart",
         "pending-and-changed", "primary-conninfo-reloads-on-13-plus"],
)
def test_restart_or_reload(changed, pending, restart_contexts, expected):
    assert restart_or_reload(changed, pending, restart_contexts) == expected


def test_preflight_leaves_out_drift_the_deploy_repairs():
    """A standby streaming from the wrong upstream is drift for the deploy, a problem for status."""
    facts = facts_with(pg3=configured_standby("pg3", wal_receiver={
        "status": "streaming", "sender_host": "10.0.0.1", "sender_port": 5432, "received_tli": 1}))
    topology = five_hosts_topology()
    assert any("streams from 10.0.0.1" in p for p in check_cluster_roles(topology, facts, ()))
    assert check_cluster_roles(topology, facts, (), include_drift=False) == []


def test_what_an_interrupted_clone_left_counts_as_never_used_for_the_preflight():
    from planner.standby_plan import pristine_hosts_of

    facts = {"pg1": MASTER_UP, "pg2": pg_state("stopped_primary", backup_label="pgcascade clone"),
             "pg3": pg_state("stopped_primary"), "pg4": pg_state("primary", pristine=True)}
    assert pristine_hosts_of(facts) == {"pg2", "pg4"}
