"""Network and access: ports listening, pg_hba's managed lines and nothing else, exactly the
cluster's keys in authorized_keys, the replication role."""
from __future__ import annotations

from planner import settings

REGISTRY_KIND = "authorized_keys"


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_postgresql_listens(cluster, host_name):
    port = cluster.topology.cluster.port
    assert cluster.host(host_name).socket(f"tcp://0.0.0.0:{port}").is_listening, \
        f"{host_name}: nothing listens on port {port}"


def test_heartbeat_listens_on_its_nodes(cluster):
    if cluster.topology.cluster.vip is None:
        return
    for node in cluster.topology.vip_holders:
        sockets = cluster.host(node.name).check_output("ss -uanp")
        assert "heartbeat" in sockets and f":{settings.HEARTBEAT_UDP_PORT}" in sockets, \
            f"{node.name}: heartbeat has no UDP socket on port {settings.HEARTBEAT_UDP_PORT}"


def test_pg_hba_has_exactly_the_managed_lines(cluster, host_name):
    reg = cluster.registries[host_name]
    path = f"{cluster.topology.cluster.config_directory}/pg_hba.conf"
    wanted = _lines(next(f.content for f in reg.files if f.path == path))
    found = _lines(cluster.host(host_name).file(path).content_string)
    extra = [line for line in found if line not in wanted]
    missing = [line for line in wanted if line not in found]
    assert not extra, f"{host_name}: pg_hba.conf has lines the deploy did not write: {extra}"
    assert not missing, f"{host_name}: pg_hba.conf lacks {missing}"


def test_authorized_keys_are_exactly_the_clusters(cluster, entry_of):
    name, entry = entry_of
    keys = {}
    for peer in entry.peers:
        pub = cluster.host(peer).file(f"{settings.POSTGRES_HOME}/.ssh/id_ed25519.pub").content_string
        keys[peer] = pub.strip()
    found = cluster.host(name).file(entry.path).content_string.splitlines()
    problems = entry.check_keys(found, keys)
    assert not problems, f"{name}: {entry.path}: " + "; ".join(f"found {p[1]} (expected {p[0]})" for p in problems)


def test_the_replication_role(cluster):
    c = cluster.topology.cluster
    out = cluster.host(cluster.topology.master.name).check_output(
        "cd / && runuser -u postgres -- psql -XAtq -p %s -d postgres -c %s", str(c.port),
        f"select rolreplication and rolcanlogin and pg_has_role(oid, 'pg_read_all_stats', 'member') "
        f"from pg_roles where rolname = '{c.replication_user}'")
    assert out.strip() == "t", f"{cluster.topology.master.name}: role {c.replication_user} lacks REPLICATION, " \
                               "LOGIN or pg_read_all_stats"
