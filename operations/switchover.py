"""Switchover steps: stop the primary cleanly, promote the caught-up standby, move the VIP."""
from __future__ import annotations

import re

from pyinfra import host, inventory
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.facts.server import Command

from operations.postgres import psql, unit
from planner.model import Topology

HB_STANDBY = "/usr/share/heartbeat/hb_standby"


@operation()
def stop_primary(topology: Topology, node_name: str, primary: str):
    """
    The primary shuts down cleanly: its WAL senders hand every record to the connected standbys.

    + topology: the cluster as it is now
    + node_name: this host
    + primary: the host to stop
    """
    if node_name != primary:
        host.noop(f"not the primary ({primary})")
        return
    c = topology.cluster
    yield psql(c.port, "CHECKPOINT")  # a short shutdown checkpoint: a short write pause
    yield StringCommand("systemctl", "stop", unit(c.version, c.name))


def _shutdown_checkpoint_lsn(topology: Topology, primary: str) -> str:
    c = topology.cluster
    out = inventory.get_host(primary).get_fact(
        Command, command=f"LC_ALL=C {c.bin_directory}/pg_controldata {c.data_directory}",
        _sudo=True, _sudo_user="postgres")
    state = re.search(r"Database cluster state:\s+(.+)", out or "")
    location = re.search(r"Latest checkpoint location:\s+([0-9A-F]+/[0-9A-F]+)", out or "")
    if not state or state.group(1).strip() != "shut down" or not location:
        raise OperationError(f"{primary} is not cleanly shut down: not promoting (start it again: "
                             f"systemctl start {unit(c.version, c.name)})")
    return location.group(1)


@operation()
def promote_caught_up(topology: Topology, node_name: str, primary: str, target: str, seconds: int = 30):
    """
    Promote the target once it has received the stopped primary's shutdown checkpoint.

    + topology: the cluster as it is now
    + node_name: this host
    + primary: the stopped primary
    + target: the standby to promote
    + seconds: deadline
    """
    if node_name != target:
        host.noop(f"not the new master ({target})")
        return
    c = topology.cluster
    lsn = _shutdown_checkpoint_lsn(topology, primary)
    received = (f"runuser -u postgres -- psql -XAtq -p {c.port} "
                f"-c \"select pg_last_wal_receive_lsn() > '{lsn}'::pg_lsn\"")
    # pyinfra quotes the whole command for the remote shell: one level of quoting here.
    yield StringCommand(
        f"cd / && for i in $(seq {seconds * 10}); do test \"$({received})\" = t && exit 0; sleep 0.1; done; "
        f"echo '{target} did not receive the shutdown checkpoint {lsn} of {primary}: not promoting. "
        f"Start {primary} again: systemctl start {unit(c.version, c.name)}' >&2; exit 1")
    yield StringCommand("cd / && runuser -u postgres --", f"{c.bin_directory}/pg_ctl", "promote", "-w", "-t",
                        str(seconds), "-D", c.data_directory)


@operation()
def move_vip(topology: Topology, node_name: str, primary: str, target: str, seconds: int = 60):
    """
    Heartbeat hands the VIP (and its resources) from the old primary's node to the target.

    + topology: the cluster as it is now
    + node_name: this host
    + primary: the node giving the resources up
    + target: the node taking them
    + seconds: deadline for the VIP to answer on the target
    """
    vip = topology.cluster.vip
    if vip is None:
        host.noop("no VIP in this cluster")
        return
    if node_name == primary:
        yield StringCommand(HB_STANDBY, "all")
    elif node_name == target:
        yield StringCommand(
            "sh -c", f"'for i in $(seq {seconds * 10}); do ip -4 -o addr show dev {vip.interface} | "
            f"grep -qF \" {vip.address}/\" && exit 0; sleep 0.1; done; "
            f"echo \"the VIP {vip.address} did not come up on {target}\" >&2; exit 1'")
    else:
        host.noop("neither the old nor the new master")


@operation()
def mark_standby(topology: Topology, node_name: str, target: str):
    """
    standby.signal in the target's data directory (it restarts as a standby).

    + topology: the cluster
    + node_name: this host
    + target: the host
    """
    if node_name != target:
        host.noop(f"not {target}")
        return
    c = topology.cluster
    yield StringCommand("runuser", "-u", "postgres", "--", "touch", f"{c.data_directory}/standby.signal")
