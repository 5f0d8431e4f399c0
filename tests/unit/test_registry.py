"""The registry of managed state: entries per host group, the diff against a ManagedState fact,
and the disturbance of each repair (planner/registry.py)."""
from __future__ import annotations

import copy

import pytest

from deploys.hostrules_package import package_digest
from planner import registry
from planner.registry import (
    NOTHING,
    RELOAD_HEARTBEAT,
    RELOAD_POSTGRES,
    RESTART_PRIMARY,
    RESTART_STANDBY,
    Live,
    diff_host,
    entries,
)
from tests.unit.managed_states import HOSTRULES, INCLUDE, KEYS, MAIN_CONF, PRIMARY, SECRETS, STANDBY, TOPOLOGY, healthy


def diff(node: str, observed: dict, live: Live | None = None) -> list[registry.Drift]:
    live = live or (PRIMARY if node == "pg1" else STANDBY)
    peers = {p: k for p, k in KEYS.items() if p != node}
    return diff_host(entries(TOPOLOGY, node, SECRETS, hostrules=HOSTRULES), observed, live, peer_public_keys=peers)


@pytest.mark.parametrize("node", ["pg1", "pg2", "pg3"])
def test_a_freshly_deployed_host_has_no_drift(node):
    assert diff(node, healthy(node)) == []


def test_nothing_read_nothing_told():
    assert diff("pg1", None) == []


def test_host_groups_get_their_entries():
    master, cascade, downstream = (entries(TOPOLOGY, n) for n in ("pg1", "pg2", "pg3"))
    for reg in (master, cascade):
        assert "/etc/ha.d/authkeys" in {f.path for f in reg.files}
        assert {"heartbeat.service", "pgcascade-ha-watch.service"} <= {u.unit for u in reg.units if u.present}
    assert "/etc/ha.d/authkeys" not in {f.path for f in downstream.files}
    assert [u.unit for u in downstream.units if u.present and "cascade-monitor" in u.unit]
    assert [s.present for s in master.signals] == [False] and [s.present for s in downstream.signals] == [True]
    assert [r.role for r in master.roles] == ["replicator"] and downstream.roles == ()
    assert {s.name for s in master.settings if not s.in_file} == {"primary_conninfo", "archive_cleanup_command"}


def test_systemd_starts_a_killed_server_again_only_where_no_ha_watch_decides():
    dropin = "/etc/systemd/system/postgresql@15-main.service.d/pgcascade-restart.conf"
    unit = "/etc/systemd/system/pgcascade-postgres-restart-15-main.service"
    script = "/usr/local/lib/pgcascade/postgres-restart"
    for node, present in (("pg1", False), ("pg2", False), ("pg3", True)):
        files = {f.path: f for f in entries(TOPOLOGY, node).files}
        assert (files[dropin].present, files[dropin].on_change) == (present, registry.ON_CHANGE_UNIT)
        assert (files[unit].present, files[unit].on_change) == (present, registry.ON_CHANGE_UNIT)
        assert files[script].present == present
    files = {f.path: f for f in entries(TOPOLOGY, "pg3").files}
    assert files[script].mode == "0755"
    assert "OnFailure=pgcascade-postgres-restart-15-main.service\n" in files[dropin].content


def test_without_secrets_the_secret_files_have_no_content_but_keep_their_mode():
    reg = entries(TOPOLOGY, "pg1")
    authkeys = next(f for f in reg.files if f.path == "/etc/ha.d/authkeys")
    assert authkeys.content is None and authkeys.mode == "0600"
    observed = healthy("pg1")
    observed["paths"]["/etc/ha.d/authkeys"]["sha256"] = "whatever"
    assert diff_host(reg, observed, PRIMARY) == []


def _one(drifts):
    assert len(drifts) == 1, drifts
    return drifts[0]


# (host, change to its fact, key, words in found, disturbance)
CASES = [
    ("pg1", lambda o: o["paths"]["/etc/ha.d/authkeys"].update(mode="0644"),
     "file /etc/ha.d/authkeys", "0644", NOTHING),
    ("pg1", lambda o: o["paths"]["/etc/ha.d/ha.cf"].update(sha256="0"), "file /etc/ha.d/ha.cf", "other content",
     RELOAD_HEARTBEAT),
    ("pg1", lambda o: o["paths"]["/etc/ha.d/haresources"].update(sha256="0"), "file /etc/ha.d/haresources",
     "other content", RESTART_PRIMARY),
    ("pg2", lambda o: o["paths"]["/etc/ha.d/haresources"].update(sha256="0"), "file /etc/ha.d/haresources",
     "other content", RESTART_STANDBY),
    # heartbeat started with the managed haresources: restoring the file disturbs nothing
    ("pg1", lambda o: (o["paths"].update({"/run/pgcascade/heartbeat-started/haresources": dict(
        o["paths"]["/etc/ha.d/haresources"])}), o["paths"]["/etc/ha.d/haresources"].update(sha256="0")),
     "file /etc/ha.d/haresources", "other content", NOTHING),
    ("pg2", lambda o: o["paths"]["/etc/postgresql/15/main/pg_hba.conf"].update(sha256="0"),
     "file /etc/postgresql/15/main/pg_hba.conf", "other content", RELOAD_POSTGRES),
    ("pg3", lambda o: o["paths"].pop("/usr/local/lib/pgcascade/archive-wal"),
     "file /usr/local/lib/pgcascade/archive-wal", "absent", NOTHING),
    ("pg2", lambda o: o["paths"].update({"/etc/pgcascade/cascade-failed": {"type": "directory"}}),
     "directory /etc/pgcascade/cascade-failed", "present", NOTHING),
    ("pg3", lambda o: o["paths"]["/var/lib/postgresql/.ssh"].update(mode="0755"),
     "directory /var/lib/postgresql/.ssh", "0755", NOTHING),
    ("pg2", lambda o: o["paths"]["/var/lib/postgresql/.ssh/id_ed25519"].update(mode="0644"),
     "file /var/lib/postgresql/.ssh/id_ed25519", "0644", NOTHING),
    ("pg3", lambda o: o["paths"].pop("/var/lib/postgresql/15/main/standby.signal"),
     "signal /var/lib/postgresql/15/main/standby.signal", "absent", NOTHING),
    ("pg1", lambda o: o["paths"].update({"/var/lib/postgresql/15/main/standby.signal": {"type": "file"}}),
     "signal /var/lib/postgresql/15/main/standby.signal", "present", NOTHING),
    ("pg2", lambda o: o["units"]["heartbeat.service"].update(active="inactive"), "unit heartbeat.service",
     "inactive", NOTHING),
    ("pg3", lambda o: o["units"]["pgcascade-cascade-monitor.service"].update(enabled="disabled"),
     "unit pgcascade-cascade-monitor.service", "disabled", NOTHING),
    ("pg1", lambda o: o["units"]["pgcascade-cascade-monitor.service"].update(enabled="enabled", active="active"),
     "unit pgcascade-cascade-monitor.service", "enabled", NOTHING),
    ("pg2", lambda o: o["authorized_keys"].append("ssh-ed25519 EVIL intruder"),
     "authorized_keys /var/lib/postgresql/.ssh/authorized_keys", "1 other key", NOTHING),
    ("pg2", lambda o: o["authorized_keys"].remove(KEYS["pg3"]),
     "authorized_keys /var/lib/postgresql/.ssh/authorized_keys", "no key of pg3", NOTHING),
    ("pg1", lambda o: o["postgres"]["file_settings"].append(
        {"name": "synchronous_standby_names", "setting": "", "sourcefile": "/var/lib/postgresql/15/main/"
         "postgresql.auto.conf", "sourceline": 3}), "setting synchronous_standby_names", "ALTER SYSTEM",
     RELOAD_POSTGRES),
    ("pg2", lambda o: o["postgres"]["file_settings"].append(
        {"name": "wal_keep_size", "setting": "0", "sourcefile": "/etc/postgresql/15/main/conf.d/zz.conf",
         "sourceline": 1}), "setting wal_keep_size", "zz.conf line 1", RELOAD_POSTGRES),
    ("pg1", lambda o: o["postgres"]["file_settings"].append(
        {"name": "port", "setting": "5433", "sourcefile": "/etc/postgresql/15/main/conf.d/zz.conf",
         "sourceline": 1}), "setting port", "zz.conf", RESTART_PRIMARY),
    ("pg3", lambda o: o["postgres"]["file_settings"].append(
        {"name": "port", "setting": "5433", "sourcefile": "/var/lib/postgresql/15/main/postgresql.auto.conf",
         "sourceline": 1}), "setting port", "ALTER SYSTEM", RESTART_STANDBY),
    ("pg1", lambda o: o["postgres"]["file_settings"].append(
        {"name": "primary_conninfo", "setting": "host=x", "sourcefile": "/var/lib/postgresql/15/main/"
         "postgresql.auto.conf", "sourceline": 1}), "setting primary_conninfo", "ALTER SYSTEM", RELOAD_POSTGRES),
    ("pg1", lambda o: o["postgres"]["role_settings"].append(
        {"role": "app", "database": None, "config": ["synchronous_commit=off"]}), "setting synchronous_commit",
     "for role app", RELOAD_POSTGRES),
    ("pg1", lambda o: o["postgres"]["role_settings"].append(
        {"role": None, "database": "shop", "config": ["synchronous_commit=local"]}), "setting synchronous_commit",
     "for database shop", RELOAD_POSTGRES),
    ("pg1", lambda o: o["postgres"]["roles"]["replicator"].update(replication=False), "role replicator",
     "REPLICATION", NOTHING),
]


@pytest.mark.parametrize("node, change, key, found, disturbance", CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[4]}" for c in CASES])
def test_each_drift_is_named_with_its_repair_and_disturbance(node, change, key, found, disturbance):
    observed = copy.deepcopy(healthy(node))
    change(observed)
    drift = _one(diff(node, observed))
    assert drift.host == node and drift.key == key
    assert found in drift.found, drift
    assert drift.disturbance == disturbance, drift
    assert drift.repair and drift.expected
    assert node in drift.line() and disturbance in drift.line()


def test_a_strong_synchronous_commit_for_a_role_is_no_drift():
    observed = healthy("pg1")
    observed["postgres"]["role_settings"].append({"role": "app", "database": None,
                                                  "config": ["synchronous_commit=remote_apply"]})
    assert diff("pg1", observed) == []


def test_a_weak_synchronous_commit_matters_on_the_primary_only():
    observed = healthy("pg2")
    observed["postgres"]["role_settings"].append({"role": "app", "database": None, "config": ["synchronous_commit=off"]})
    assert diff("pg2", observed) == []


def test_debians_main_file_setting_the_port_first_is_no_other_source():
    sources = registry.setting_sources(healthy("pg1")["postgres"], INCLUDE, MAIN_CONF)
    assert sources["port"]["other_sources"] == []


def test_a_managed_setting_in_force_from_the_main_file_is_drift():
    observed = healthy("pg2")
    observed["postgres"]["settings"]["wal_keep_size"].update(sourcefile=MAIN_CONF, setting="0")
    drift = _one(diff("pg2", observed))
    assert drift.key == "setting wal_keep_size" and MAIN_CONF in drift.found


def test_postgres_down_no_setting_drift():
    observed = healthy("pg2")
    observed["postgres"] = None
    assert diff("pg2", observed) == []


def test_absent_file_that_must_be_absent_is_fine_and_a_present_one_is_drift():
    observed = healthy("pg1")  # the master runs no cascade monitor
    assert "/usr/local/lib/pgcascade/cascade-monitor" not in observed["paths"]
    observed["paths"]["/usr/local/lib/pgcascade/cascade-monitor"] = {"type": "file", "mode": "0755"}
    drift = _one(diff("pg1", observed))
    assert drift.expected == "absent" and drift.disturbance == NOTHING


def test_disturbances_are_ordered_and_only_the_primary_one_is_refused():
    assert registry.worst([NOTHING, RELOAD_HEARTBEAT, RELOAD_POSTGRES]) == RELOAD_HEARTBEAT
    assert registry.worst([]) == NOTHING
    assert [registry.needs_rolling_restart(d) for d in registry.DISTURBANCES] == [False] * 4 + [True]


HB_FILES = ["/etc/ha.d/ha.cf", "/etc/ha.d/authkeys"]
HARES = ["/etc/ha.d/haresources"]


@pytest.mark.parametrize("state, action", [
    ({"running": False}, "nothing"),
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/ha.cf": 50, "/etc/ha.d/haresources": 50}}, "nothing"),
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/authkeys": 150}}, "reread"),
    ({"running": True, "started": 100, "reread": 200, "mtimes": {"/etc/ha.d/authkeys": 150}}, "nothing"),
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/haresources": 150}, "holds_vip": False}, "restart"),
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/haresources": 150}, "holds_vip": True}, "pending"),
    # heartbeat's copy at start tells exactly: a rewrite with the same content is no restart
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/haresources": 150}, "holds_vip": True,
      "sha256": {"/etc/ha.d/haresources": "a"}, "started_sha256": {"/etc/ha.d/haresources": "a"}}, "nothing"),
    ({"running": True, "started": 100, "mtimes": {"/etc/ha.d/haresources": 50}, "holds_vip": True,
      "sha256": {"/etc/ha.d/haresources": "b"}, "started_sha256": {"/etc/ha.d/haresources": "a"}}, "pending"),
])
def test_heartbeat_rereads_or_restarts_off_the_holder_only(state, action):
    got, reason = registry.heartbeat_action(state, HB_FILES, HARES)
    assert got == action, reason
    if action == "pending":
        assert "rolling_restart" in reason and "haresources" in reason


def test_a_restart_of_the_primary_is_pending_a_standbys_is_not():
    reason = registry.primary_restart_pending(False, ["max_connections"])
    assert "max_connections" in reason and "tasks/rolling_restart.py" in reason
    assert registry.primary_restart_pending(True, ["max_connections"]) is None
    assert registry.primary_restart_pending(False, []) is None
    assert registry.primary_restart_pending(False, ["listen_addresses"], pristine=True) is None  # a first deploy


def test_every_file_of_the_deploy_is_an_entry_with_a_concern():
    for node in ("pg1", "pg2", "pg3"):
        reg = entries(TOPOLOGY, node, SECRETS)
        assert all(f.concern in (registry.POSTGRES, registry.HEARTBEAT, registry.CASCADE_FAILOVER, registry.SSH,
                                 registry.HOSTRULES) for f in reg.files)
        assert len({f.path for f in reg.files}) == len(reg.files)
        assert all(f.content is not None for f in reg.files if f.template and f.present
                   and f.template not in ("ha-watch.sh.j2", "cascade-monitor.sh.j2"))  # (they carry its digest)
        with_package = entries(TOPOLOGY, node, SECRETS, hostrules=HOSTRULES)
        assert all(f.content is not None for f in with_package.files if f.template and f.present)
        shipped = {f.path.rsplit("/", 1)[-1] for f in with_package.files if f.concern == registry.HOSTRULES}
        assert set(HOSTRULES) < shipped  # every file of the package, and hostrules.json


def test_the_package_digest_is_the_deploys():
    assert registry.package_digest(HOSTRULES) == package_digest()
    assert registry.package_digest({**HOSTRULES, "new.py": ""}) != package_digest()


def test_the_deploy_removes_exactly_the_sources_the_diff_names():
    observed = healthy("pg1")
    postgres = observed["postgres"]
    postgres["file_settings"].append({"name": "wal_keep_size", "setting": "0", "sourcefile": "/etc/x/zz.conf",
                                      "sourceline": 2})
    postgres["role_settings"] += [{"role": "app", "database": None, "config": ["synchronous_commit=off"]},
                                  {"role": "ok", "database": None, "config": ["synchronous_commit=on"]}]
    sources = registry.setting_sources(postgres, INCLUDE, MAIN_CONF)
    managed = [s.name for s in entries(TOPOLOGY, "pg1").settings]
    removed = registry.offending_sources(sources, managed, primary=True)
    assert [(n, o.get("role") or o.get("sourcefile")) for n, o in removed] == [
        ("synchronous_commit", "app"), ("wal_keep_size", "/etc/x/zz.conf")]
    assert {d.key for d in diff("pg1", observed)} == {"setting synchronous_commit", "setting wal_keep_size"}
    # on a standby the role's value (replicated from the primary) is the primary's to remove
    assert registry.offending_sources(sources, managed, primary=False) == [removed[1]]
