"""planner.topology: inventory data -> Topology, or every problem at once."""
from __future__ import annotations

import copy

import pytest

from planner.model import AppHost, Cluster, HeartbeatTimings, Vip
from planner.topology import InventoryError, build_topology


def pg_host(group: str, address: str, upstream: str | None = None, application_name: str | None = None, **data):
    host_data = {"ssh_hostname": address, **data}
    if upstream is not None:
        host_data["pg_upstream"] = upstream
    if application_name is not None:
        host_data["pg_application_name"] = application_name
    return {"groups": [group], "data": host_data}


def five_hosts() -> dict:
    """1 master + 1 cascade + 3 downstreams, plus an application host."""
    return {
        "pg1": pg_host("master", "10.0.0.1"),
        "pg2": pg_host("cascade", "10.0.0.2", "pg1", "standby_1"),
        "pg3": pg_host("downstream", "10.0.0.3", "pg2", "standby_2"),
        "pg4": pg_host("downstream", "10.0.0.4", "pg2", "standby_3"),
        "pg5": pg_host("downstream", "10.0.0.5", "pg2", "standby_4"),
        "app1": {"groups": ["app"], "data": {"ssh_hostname": "10.0.0.9"}},
    }


def deep_chain() -> dict:
    """master -> cascade -> downstream -> downstream -> downstream."""
    return {
        "db-a": pg_host("master", "10.0.1.1"),
        "db-b": pg_host("cascade", "10.0.1.2", "db-a", "standby_1"),
        "db-c": pg_host("downstream", "10.0.1.3", "db-b", "standby_2"),
        "db-d": pg_host("downstream", "10.0.1.4", "db-c", "standby_3"),
        "db-e": pg_host("downstream", "10.0.1.5", "db-d", "standby_4"),
    }


def seed_three() -> dict:
    return {
        "master": pg_host("master", "192.168.1.11"),
        "cascade": pg_host("cascade", "192.168.1.12", "master", "standby_1"),
        "downstream": pg_host("downstream", "192.168.1.13", "cascade", "standby_2"),
    }


def with_cluster_data(hosts: dict, **cluster_data) -> dict:
    """Merge the same cluster-wide dict into every host, as the inventories do."""
    hosts = copy.deepcopy(hosts)
    for entry in hosts.values():
        entry["data"].update(cluster_data)
    return hosts


def problems_of(hosts: dict) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        build_topology(hosts)
    return caught.value.problems


# ---------------------------------------------------------------- valid inventories


@pytest.mark.parametrize(
    "hosts, expected",
    [
        (
            five_hosts(),
            [
                ("pg1", "master", None, None, 0),
                ("pg2", "cascade", "pg1", "standby_1", 1),
                ("pg3", "downstream", "pg2", "standby_2", 2),
                ("pg4", "downstream", "pg2", "standby_3", 2),
                ("pg5", "downstream", "pg2", "standby_4", 2),
            ],
        ),
        (
            deep_chain(),
            [
                ("db-a", "master", None, None, 0),
                ("db-b", "cascade", "db-a", "standby_1", 1),
                ("db-c", "downstream", "db-b", "standby_2", 2),
                ("db-d", "downstream", "db-c", "standby_3", 3),
                ("db-e", "downstream", "db-d", "standby_4", 4),
            ],
        ),
        (
            seed_three(),
            [
                ("master", "master", None, None, 0),
                ("cascade", "cascade", "master", "standby_1", 1),
                ("downstream", "downstream", "cascade", "standby_2", 2),
            ],
        ),
        ({"solo": pg_host("master", "10.0.0.1")}, [("solo", "master", None, None, 0)]),
    ],
    ids=["1+1+3", "deep-chain", "seed", "master-only"],
)
def test_valid_inventories_give_nodes_by_tier_then_name(hosts, expected):
    topology = build_topology(hosts)
    assert [(n.name, n.role, n.upstream, n.application_name, n.tier) for n in topology.nodes] == expected
    assert topology.master.name == expected[0][0]


def test_nodes_are_sorted_by_tier_then_name_whatever_the_inventory_order():
    hosts = five_hosts()
    reordered = {name: hosts[name] for name in ("pg5", "app1", "pg3", "pg2", "pg4", "pg1")}
    assert [n.name for n in build_topology(reordered).nodes] == ["pg1", "pg2", "pg3", "pg4", "pg5"]


def test_application_hosts_are_not_nodes():
    topology = build_topology(five_hosts())
    assert "app1" not in [n.name for n in topology.nodes]


def test_tiers_and_children_of_a_wide_and_deep_tree():
    hosts = five_hosts()
    hosts["pg6"] = pg_host("downstream", "10.0.0.6", "pg5", "standby_5")
    topology = build_topology(hosts)
    assert [[n.name for n in tier] for tier in topology.tiers()] == [
        ["pg1"], ["pg2"], ["pg3", "pg4", "pg5"], ["pg6"]
    ]
    assert [n.name for n in topology.children("pg5")] == ["pg6"]


@pytest.mark.parametrize(
    "data, expected_address",
    [
        ({"pg_address": "10.9.9.9", "ssh_hostname": "pg1.example"}, "10.9.9.9"),
        ({"ssh_hostname": "pg1.example"}, "pg1.example"),
        ({}, "pg1"),
        ({"pg_address": None, "ssh_hostname": "10.0.0.7"}, "10.0.0.7"),
    ],
    ids=["pg_address", "ssh_hostname", "inventory-name", "none-means-unset"],
)
def test_address_defaults(data, expected_address):
    topology = build_topology({"pg1": {"groups": ["master"], "data": data}})
    assert topology.node("pg1").address == expected_address


def test_cluster_defaults_come_from_the_model():
    assert build_topology(five_hosts()).cluster == Cluster()


def test_cluster_values_are_read_and_normalized():
    hosts = with_cluster_data(
        seed_three(),
        pg_version=16,
        pg_cluster="prod",
        pg_port=5433,
        pg_replication_user="repl",
        pg_archive_dir="/srv/wal",
        pg_synchronous=False,
        pg_settings={"work_mem": "64MB", "max_connections": 200, "jit": False},
        pg_app_hosts=[{"address": "10.0.0.9/32"}, {"address": "10.0.0.10/32", "database": "cyclos4", "user": "cyclos"}],
        vip_address="192.168.1.15",
        vip_prefix=24,
        vip_interface="eth0",
        ha_keepalive=2,
        ha_warntime=3,
        ha_deadtime=5,
        ha_initdead=10,
        apt_repository={"line": "deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main", "filename": "pgdg"},
        secrets_file="/etc/pgcascade/secrets",
    )
    cluster = build_topology(hosts).cluster
    assert cluster == Cluster(
        version=16,
        name="prod",
        port=5433,
        replication_user="repl",
        archive_dir="/srv/wal",
        synchronous=False,
        settings=(("jit", "off"), ("max_connections", "200"), ("work_mem", "64MB")),
        app_hosts=(AppHost("10.0.0.9/32"), AppHost("10.0.0.10/32", "cyclos4", "cyclos")),
        vip=Vip("192.168.1.15", 24, "eth0"),
        heartbeat=HeartbeatTimings(2, 3, 5, 10),
        apt_repository={"line": "deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main", "filename": "pgdg"},
        secrets_file="/etc/pgcascade/secrets",
    )
    assert cluster.data_directory == "/var/lib/postgresql/16/prod"
    assert [n.name for n in build_topology(hosts).vip_holders] == ["master", "cascade"]


def test_master_application_name_is_ignored():
    hosts = seed_three()
    hosts["master"]["data"]["pg_application_name"] = "old_name"
    assert build_topology(hosts).master.application_name is None


# ---------------------------------------------------------------- one problem each


def _edit(base, edit):
    hosts = copy.deepcopy(base())
    edit(hosts)
    return hosts


def _set(name, key, value):
    return lambda hosts: hosts[name]["data"].__setitem__(key, value)


def _delete(name, key):
    return lambda hosts: hosts[name]["data"].pop(key)


def _groups(name, groups):
    return lambda hosts: hosts[name].__setitem__("groups", groups)


def _everywhere(**data):
    def edit(hosts):
        for entry in hosts.values():
            if set(entry["groups"]) & {"master", "cascade", "downstream"}:
                entry["data"].update(data)
    return edit


def _add(name, entry):
    return lambda hosts: hosts.__setitem__(name, entry)


PROBLEM_CASES = [
    ("no-master", seed_three, _groups("master", ["app"]),
     "inventory: no host in group master (put exactly one host in it)"),
    ("two-masters", five_hosts, _add("pg0", pg_host("master", "10.0.0.10")),
     "pg0, pg1: all in group master (keep exactly one master"),
    ("no-pg-host", seed_three, lambda hosts: [e.__setitem__("groups", ["app"]) for e in hosts.values()],
     "inventory: no PostgreSQL host"),
    ("two-roles", five_hosts, _groups("pg3", ["cascade", "downstream"]),
     "pg3: in groups cascade and downstream (a host has exactly one role: keep one group)"),
    ("upstream-missing", five_hosts, _delete("pg3", "pg_upstream"),
     "pg3: pg_upstream is missing (set it to the inventory name of the host pg3 replicates from, one of: pg1, pg2, pg4, pg5)"),
    ("upstream-unknown", seed_three, _set("cascade", "pg_upstream", "pg9"),
     "cascade: pg_upstream 'pg9' is not in the inventory (add it, or point pg_upstream at one of: downstream, master)"),
    ("upstream-app-host", five_hosts, _set("pg3", "pg_upstream", "app1"),
     "pg3: pg_upstream 'app1' is not a PostgreSQL host"),
    ("upstream-self", five_hosts, _set("pg4", "pg_upstream", "pg4"),
     "pg4: pg_upstream is itself"),
    ("master-with-upstream", five_hosts, _set("pg1", "pg_upstream", "pg2"),
     "pg1: the master has pg_upstream 'pg2' (remove pg_upstream: the master replicates from nobody)"),
    ("cascade-from-downstream", five_hosts, _set("pg2", "pg_upstream", "pg3"),
     "pg2: pg_upstream is 'pg3' (a downstream), but a cascade replicates from the master (set pg_upstream to pg1, or move pg2 to group downstream)"),
    ("downstream-from-master", five_hosts, _set("pg4", "pg_upstream", "pg1"),
     "pg4: pg_upstream is the master 'pg1', but a downstream replicates from a cascade or another downstream"),
    ("cycle", five_hosts, lambda h: (_set("pg3", "pg_upstream", "pg4")(h), _set("pg4", "pg_upstream", "pg3")(h)),
     "pg3, pg4: pg_upstream forms a cycle pg3 -> pg4 -> pg3"),
    ("application-name-missing", five_hosts, _delete("pg5", "pg_application_name"),
     "pg5: pg_application_name is missing (add pg_application_name"),
    ("application-name-duplicate", five_hosts, _set("pg5", "pg_application_name", "standby_2"),
     "pg3, pg5: pg_application_name 'standby_2' is used by more than one standby (give each standby its own)"),
    ("application-name-invalid", five_hosts, _set("pg3", "pg_application_name", "Standby-2"),
     "pg3: pg_application_name 'Standby-2' is not a valid name (use [a-z_][a-z0-9_]*"),
    ("application-name-too-long", five_hosts, _set("pg3", "pg_application_name", "s" * 64),
     "is not a valid name (use [a-z_][a-z0-9_]*, at most 63 characters"),
    ("address-duplicate", five_hosts, _set("pg4", "pg_address", "10.0.0.3"),
     "pg3, pg4: the same address '10.0.0.3'"),
    ("address-blank", five_hosts, _set("pg4", "pg_address", "10.0.0.4 x"),
     "pg4: pg_address is '10.0.0.4 x' (use a host name or an IP address)"),
    ("names-differ-by-case", seed_three, _add("MASTER", pg_host("downstream", "192.168.1.14", "cascade", "standby_3")),
     "MASTER, master: names differ only by case"),
    ("version-too-old", five_hosts, _everywhere(pg_version=12),
     "pg1, pg2, pg3, pg4, pg5: pg_version is 12 (use a supported major version as an integer: 13..17)"),
    ("version-string", seed_three, _everywhere(pg_version="15"),
     "pg_version is '15' (use a supported major version as an integer: 13..17)"),
    ("version-differs", five_hosts, _set("pg4", "pg_version", 16),
     "pg4: pg_version is 16 but 15 on pg1 (cluster-wide keys must be the same on every PostgreSQL host"),
    ("port-zero", seed_three, _everywhere(pg_port=0), "pg_port is 0 (use an integer port 1..65535)"),
    ("port-too-big", seed_three, _everywhere(pg_port=70000), "pg_port is 70000 (use an integer port 1..65535)"),
    ("port-bool", seed_three, _everywhere(pg_port=True), "pg_port is True (use an integer port 1..65535)"),
    ("port-differs-as-missing", seed_three, _set("master", "pg_port", 5433),
     "cascade, downstream: pg_port is 5432 but 5433 on master"),
    ("cluster-name", seed_three, _everywhere(pg_cluster="my cluster"), "pg_cluster is 'my cluster'"),
    ("replication-user", seed_three, _everywhere(pg_replication_user="Repl User"), "pg_replication_user is 'Repl User'"),
    ("archive-dir-relative", seed_three, _everywhere(pg_archive_dir="wal"), "pg_archive_dir is 'wal' (use an absolute path"),
    ("synchronous-string", seed_three, _everywhere(pg_synchronous="yes"), "pg_synchronous is 'yes' (use True or False)"),
    ("settings-bad-name", seed_three, _everywhere(pg_settings={"Work Mem": "1MB"}), "has a bad setting name 'Work Mem'"),
    ("settings-newline", seed_three, _everywhere(pg_settings={"work_mem": "1MB\nfsync = off"}), "sets work_mem to a value with a newline"),
    ("settings-not-dict", seed_three, _everywhere(pg_settings=["work_mem"]), "pg_settings is ['work_mem'] (use a dict"),
    ("app-hosts-string", seed_three, _everywhere(pg_app_hosts=["10.0.0.9"]), "pg_app_hosts has an entry '10.0.0.9'"),
    ("app-hosts-unknown-key", seed_three, _everywhere(pg_app_hosts=[{"address": "10.0.0.9", "db": "x"}]), "pg_app_hosts has an entry"),
    ("vip-incomplete", seed_three, _everywhere(vip_address="192.168.1.15"),
     "master: vip_address set but vip_prefix, vip_interface not (set vip_address, vip_prefix and vip_interface together"),
    ("vip-two-cascades", five_hosts,
     lambda h: (_everywhere(vip_address="10.0.0.15", vip_prefix=24, vip_interface="eth0")(h),
                _add("pg6", pg_host("cascade", "10.0.0.6", "pg1", "standby_5", vip_address="10.0.0.15", vip_prefix=24, vip_interface="eth0"))(h)),
     "inventory: vip_address is set but the cascade hosts are 2 (pg2, pg6) (heartbeat v1 runs on exactly two nodes"),
    ("vip-no-cascade", lambda: {"pg1": pg_host("master", "10.0.0.1", vip_address="10.0.0.15", vip_prefix=24, vip_interface="eth0")},
     lambda h: None, "inventory: vip_address is set but the cascade hosts are none"),
    ("vip-bad-address", seed_three, _everywhere(vip_address="192.168.1.300", vip_prefix=24, vip_interface="eth0"),
     "vip_address is '192.168.1.300' (use an IPv4 address"),
    ("vip-bad-prefix", seed_three, _everywhere(vip_address="192.168.1.15", vip_prefix=33, vip_interface="eth0"),
     "vip_prefix is 33 (use the network prefix length"),
    ("vip-bad-interface", seed_three, _everywhere(vip_address="192.168.1.15", vip_prefix=24, vip_interface="eth 0"),
     "vip_interface is 'eth 0'"),
    ("vip-is-a-host-address", seed_three, _everywhere(vip_address="192.168.1.12", vip_prefix=24, vip_interface="eth0"),
     "cascade: its address is the vip_address '192.168.1.12'"),
    ("archive-dir-with-a-shell-character", seed_three, _everywhere(pg_archive_dir="/var/lib/wal$(x)"),
     "pg_archive_dir is '/var/lib/wal$(x)' (use an absolute path of letters, digits and ._/+-)"),
    ("vip-alias-interface", seed_three, _everywhere(vip_address="192.168.1.15", vip_prefix=24, vip_interface="eth0:1"),
     "vip_interface is 'eth0:1' (use a network interface name such as 'eth0', not an alias label)"),
    ("vip-outside-the-subnet", seed_three, _everywhere(vip_address="192.168.2.15", vip_prefix=24, vip_interface="eth0"),
     "master: its address 192.168.1.11 is outside the VIP's subnet 192.168.2.0/24 (vip_address 192.168.2.15 with "
     "vip_prefix 24)"),
    ("vip-prefix-too-long-for-the-hosts", seed_three,
     _everywhere(vip_address="192.168.1.15", vip_prefix=30, vip_interface="eth0"),
     "master: its address 192.168.1.11 is outside the VIP's subnet 192.168.1.12/30"),
    ("settings-on-one-host-only", seed_three, _set("master", "pg_settings", {"work_mem": "8MB"}),
     "cascade, downstream: pg_settings is {} but {'work_mem': '8MB'} on master"),
    ("vip-only-on-one-host", seed_three, _set("master", "vip_address", "192.168.1.15"),
     "cascade, downstream: vip_address is None but '192.168.1.15' on master"),
    ("heartbeat-timing-zero", seed_three, _everywhere(ha_deadtime=0), "ha_deadtime is 0 (use seconds >= 0.1, to the millisecond, e.g. 3 or 2.5)"),
    ("heartbeat-timing-microseconds", seed_three, _everywhere(ha_keepalive=0.2505),
     "ha_keepalive is 0.2505 (use seconds >= 0.1, to the millisecond"),
    ("heartbeat-timing-text", seed_three, _everywhere(ha_deadtime="2s"), "ha_deadtime is '2s' (use seconds"),
    ("heartbeat-timing-order", seed_three, _everywhere(ha_keepalive=5, ha_deadtime=3),
     "master: heartbeat timings ha_keepalive=5, ha_warntime=1.5, ha_deadtime=3, ha_initdead=6 are out of order"),
    ("apt-repository-shape", seed_three, _everywhere(apt_repository={"url": "http://x"}), "apt_repository is {'url': 'http://x'}"),
    ("apt-repository-line", seed_three, _everywhere(apt_repository={"line": "http://x"}), "apt_repository has line 'http://x'"),
    ("apt-repository-filename", seed_three, _everywhere(apt_repository={"line": "deb http://x ./", "filename": "../x"}),
     "apt_repository has filename '../x' (a file name under /etc/apt/sources.list.d, without .list)"),
    ("secrets-file-type", seed_three, _everywhere(secrets_file=3), "secrets_file is 3"),
    ("typo-key", five_hosts, _set("pg3", "pg_upstrem", "pg2"), "pg3: pg_upstrem is not a pgcascade key (did you mean pg_upstream?)"),
    ("unknown-own-key", five_hosts, _set("pg3", "ha_mode", "x"), "pg3: ha_mode is not a pgcascade key"),
]


@pytest.mark.parametrize(
    "base, edit, expected", [case[1:] for case in PROBLEM_CASES], ids=[case[0] for case in PROBLEM_CASES]
)
def test_each_problem_is_reported_with_host_key_and_fix(base, edit, expected):
    problems = problems_of(_edit(base, edit))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("base", [five_hosts, deep_chain, seed_three])
def test_no_problem_shows_pythons_internal_types(base):
    problems = problems_of(_edit(base, _everywhere(pg_settings=None, pg_port="x")))
    assert problems and not any("mappingproxy" in p for p in problems), problems


@pytest.mark.parametrize("base", [five_hosts, deep_chain, seed_three])
def test_the_valid_bases_have_no_problem(base):
    # The problem cases above differ from these by one edit, so each edit is the cause.
    hosts = base()
    pg_names = sorted(n for n, e in hosts.items() if e["groups"] != ["app"])
    assert sorted(n.name for n in build_topology(hosts).nodes) == pg_names


def test_unrelated_keys_are_accepted():
    hosts = five_hosts()
    hosts["pg2"]["data"].update({"ssh_user": "root", "lab_bridge": "labbr1", "_sudo": True})
    assert build_topology(hosts).node("pg2").address == "10.0.0.2"


def test_every_problem_is_collected_before_raising():
    hosts = five_hosts()
    hosts["pg2"]["data"]["pg_upstream"] = "pg9"
    hosts["pg3"]["data"].pop("pg_application_name")
    hosts["pg4"]["data"]["pg_port"] = 5433
    hosts["pg5"]["data"]["pg_application_name"] = "standby_1"
    problems = problems_of(hosts)
    assert [p.split(":")[0] for p in problems] == ["pg4", "pg2", "pg3", "pg2, pg5"]
    assert "pg_upstream 'pg9' is not in the inventory" in problems[1]


def test_error_text_lists_each_problem_on_its_own_line():
    hosts = seed_three()
    hosts["cascade"]["data"]["pg_upstream"] = "pg9"
    hosts["downstream"]["data"].pop("pg_application_name")
    error = pytest.raises(InventoryError, build_topology, hosts).value
    assert str(error).splitlines() == error.problems
    assert len(error.problems) == 2


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_set("pg4", "pg_upstream", "pg4"), ["pg4: pg_upstream is itself (point it at one of: pg1, pg2, pg3, pg5)"]),
        (_groups("pg3", ["cascade", "downstream"]),
         ["pg3: in groups cascade and downstream (a host has exactly one role: keep one group)"]),
    ],
    ids=["self-is-not-also-a-cycle", "two-roles-without-follow-on-noise"],
)
def test_one_mistake_gives_one_problem(edit, expected):
    assert problems_of(_edit(five_hosts, edit)) == expected


@pytest.mark.parametrize(
    "key, explicit_default",
    [("pg_settings", {}), ("pg_app_hosts", []), ("pg_port", 5432), ("vip_address", None)],
)
def test_an_explicit_default_on_one_host_equals_the_default_on_others(key, explicit_default):
    hosts = seed_three()
    hosts["master"]["data"][key] = explicit_default
    assert build_topology(hosts).cluster == Cluster()


def test_true_is_not_the_number_one():
    hosts = with_cluster_data(seed_three(), ha_keepalive=1)
    hosts["cascade"]["data"]["ha_keepalive"] = True
    assert any("ha_keepalive is True but 1 on master" in p for p in problems_of(hosts))
