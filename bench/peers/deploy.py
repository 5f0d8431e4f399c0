"""Bench only: Patroni 3.0 + etcd 3.4 + vip-manager 1.0 (Debian 12's packages, from the lab's
repository) on every host of a lab inventory, so pgcascade and its peer run on the same hosts.

    PGCASCADE_LAB=NAME pyinfra -y inventories/lab.py bench/peers/deploy.py [--data profile=fastest]

Three etcd members (one per host), Patroni with synchronous mode on and pg_rewind, the VIP held
by vip-manager wherever etcd's leader key points. The first host bootstraps the cluster; the
others join as its replicas. The timing (bootstrap only) is patroni_files.PROFILES[profile];
bench/peers/cluster.py changes it on a running cluster.
"""
from __future__ import annotations

import hashlib
import ipaddress
from io import StringIO
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.operations import files, systemd

from bench.peers import patroni_files as pf
from bench.peers.operations import ensure_packages_unstarted, wait_for
from operations.private_files import ensure_private_file
from planner.secrets import parse_secrets_file

PACKAGES = [f"postgresql-{pf.PG_VERSION}", "patroni", "etcd-server", "vip-manager"]

members = [pf.Member(h.name, h.data.pg_address) for h in sorted(inventory.iter_activated_hosts(), key=lambda h: h.name)]
me = next(m for m in members if m.name == host.name)
first = members[0]
subnet = str(ipaddress.ip_interface(f"{host.data.vip_address}/{host.data.vip_prefix}").network)
secrets = parse_secrets_file(Path(host.data.secrets_file).read_text(), host.data.secrets_file)
replication_password = secrets["PGCASCADE_REPLICATION_PASSWORD"]
# The lab's secrets file has no superuser password for the peer: one derived from it, per lab.
superuser_password = hashlib.sha256(f"patroni-superuser:{replication_password}".encode()).hexdigest()[:32]
timing = pf.PROFILES[host.data.get("profile", "defaults")]
rest = f"http://{me.address}:{pf.REST_PORT}"

repo = host.data.apt_repository
files.put(name=f"apt repository {repo['filename']}", src=StringIO(repo["line"] + "\n"),
          dest=f"/etc/apt/sources.list.d/{repo['filename']}.list", mode="644")
ensure_packages_unstarted(name="PostgreSQL, Patroni, etcd and vip-manager (nothing started)",
                          packages=PACKAGES, pg_version=pf.PG_VERSION)

etcd_file = files.put(name="etcd: a member of the three-node cluster", src=StringIO(pf.etcd_defaults(me, members)),
                      dest=pf.ETCD_DEFAULTS_PATH, mode="644")
systemd.service(name="etcd running", service="etcd", running=True, enabled=True,
                restarted=etcd_file.did_change)
wait_for(name="etcd healthy", check=f"curl -sf http://127.0.0.1:{pf.ETCD_CLIENT_PORT}/health | grep -q true",
         seconds=60, what="healthy etcd")

vip_file = files.put(name="vip-manager: the VIP follows the leader key",
                     src=StringIO(pf.vip_manager_defaults(me, members, host.data.vip_address, host.data.vip_prefix,
                                                          host.data.vip_interface)),
                     dest=pf.VIP_MANAGER_DEFAULTS_PATH, mode="644")
systemd.service(name="vip-manager running", service="vip-manager", running=True, enabled=True,
                restarted=vip_file.did_change)

ensure_private_file(name="Patroni configuration", dest=pf.CONFIG_PATH, user="postgres", group="postgres",
                    content=pf.patroni_config(me, members, subnet=subnet, replication_password=replication_password,
                                              superuser_password=superuser_password, timing=timing))
if me == first:
    systemd.service(name="Patroni running (bootstraps the cluster)", service="patroni", running=True, enabled=True)
    wait_for(name="the first host leads", check=f"curl -sf {rest}/primary >/dev/null", seconds=120,
             what="Patroni leader")
else:
    # Joins once the first host leads (every host runs the same operations, in this order).
    wait_for(name="the cluster has a leader", check=f"curl -sf http://{first.address}:{pf.REST_PORT}/primary >/dev/null",
             seconds=120, what="Patroni leader on the first host")
    systemd.service(name="Patroni running (joins as a replica)", service="patroni", running=True, enabled=True)
wait_for(name="this member streams or leads",
         check=f"curl -sf {rest}/health >/dev/null", seconds=180, what="running PostgreSQL under Patroni")
if me == first:
    wait_for(name="a synchronous standby", check=f"curl -sf {rest}/cluster | grep -q sync_standby", seconds=120,
             what="synchronous standby in Patroni's cluster view")
