"""ha-watch's readers (hostrules.hawatch, hostrules.netlink): systemctl's answer for several
units, heartbeat's process, the kernel's addresses, and when a check reads systemd's and
heartbeat's words again (stubbed readers, a fake clock)."""
from __future__ import annotations

import os
import socket
import struct
import time

from hostrules import config as configlib
from hostrules import hawatch, netlink, watch
from hostrules.hawatch import postmaster_ready_ago
from hostrules.nodestate import NodeState

SHOW = """Id=postgresql@15-main.service
ActiveState=active
UnitFileState=enabled-runtime
ActiveEnterTimestampMonotonic=35559190165

Id=heartbeat.service
ActiveState=active
UnitFileState=enabled
ActiveEnterTimestampMonotonic=35544143926
"""


def test_parse_show_one_block_per_unit_in_order():
    unit, heartbeat = hawatch.parse_show(SHOW, 2)
    assert unit["ActiveState"] == "active" and unit["Id"] == "postgresql@15-main.service"
    assert heartbeat["UnitFileState"] == "enabled"
    assert hawatch.monotonic_seconds(heartbeat["ActiveEnterTimestampMonotonic"]) == 35544.143926
    assert hawatch.monotonic_seconds("0") is None and hawatch.monotonic_seconds("") is None
    assert hawatch.parse_show("", 2) == [{}, {}]  # systemctl gave no answer


def test_heartbeat_process_is_its_pid_and_start_time(tmp_path, monkeypatch):
    pidfile = tmp_path / "heartbeat.pid"
    monkeypatch.setattr(hawatch, "HEARTBEAT_PIDFILE", str(pidfile))
    assert hawatch.heartbeat_process() == ""
    pidfile.write_text("        1\n")  # heartbeat pads it
    with open("/proc/1/stat") as f:
        start = f.read().rsplit(")", 1)[1].split()[19]
    assert hawatch.heartbeat_process() == f"1 {start}"
    pidfile.write_text("999999999\n")  # a pid that does not run
    assert hawatch.heartbeat_process() == ""


def rtm_newaddr(index: int, address: str, prefix: int, local: bool = True) -> bytes:
    raw = socket.inet_aton(address)
    attrs = b"".join(netlink.RTATTR.pack(8, kind) + raw for kind in ((netlink.IFA_ADDRESS, netlink.IFA_LOCAL)
                                                                      if local else (netlink.IFA_ADDRESS,)))
    attrs += netlink.RTATTR.pack(4 + 3, netlink.IFA_LOCAL + 1) + b"lo\0" + b"\0"  # IFA_LABEL, padded to 4
    body = netlink.IFADDRMSG.pack(socket.AF_INET, prefix, 0, 0, index) + attrs
    return netlink.NLMSGHDR.pack(netlink.NLMSGHDR.size + len(body), netlink.RTM_NEWADDR, 2, 1, 0) + body


def test_parse_addresses_of_a_dump():
    done = netlink.NLMSGHDR.pack(netlink.NLMSGHDR.size + 4, netlink.NLMSG_DONE, 2, 1, 0) + b"\0\0\0\0"
    part = rtm_newaddr(2, "10.0.0.15", 24) + rtm_newaddr(3, "10.0.1.1", 32, local=False)
    assert netlink.parse_addresses(part) == ([netlink.Address(2, "10.0.0.15", 24), netlink.Address(3, "10.0.1.1", 32)],
                                             False)
    assert netlink.parse_addresses(done) == ([], True)
    error = netlink.NLMSGHDR.pack(netlink.NLMSGHDR.size + 4, netlink.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1)
    try:
        netlink.parse_addresses(error)
        raise AssertionError("an error message must raise")
    except OSError as e:
        assert e.errno == 1


def test_the_kernel_answers_the_loopback_address():
    assert any(a.address == "127.0.0.1" and a.interface == socket.if_nametoindex("lo")
               for a in netlink.ipv4_addresses())
    assert netlink.has_address("lo", "127.0.0.1") is True
    assert netlink.has_address("lo", "192.0.2.99") is False
    assert netlink.has_address("no-such-if0", "127.0.0.1") is False


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


PRIMARY = NodeState("primary", 1, "7", 1 << 30)


def watcher(tmp_path, monkeypatch, rscstatus="all"):
    c = configlib.from_dict({
        "self": "pg1", "version": 15, "cluster": "main", "port": 5432, "bin_directory": "/nowhere",
        "data_directory": str(tmp_path), "socket_directory": "/nowhere",
        "hosts": [{"name": "pg1", "address": "10.0.0.1", "role": "master"},
                  {"name": "pg2", "address": "10.0.0.2", "role": "cascade"}],
        "ha_peer": "pg2", "ha_preferred": "pg1", "runtime_directory": str(tmp_path),
        "primary_flag": str(tmp_path / "flag"), "syncset_path": str(tmp_path / "syncset.json")})
    (tmp_path / "flag").write_text("")
    clock = Clock()
    reads: list = []  # when heartbeat's words were read
    unit_reads: list = []
    state = {"process": "46 100", "rscstatus": rscstatus, "peer": "active", "local": PRIMARY, "vip": True}

    def read_units(c, process):
        unit_reads.append(clock.now)
        return hawatch.Units("active", "active", True, clock.now - 100, process)

    def read_heartbeat_words(c):
        reads.append(clock.now)
        return hawatch.HeartbeatWords(state["rscstatus"], state["peer"])

    monkeypatch.setattr(hawatch, "time", clock)
    monkeypatch.setattr(hawatch, "read_units", read_units)
    monkeypatch.setattr(hawatch, "read_heartbeat_words", read_heartbeat_words)
    monkeypatch.setattr(hawatch, "heartbeat_process", lambda: state["process"])
    monkeypatch.setattr(hawatch, "read_local", lambda *a, **kw: state["local"])
    monkeypatch.setattr(hawatch, "vip_here", lambda c: state["vip"])
    monkeypatch.setattr(hawatch, "hapostgres_running", lambda: False)
    w = hawatch.Watcher(c, background=False)
    acted: list = []
    monkeypatch.setattr(w, "act", lambda verdict, o: verdict.decision != "none" and acted.append(verdict.decision))
    state["unit_reads"] = unit_reads
    return w, clock, reads, state, acted


def test_a_steady_primary_reads_the_words_every_reread_interval(tmp_path, monkeypatch):
    w, clock, reads, state, _ = watcher(tmp_path, monkeypatch)
    for _ in range(62):
        w.check()
        clock.sleep(1)
    assert reads == list(range(1000, 1062, 5))
    assert state["unit_reads"] == [1000, 1060]


def test_a_heartbeat_restart_or_an_unsteady_node_reads_them_at_once(tmp_path, monkeypatch):
    w, clock, reads, state, _ = watcher(tmp_path, monkeypatch)
    w.check()
    clock.sleep(1)
    state["process"] = "46 200"  # heartbeat restarted with the same pid
    w.check()
    clock.sleep(1)
    w.check()
    (tmp_path / "flag").unlink()  # no flag: not steady
    clock.sleep(1)
    w.check()
    clock.sleep(1)
    w.check()
    assert reads == [1000, 1001, 1003, 1004]
    assert state["unit_reads"] == reads


def test_no_action_on_words_of_an_earlier_check(tmp_path, monkeypatch):
    """A standby whose heartbeat claims the resources for long restarts heartbeat only while the
    peer is active: the words are read again before that action."""
    w, clock, reads, state, acted = watcher(tmp_path, monkeypatch)
    (tmp_path / "flag").unlink()
    state.update(local=NodeState("standby", 1, "7", 1 << 30), vip=False)
    w.others = {"pg2": PRIMARY}  # steady: another host is the primary
    w.memory = watch.Memory(claims_for=watch.STUCK_AFTER)
    w.check()  # read now: heartbeat claims the group, the peer is active
    assert acted == ["restart-heartbeat"]
    w.memory = watch.Memory(claims_for=watch.STUCK_AFTER)
    state["peer"] = "dead"  # the words in hand still say active
    clock.sleep(1)
    w.check()
    assert acted == ["restart-heartbeat"] and reads == [1000, 1001]  # read again before acting: nothing to do
    w.memory = watch.Memory(claims_for=watch.STUCK_AFTER)
    clock.sleep(1)
    w.check()
    assert reads == [1000, 1001] and acted == ["restart-heartbeat"]  # the words of 1001 say dead: nothing to do


def test_the_peer_could_take_over_only_as_a_standby_of_this_cluster(tmp_path, monkeypatch):
    w, *_ = watcher(tmp_path, monkeypatch)
    here = NodeState("unresponsive", 1, "7")
    assert not w.peer_is_standby(here)  # not read yet
    w.others = {"pg2": NodeState("standby", 1, "7")}
    assert w.peer_is_standby(here)
    w.others = {"pg2": NodeState("standby", 1, "8")}  # another cluster
    assert not w.peer_is_standby(here)
    w.others = {"pg2": NodeState("unreachable")}
    assert not w.peer_is_standby(here)


def test_hapostgres_running_finds_its_command_line(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(hawatch, "HAPOSTGRES", str(tmp_path / "hapostgres"))
    assert hawatch.hapostgres_running() is False
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(tmp_path / "hapostgres"), "start"])
    try:
        deadline = time.monotonic() + 10  # a loaded machine may take a moment to exec the child
        while not hawatch.hapostgres_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hawatch.hapostgres_running() is True
    finally:
        proc.kill()
        proc.wait()
    assert hawatch.hapostgres_running() is False


# ---- postmaster.pid: when the postmaster was last ready

READY = "1234\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\n*\n  5432001     12\nready   \n"


def write_pidfile(directory, text: str, age: float) -> None:
    path = directory / "postmaster.pid"
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))


def test_a_ready_status_line_gives_the_files_age(tmp_path):
    write_pidfile(tmp_path, READY, 3.0)
    ago = postmaster_ready_ago(str(tmp_path))
    assert ago is not None and 2.5 < ago < 5


def test_a_starting_postmaster_or_no_file_is_not_ready(tmp_path):
    assert postmaster_ready_ago(str(tmp_path)) is None
    write_pidfile(tmp_path, READY.replace("ready   ", "starting"), 1.0)
    assert postmaster_ready_ago(str(tmp_path)) is None
    write_pidfile(tmp_path, "1234\n/var/lib/postgresql/15/main\n", 1.0)  # written before the status line
    assert postmaster_ready_ago(str(tmp_path)) is None


def test_read_processes_finds_this_process_with_its_parent_and_argv():
    import os

    me = hawatch.read_processes()[os.getpid()]
    assert me.ppid == os.getppid()
    assert "python" in os.path.basename(me.argv[0])


def test_a_wait_for_the_operator_is_said_once_when_it_starts(tmp_path, monkeypatch):
    w, *_ = watcher(tmp_path, monkeypatch)
    said: list = []
    monkeypatch.setattr(w, "say", said.append)
    o = w.observe()
    stays = watch.Verdict("none", "standby-stays-down", "PostgreSQL here, a standby, is still down")
    for verdict in (stays, stays, watch.Verdict("none", "primary", ""), stays, watch.Verdict("none", "starting", "x")):
        hawatch.Watcher.act(w, verdict, o)  # the real one (watcher() records the decisions instead)
    assert said == ["PostgreSQL here, a standby, is still down [standby-stays-down]"] * 2
