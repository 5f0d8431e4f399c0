"""planner.settings: every managed file's variables, derived from a Topology (pure, table-driven)."""
from __future__ import annotations

import re

import pytest

from planner import settings
from planner.model import AppHost, Cluster, HeartbeatTimings, Topology
from tests.unit.topologies import VIP, node, three


def fan() -> Topology:
    """1 + 1 + 3: the cascade has three downstreams."""
    return Topology(
        Cluster(vip=VIP, app_hosts=(AppHost("198.51.100.20", "cyclos4", "cyclos"),)),
        (
            node("pg1", "master", "198.51.100.11"),
            node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
            node("pg3", "downstream", "198.51.100.13", "pg2", "standby_2", 2),
            node("pg4", "downstream", "198.51.100.14", "pg2", "standby_3", 2),
            node("pg5", "downstream", "198.51.100.16", "pg2", "standby_4", 2),
        ),
    )


def chain() -> Topology:
    """A deeper chain: pg1 -> pg2 -> pg3 -> pg4 -> pg5."""
    return Topology(
        Cluster(vip=VIP),
        (
            node("pg1", "master", "10.0.0.1"),
            node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
            node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
            node("pg4", "downstream", "10.0.0.4", "pg3", "standby_3", 3),
            node("pg5", "downstream", "10.0.0.5", "pg4", "standby_4", 4),
        ),
    )


TOPOLOGIES = {"three": three, "fan": fan, "chain": chain}
ALL_NODES = [(t, n.name) for t, build in TOPOLOGIES.items() for n in build().nodes]
AW = settings.ARCHIVE_WAL_PATH
ARCHIVE = "/var/lib/postgresql/wal_archive"


# --- archive targets and archive_command ---------------------------------------------------------


@pytest.mark.parametrize(
    "topology, node_name, targets",
    [
        ("three", "pg1", ["pg2"]),
        ("three", "pg2", ["pg3"]),
        ("three", "pg3", []),
        ("fan", "pg1", ["pg2"]),
        ("fan", "pg2", ["pg3", "pg4", "pg5"]),
        ("fan", "pg4", []),
        ("chain", "pg1", ["pg2"]),
        ("chain", "pg3", ["pg4"]),
        ("chain", "pg4", ["pg5"]),
        ("chain", "pg5", []),
    ],
)
def test_archive_targets_are_the_children(topology, node_name, targets):
    got = settings.archive_targets(TOPOLOGIES[topology](), node_name)
    assert [n.name for n in got] == targets


@pytest.mark.parametrize(
    "topology, node_name, command",
    [
        ("three", "pg1", f"{AW} %p %f {ARCHIVE} 198.51.100.12"),
        ("three", "pg2", f"{AW} %p %f {ARCHIVE} 198.51.100.13"),
        ("three", "pg3", "/bin/true"),
        ("fan", "pg1", f"{AW} %p %f {ARCHIVE} 198.51.100.12"),
        ("fan", "pg2", f"{AW} %p %f {ARCHIVE} 198.51.100.13 198.51.100.14 198.51.100.16"),
        ("fan", "pg5", "/bin/true"),
        ("chain", "pg3", f"{AW} %p %f {ARCHIVE} 10.0.0.4"),
        ("chain", "pg5", "/bin/true"),
    ],
)
def test_archive_command(topology, node_name, command):
    assert settings.archive_command(TOPOLOGIES[topology](), node_name) == command


def test_master_archive_command_targets_the_cascade_only():
    command = settings.archive_command(fan(), "pg1")
    assert "198.51.100.12" in command
    assert not any(a in command for a in ("198.51.100.13", "198.51.100.14", "198.51.100.16"))


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_archive_mode_is_always_everywhere(topology, node_name):
    assert settings.desired_values(TOPOLOGIES[topology](), node_name)["archive_mode"] == "always"


# --- primary_conninfo ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topology, node_name, conninfo",
    [
        ("three", "pg1", ""),
        (
            "three",
            "pg2",
            "host=198.51.100.11 port=5432 user=replicator application_name=standby_1"
            " passfile=/var/lib/postgresql/.pgpass connect_timeout=5",
        ),
        (
            "three",
            "pg3",
            "host=198.51.100.12 port=5432 user=replicator application_name=standby_2"
            " passfile=/var/lib/postgresql/.pgpass connect_timeout=5",
        ),
        (
            "chain",
            "pg5",
            "host=10.0.0.4 port=5432 user=replicator application_name=standby_4"
            " passfile=/var/lib/postgresql/.pgpass connect_timeout=5",
        ),
    ],
)
def test_primary_conninfo(topology, node_name, conninfo):
    assert settings.primary_conninfo(TOPOLOGIES[topology](), node_name) == conninfo


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_no_password_in_any_setting(topology, node_name):
    values = settings.desired_values(TOPOLOGIES[topology](), node_name)
    assert "password" not in values.get("primary_conninfo", "")
    assert not any("password=" in v for v in values.values())


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """libpq's conninfo_parse, for the keyword=value form."""
    result, i = {}, 0
    while i < len(conninfo):
        if conninfo[i].isspace():
            i += 1
            continue
        key_end = conninfo.index("=", i)
        key = conninfo[i:key_end]
        i = key_end + 1
        value = []
        if i < len(conninfo) and conninfo[i] == "'":
            i += 1
            while conninfo[i] != "'":
                if conninfo[i] == "\\":
                    i += 1
                value.append(conninfo[i])
                i += 1
            i += 1
        else:
            while i < len(conninfo) and not conninfo[i].isspace():
                if conninfo[i] == "\\":
                    i += 1
                value.append(conninfo[i])
                i += 1
        result[key] = "".join(value)
    return result


@pytest.mark.parametrize("app_name", ["standby_1", "it's a standby", "back\\slash", "a b"])
def test_primary_conninfo_quotes_odd_application_names(app_name):
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "10.0.0.1"), node("pg2", "cascade", "10.0.0.2", "pg1", app_name, 1)),
    )
    parsed = parse_conninfo(settings.primary_conninfo(topology, "pg2"))
    assert parsed == {
        "host": "10.0.0.1",
        "port": "5432",
        "user": "replicator",
        "application_name": app_name,
        "passfile": "/var/lib/postgresql/.pgpass",
        "connect_timeout": "5",
    }


def test_application_name_defaults_to_the_node_name():
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "10.0.0.1"), node("pg2", "cascade", "10.0.0.2", "pg1", None, 1)),
    )
    assert "application_name=pg2 " in settings.primary_conninfo(topology, "pg2")


# --- synchronous_standby_names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "topology, node_name, names",
    [
        ("three", "pg1", 'FIRST 1 ("standby_1")'),
        ("three", "pg2", 'FIRST 1 ("standby_2")'),  # in force once the cascade is promoted
        ("three", "pg3", ""),
        ("fan", "pg1", 'FIRST 1 ("standby_1")'),
        ("fan", "pg2", 'FIRST 1 ("standby_2", "standby_3", "standby_4")'),
        ("fan", "pg3", ""),
        ("chain", "pg3", ""),  # has a child, but heartbeat never promotes it
        ("chain", "pg5", ""),
    ],
)
def test_synchronous_standby_names(topology, node_name, names):
    assert settings.synchronous_standby_names(TOPOLOGIES[topology](), node_name) == names


@pytest.mark.parametrize("node_name", ["pg1", "pg2", "pg3"])
def test_asynchronous_cluster_has_no_synchronous_standbys(node_name):
    assert settings.synchronous_standby_names(three(synchronous=False), node_name) == ""


def test_synchronous_name_with_a_double_quote_is_doubled():
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "10.0.0.1"), node("pg2", "cascade", "10.0.0.2", "pg1", 'a"b', 1)),
    )
    assert settings.synchronous_standby_names(topology, "pg1") == 'FIRST 1 ("a""b")'


def test_master_with_two_direct_standbys_waits_for_the_first():
    topology = Topology(
        Cluster(),
        (
            node("pg1", "master", "10.0.0.1"),
            node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
            node("pg3", "downstream", "10.0.0.3", "pg1", "standby_1b", 1),
        ),
    )
    assert settings.synchronous_standby_names(topology, "pg1") == 'FIRST 1 ("standby_1", "standby_1b")'


# --- the whole include file -------------------------------------------------------------------------


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_settings_keys(topology, node_name):
    top = TOPOLOGIES[topology]()
    values = settings.postgres_settings(top, node_name)
    is_master = top.node(node_name).upstream is None
    expected = set(settings.MANAGED_GUCS) - (set(settings.UPSTREAM_ONLY_GUCS) if is_master else set())
    assert set(values) == expected
    assert list(values) == sorted(values)


def test_master_has_no_upstream_but_the_restart_only_standby_settings():
    """A change of role must not need a restart: the postmaster-context ones are everywhere."""
    values = settings.desired_values(three(), "pg1")
    for name in ("primary_conninfo", "archive_cleanup_command"):
        assert name not in values
    assert values["recovery_target_timeline"] == "latest"
    assert values["restore_command"] == settings.desired_values(three(), "pg2")["restore_command"]


@pytest.mark.parametrize("node_name", ["pg2", "pg3"])
def test_standby_settings(node_name):
    values = settings.desired_values(three(), node_name)
    assert values["restore_command"] == f'test -f {ARCHIVE}/%f && cp {ARCHIVE}/%f "%p"'
    assert values["archive_cleanup_command"] == (
        f"/usr/lib/postgresql/15/bin/pg_archivecleanup {ARCHIVE} %r"
    )
    assert values["recovery_target_timeline"] == "latest"


def test_fixed_settings():
    values = settings.postgres_settings(three(), "pg2")
    assert values["listen_addresses"] == "'*'"
    assert values["port"] == "5432"
    assert values["wal_level"] == "replica"
    assert values["wal_log_hints"] == "on"
    assert values["hot_standby"] == "on"
    assert values["max_wal_senders"] == "10"
    assert values["wal_keep_size"] == "512MB"
    assert values["password_encryption"] == "'scram-sha-256'"


def test_version_and_port_follow_the_cluster():
    values = settings.desired_values(three(version=17, port=5433), "pg2")
    assert values["port"] == "5433"
    assert values["archive_cleanup_command"].startswith("/usr/lib/postgresql/17/bin/pg_archivecleanup ")
    assert "port=5433" in values["primary_conninfo"]


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("plain", "'plain'"),
        ("it's", "'it''s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("'", "''''"),
        ("", "''"),
    ],
)
def test_conf_quote(value, quoted):
    assert settings.conf_quote(value) == quoted


def test_conf_quote_refuses_line_breaks():
    with pytest.raises(ValueError, match="line break"):
        settings.conf_quote("a\nb")


@pytest.mark.parametrize(
    "value, written",
    [
        ("10", "10"),
        ("512MB", "512MB"),
        ("-1", "-1"),
        ("0.9", "0.9"),
        ("on", "on"),
        ("1.5GB", "'1.5GB'"),  # PostgreSQL's lexer has no unit after a decimal
        ("pg_stat_statements,auto_explain", "'pg_stat_statements,auto_explain'"),
        ("%m [%p] it's ", "'%m [%p] it''s '"),
    ],
)
def test_extra_settings_quoted_when_needed(value, written):
    top = three(settings=(("x_test.value", value),))
    assert settings.postgres_settings(top, "pg1")["x_test.value"] == written


def test_tunable_defaults_can_be_overridden():
    top = three(settings=(("max_wal_senders", "20"), ("wal_keep_size", "1GB")))
    values = settings.postgres_settings(top, "pg1")
    assert values["max_wal_senders"] == "20"
    assert values["wal_keep_size"] == "1GB"


@pytest.mark.parametrize(
    "extra, message",
    [
        (("archive_command", "cp %p /tmp/%f"), "derived from the topology"),
        (("Primary_Conninfo", "host=x"), "derived from the topology"),
        (("synchronous_standby_names", "*"), "derived from the topology"),
        (("include_dir", "x"), "not a setting name"),
        (("bad name", "1"), "not a setting name"),
        (("max_wal_senders", "3"), "at least 10"),
        (("work_mem", "1\nMB"), "line break"),
    ],
)
def test_extra_settings_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        settings.postgres_settings(three(settings=(extra,)), "pg1")


def test_extra_setting_set_twice_is_refused():
    with pytest.raises(ValueError, match="set twice"):
        settings.postgres_settings(three(settings=(("work_mem", "4MB"), ("WORK_MEM", "8MB"))), "pg1")


def test_guc_names_include_the_extras():
    names = settings.guc_names(three(settings=(("work_mem", "4MB"),)))
    assert "work_mem" in names and "primary_conninfo" in names
    assert list(names) == sorted(names)


@pytest.mark.parametrize(
    "cluster_kwargs, message",
    [
        ({"version": 12}, "13 to 17"),
        ({"archive_dir": "relative/dir"}, "pg_archive_dir"),
        ({"archive_dir": "/with space"}, "pg_archive_dir"),
        ({"replication_user": "rep user"}, "pg_replication_user"),
    ],
)
def test_bad_cluster_values_are_refused(cluster_kwargs, message):
    with pytest.raises(ValueError, match=message):
        settings.postgres_settings(three(**cluster_kwargs), "pg2")


def test_bad_address_is_refused_naming_the_host():
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "10.0.0.1"), node("pg2", "cascade", "10.0.0.2; rm -rf /", "pg1", "s", 1)),
    )
    with pytest.raises(ValueError, match="pg2: address"):
        settings.archive_command(topology, "pg1")


def test_unknown_node_is_refused():
    with pytest.raises(ValueError, match="pg9: not a PostgreSQL host"):
        settings.postgres_settings(three(), "pg9")


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_settings_are_deterministic(topology, node_name):
    first = settings.postgres_settings(TOPOLOGIES[topology](), node_name)
    second = settings.postgres_settings(TOPOLOGIES[topology](), node_name)
    assert first == second and list(first) == list(second)


def test_extra_settings_order_does_not_matter():
    a = three(settings=(("work_mem", "4MB"), ("shared_buffers", "1GB")))
    b = three(settings=(("shared_buffers", "1GB"), ("work_mem", "4MB")))
    assert list(settings.postgres_settings(a, "pg1").items()) == list(
        settings.postgres_settings(b, "pg1").items()
    )


# --- pg_hba.conf ------------------------------------------------------------------------------------


def hba_entries(topology, node_name):
    """The network entries of the node's pg_hba.conf, as the template gets them."""
    variables = settings.render_vars_hba(topology, node_name)
    return variables["cluster_entries"] + variables["app_entries"]


@pytest.mark.parametrize("topology, node_name", ALL_NODES)
def test_hba_has_a_host_entry_per_cluster_host(topology, node_name):
    top = TOPOLOGIES[topology]()
    entries = hba_entries(top, node_name)
    for other in top.nodes:
        for database in ("replication", "postgres"):
            assert settings.HbaEntry(
                "host", database, "replicator", f"{other.address}/32", "scram-sha-256",
                f"{other.name} ({other.role})",
            ) in entries
    assert all(e.address.endswith("/32") for e in entries)
    assert all(e.method == "scram-sha-256" for e in entries)
    assert not any(e.address == "198.51.100.15/32" for e in entries)  # the VIP is no client


def test_hba_is_the_same_on_every_host():
    top = fan()
    assert len({tuple(hba_entries(top, n.name)) for n in top.nodes}) == 1


def test_hba_app_hosts():
    entries = hba_entries(fan(), "pg1")
    assert entries[-1] == settings.HbaEntry(
        "host", "cyclos4", "cyclos", "198.51.100.20/32", "scram-sha-256", "application host"
    )


@pytest.mark.parametrize(
    "address, spec",
    [("198.51.100.20", "198.51.100.20/32"), ("2001:db8::20", "2001:db8::20/128"), ("app1.example", "app1.example")],
)
def test_hba_address_forms(address, spec):
    top = three(app_hosts=(AppHost(address),))
    assert hba_entries(top, "pg1")[-1].address == spec


def test_hba_refuses_a_network():
    with pytest.raises(ValueError, match="is a network"):
        hba_entries(three(app_hosts=(AppHost("198.51.100.0/24"),)), "pg1")


def test_hba_quotes_odd_names():
    entry = hba_entries(three(app_hosts=(AppHost("10.0.0.9", "my db", "all"),)), "pg1")[-1]
    assert entry.database == '"my db"' and entry.user == "all"


# --- .pgpass ----------------------------------------------------------------------------------------


def test_pgpass_lines():
    assert settings.pgpass_lines(three(), "pg2", "s3cret") == [
        "198.51.100.11:5432:replication:replicator:s3cret",
        "198.51.100.11:5432:postgres:replicator:s3cret",
        "198.51.100.12:5432:replication:replicator:s3cret",
        "198.51.100.12:5432:postgres:replicator:s3cret",
        "198.51.100.13:5432:replication:replicator:s3cret",
        "198.51.100.13:5432:postgres:replicator:s3cret",
    ]


@pytest.mark.parametrize(
    "password, field",
    [("a:b", "a\\:b"), ("a\\b", "a\\\\b"), ("\\:", "\\\\\\:"), ("it's", "it's")],
)
def test_pgpass_escapes_colon_and_backslash(password, field):
    line = settings.pgpass_lines(three(), "pg1", password)[0]
    assert line == f"198.51.100.11:5432:replication:replicator:{field}"


def test_pgpass_escapes_ipv6_addresses():
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "2001:db8::1"), node("pg2", "cascade", "2001:db8::2", "pg1", "s", 1)),
    )
    assert settings.pgpass_lines(topology, "pg1", "pw")[0] == "2001\\:db8\\:\\:1:5432:replication:replicator:pw"


@pytest.mark.parametrize("password, message", [("", "empty"), ("a\nb", "line break")])
def test_pgpass_refuses_bad_passwords(password, message):
    with pytest.raises(ValueError, match=message):
        settings.pgpass_lines(three(), "pg1", password)


# --- heartbeat --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node_name, peer",
    [("pg1", "198.51.100.12"), ("pg2", "198.51.100.11")],
)
def test_heartbeat_vars(node_name, peer):
    hb = settings.heartbeat_vars(three(), node_name)
    assert hb["ha_nodes"] == ["pg1", "pg2"]
    assert hb["ha_ucast"] == [settings.UcastPeer("eth0", peer)]
    assert hb["ha_preferred_node"] == "pg1"
    assert (hb["ha_keepalive"], hb["ha_warntime"], hb["ha_deadtime"], hb["ha_initdead"]) == (
        "250ms", "1500ms", "2500ms", "6")
    assert hb["ha_udpport"] == 694
    assert (hb["vip_address"], hb["vip_prefix"], hb["vip_interface"]) == ("198.51.100.15", 24, "eth0")


def test_heartbeat_timings_follow_the_cluster():
    hb = settings.heartbeat_vars(three(heartbeat=HeartbeatTimings(2, 5, 10, 30)), "pg1")
    assert (hb["ha_keepalive"], hb["ha_warntime"], hb["ha_deadtime"], hb["ha_initdead"]) == ("2", "5", "10", "30")


def test_heartbeat_timings_below_a_second_are_written_in_milliseconds():
    hb = settings.heartbeat_vars(three(heartbeat=HeartbeatTimings(0.2, 1.25, 2.75, 6)), "pg1")
    assert (hb["ha_keepalive"], hb["ha_warntime"], hb["ha_deadtime"], hb["ha_initdead"]) == (
        "200ms", "1250ms", "2750ms", "6")


def test_heartbeat_refuses_a_downstream():
    with pytest.raises(ValueError, match="pg3: heartbeat runs on the master and the cascade only"):
        settings.heartbeat_vars(three(), "pg3")


def test_heartbeat_needs_the_vip():
    with pytest.raises(ValueError, match="vip_address"):
        settings.heartbeat_vars(three(vip=None), "pg1")


def test_heartbeat_needs_exactly_two_nodes():
    topology = Topology(
        Cluster(vip=VIP),
        (
            node("pg1", "master", "10.0.0.1"),
            node("pg2", "cascade", "10.0.0.2", "pg1", "a", 1),
            node("pg3", "cascade", "10.0.0.3", "pg1", "b", 1),
        ),
    )
    with pytest.raises(ValueError, match="exactly two nodes"):
        settings.heartbeat_vars(topology, "pg1")


@pytest.mark.parametrize("key", ["", "two words", "tab\there", "line\nbreak"])
def test_authkeys_refuses_bad_keys(key):
    with pytest.raises(ValueError, match="heartbeat key"):
        settings.authkeys_vars(key)


def test_authkeys_vars():
    assert settings.authkeys_vars("lab-secret") == {"heartbeat_key": "lab-secret"}


# --- the failover scripts (ha-lib and friends) -------------------------------------------------------


@pytest.mark.parametrize("node_name, peer", [("pg1", ("pg2", "198.51.100.12")), ("pg2", ("pg1", "198.51.100.11"))])
def test_ha_lib_vars(node_name, peer):
    ha = settings.ha_lib_vars(fan(), node_name)
    assert ha["node_name"] == node_name
    assert ha["ha_peer"] == settings.HaHost(*peer)
    assert ha["vip_address"] == "198.51.100.15" and ha["vip_interface"] == "eth0"
    assert ha["pg_data_directory"] == "/var/lib/postgresql/15/main"
    assert ha["primary_flag"].startswith("/run/")  # tmpfs: gone after a reboot


@pytest.mark.parametrize(
    "node_name, peer, witnesses",
    [
        ("pg1", "pg2", ["pg3", "pg4", "pg5"]),
        ("pg2", "pg1", ["pg3", "pg4", "pg5"]),
        ("pg3", None, ["pg1", "pg2", "pg4", "pg5"]),
    ],
)
def test_hostrules_config(node_name, peer, witnesses):
    from hostrules import config as hostrules_config

    raw = settings.hostrules_config(fan(), node_name)
    c = hostrules_config.from_dict(raw)
    assert (c.self_name, c.ha_peer) == (node_name, peer)
    assert [h.name for h in c.witnesses()] == witnesses
    assert [h.name for h in c.hosts] == ["pg1", "pg2", "pg3", "pg4", "pg5"]
    assert c.primary_flag.startswith("/run/")  # tmpfs: gone after a reboot
    assert c.known_hosts == "/var/lib/postgresql/.ssh/known_hosts"
    assert c.probe_timeout < c.ssh_timeout
    assert c.syncset_path.startswith("/var/lib/postgresql/")  # kept across reboots, postgres's
    assert settings.hostrules_config_vars(fan(), node_name) == settings.hostrules_config_vars(fan(), node_name)


def test_ha_lib_vars_quote_for_the_shell():
    topology = Topology(
        Cluster(vip=VIP, name="it's"),
        (node("pg1", "master", "10.0.0.1"), node("pg2", "cascade", "10.0.0.2", "pg1", "s", 1)),
    )
    ha = settings.ha_lib_vars(topology, "pg2")
    assert ha["pg_cluster"] == "'it'\"'\"'s'"
    assert ha["pg_data_directory"] == "'/var/lib/postgresql/15/it'\"'\"'s'"


@pytest.mark.parametrize(
    "topology, node_name, message",
    [
        (three(), "pg3", "pg3: the failover scripts run on the master and the cascade only"),
        (three(vip=None), "pg1", "vip_address"),
    ],
)
def test_ha_lib_vars_refuse(topology, node_name, message):
    with pytest.raises(ValueError, match=message):
        settings.ha_lib_vars(topology, node_name)


def test_the_boot_guard_drop_in_is_for_the_clusters_unit():
    assert settings.boot_guard_dropin_path(three(version=17, name="main").cluster) == (
        "/etc/systemd/system/postgresql@17-main.service.d/pgcascade-boot-guard.conf")


def test_a_standby_retries_its_wal_sources_every_second():
    """After a failover the downstream reconnects to the promoted cascade quickly."""
    for node_name in ("pg1", "pg2", "pg3"):
        assert settings.desired_values(three(), node_name)["wal_retrieve_retry_interval"] == "1s"
    top = three(settings=(("wal_retrieve_retry_interval", "500ms"),))
    assert settings.desired_values(top, "pg3")["wal_retrieve_retry_interval"] == "500ms"


# --- /etc/hosts and the file table ---------------------------------------------------------------


def test_hosts_entries():
    assert settings.hosts_entries(fan()) == [
        ("198.51.100.11", "pg1"),
        ("198.51.100.12", "pg2"),
        ("198.51.100.13", "pg3"),
        ("198.51.100.14", "pg4"),
        ("198.51.100.16", "pg5"),
    ]


def test_hosts_entries_skip_dns_names():
    topology = Topology(
        Cluster(),
        (node("pg1", "master", "pg1.example.org"), node("pg2", "cascade", "10.0.0.2", "pg1", "s", 1)),
    )
    assert settings.hosts_entries(topology) == [("10.0.0.2", "pg2")]


@pytest.mark.parametrize(
    "node_name, heartbeat", [("pg1", True), ("pg2", True), ("pg3", False), ("pg5", False)]
)
def test_managed_files(node_name, heartbeat):
    files = {f.template: f for f in settings.managed_files(fan(), node_name)}
    assert ("hapostgres.j2" in files) is heartbeat
    assert files["pgcascade.conf.j2"].dest == "/etc/postgresql/15/main/conf.d/pgcascade.conf"
    assert files["pgpass.j2"].mode == "0600" and files["pgpass.j2"].owner == "postgres"
    assert files["pgpass.j2"].secret
    if heartbeat:
        assert files["authkeys.j2"].mode == "0600" and files["authkeys.j2"].secret
        assert files["hapostgres.j2"].dest == "/etc/ha.d/resource.d/hapostgres"
        assert files["may-promote.sh.j2"].dest == "/usr/local/lib/pgcascade/may-promote"
        assert files["ha-lib.sh.j2"].mode == "0644"  # sourced, never run
        assert files["pgcascade-vip.sh.j2"].dest == "/etc/ha.d/resource.d/pgcascade-vip"
        for script in ("hapostgres.j2", "pgcascade-vip.sh.j2", "may-promote.sh.j2", "boot-guard.sh.j2",
                       "ha-watch.sh.j2"):
            assert (files[script].owner, files[script].mode) == ("root", "0755")
        assert files["postgresql-boot-guard.conf.j2"].dest.startswith(
            "/etc/systemd/system/postgresql@15-main.service.d/")
        assert files["heartbeat-restart.conf.j2"].dest.startswith("/etc/systemd/system/heartbeat.service.d/")
    else:
        assert not {"ha-lib.sh.j2", "boot-guard.sh.j2", "pgcascade-ha-watch.service.j2"} & set(files)
    assert files["hostrules.json.j2"].dest == "/etc/pgcascade/hostrules.json"  # every PostgreSQL host
    assert all(re.match(r"^0[0-7]{3}$", f.mode) for f in files.values())


def test_max_wal_senders_grows_with_the_widest_fan_out():
    from planner.gucs import desired_values, wal_senders_needed
    from planner.model import Cluster, Topology
    from tests.unit.topologies import VIP, node, three
    assert wal_senders_needed(three()) == 10  # three hosts: PostgreSQL's default is enough
    assert {desired_values(three(), n.name)["max_wal_senders"] for n in three().nodes} == {"10"}
    # Nine hosts, seven downstreams under the cascade: cloned at once, 2 senders each, plus streaming.
    nine = Topology(Cluster(vip=VIP), (
        node("pg1", "master", "198.51.100.11"),
        node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
        *(node(f"pg{i}", "downstream", f"198.51.100.{10 + i}", "pg2", f"standby_{i - 1}", 2) for i in range(3, 10)),
    ))
    assert wal_senders_needed(nine) == 23
    assert {desired_values(nine, n.name)["max_wal_senders"] for n in nine.nodes} == {"23"}
    # The inventory's own value wins (at least 10, checked with the other pg_settings).
    assert desired_values(three(settings=(("max_wal_senders", "16"),)), "pg1")["max_wal_senders"] == "16"
