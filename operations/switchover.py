"""Switchover steps: stop the primary cleanly, promote the caught-up standby, move the VIP.

The write pause runs from the primary's stop to the VIP answering on the target. Kept short:
the archiver's backlog is shipped before the stop (a clean shutdown waits for it), and the
target takes the VIP itself right after its promotion with heartbeat's own VIP resource; then
heartbeat is told (hb_standby) and finds its resources where they already are.
"""
from __future__ import annotations

import re

from pyinfra import host, inventory
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.facts.server import Command

from operations.plans import preparing
from operations.postgres import poll_until, psql, unit
from planner.model import Topology, Vip
from planner.settings import HA_DIRECTORY, PRIMARY_FLAG_PATH, RUNTIME_DIRECTORY, VIP_RESOURCE_PATH

HB_STANDBY = "/usr/share/heartbeat/hb_standby"
IPADDR2 = f"{HA_DIRECTORY}/resource.d/IPaddr2"  # heartbeat's own script: the same address, the same ARP
READY_FILES = "select count(*) from pg_ls_archive_statusdir() where name like '%.ready'"


def _vip_resource(script: str, vip: Vip, action: str) -> StringCommand:
    return StringCommand(script, f"{vip.address}/{vip.prefix}/{vip.interface}", action)


@operation()
def stop_primary(topology: Topology, node_name: str, primary: str, archive_seconds: int = 120):
    """
    The primary shuts down cleanly: its WAL senders hand every record to the connected standbys.

    + topology: the cluster as it is now
    + node_name: this host
    + primary: the host to stop
    + archive_seconds: how long to let the archiver ship its backlog first
    """
    if node_name != primary:
        host.noop(f"not the primary ({primary})")
        return
    c = topology.cluster
    # A clean shutdown (archive_mode on) ends the current WAL file and waits until the archiver has
    # shipped it and every other finished one (rsync over ssh). Ending it and shipping the backlog
    # now, while writes go on, leaves the shutdown a file of a few seconds' WAL to ship.
    yield psql(c.port, "select pg_switch_wal()")
    yield poll_until(f"test \"$(runuser -u postgres -- psql -XAtq -p {c.port} -c \"{READY_FILES}\")\" = 0",
                     archive_seconds, f"the archiver still has WAL files to ship after {archive_seconds} s: "
                     "stopping anyway (the shutdown ships them)", required=False)
    yield psql(c.port, "CHECKPOINT")  # a short shutdown checkpoint: a short write pause
    # The shutdown checkpoint marks pg_control "shut down"; what follows (the WAL senders'
    # hand-over, the archiver's last file) needs no waiting here: promote_caught_up checks that
    # the target has that checkpoint, and move_vip waits for the stop to end.
    control = f"LC_ALL=C {c.bin_directory}/pg_controldata {c.data_directory}"
    # The primary flag goes first: ha-watch restarts a flagged primary whose PostgreSQL stopped.
    yield StringCommand(f"rm -f {PRIMARY_FLAG_PATH}")
    yield StringCommand("systemctl", "stop", "--no-block", unit(c.version, c.name))
    yield poll_until(f"{control} | grep -Eq '^Database cluster state: +shut down$'", archive_seconds,
                     f"{primary} did not write its shutdown checkpoint in {archive_seconds} s", interval=0.05)


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
    Promote the target once it has received the stopped primary's shutdown checkpoint; then it
    takes the VIP (the primary flag first: ha-watch removes a VIP from a host without it).

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
    # While preparing (--dry) the primary still runs: its shutdown checkpoint exists only later.
    lsn = f"(the shutdown checkpoint of {primary})" if preparing() else _shutdown_checkpoint_lsn(topology, primary)
    received = (f"runuser -u postgres -- psql -XAtq -p {c.port} "
                f"-c \"select pg_last_wal_receive_lsn() > '{lsn}'::pg_lsn\"")
    yield poll_until(f"test \"$({received})\" = t", seconds,
                     f"{target} did not receive the shutdown checkpoint {lsn} of {primary}: not promoting. "
                     f"Start {primary} again: systemctl start {unit(c.version, c.name)}", interval=0.1)
    yield StringCommand("cd / && runuser -u postgres --", f"{c.bin_directory}/pg_ctl", "promote", "-w", "-t",
                        str(seconds), "-D", c.data_directory)
    if c.vip is not None:
        yield StringCommand(f"mkdir -p {RUNTIME_DIRECTORY} && touch {PRIMARY_FLAG_PATH}")
        yield _vip_resource(VIP_RESOURCE_PATH, c.vip, "start")  # heartbeat's own start of the VIP


@operation()
def move_vip(topology: Topology, node_name: str, primary: str, target: str, seconds: int = 60):
    """
    The old primary's node drops the VIP and heartbeat hands its resources to the target, which
    already holds the VIP (promote_caught_up): heartbeat's scripts find everything in place.

    + topology: the cluster as it is now
    + node_name: this host
    + primary: the node giving the resources up
    + target: the node taking them
    + seconds: deadline for heartbeat to hold the resources on the target
    """
    vip = topology.cluster.vip
    if vip is None:
        host.noop("no VIP in this cluster")
        return
    if node_name == primary:
        c = topology.cluster
        # ha-watch removes a VIP from a host without the primary flag (stop_primary removed it):
        # it may do so between IPaddr2's check and its delete. The VIP gone is all this step asks.
        yield StringCommand(_vip_resource(IPADDR2, vip, "stop"), "||", "test", "-z",
                            f'"$(ip -o addr show to {vip.address}/32)"')
        yield StringCommand("systemctl", "stop", unit(c.version, c.name))  # waits for the stop begun earlier
        yield StringCommand(HB_STANDBY, "all")
    elif node_name == target:
        yield poll_until('test "$(cl_status rscstatus 2>/dev/null)" = all', seconds,
                         f"heartbeat does not hold the resources on {target} after {seconds} s", interval=0.1)
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
