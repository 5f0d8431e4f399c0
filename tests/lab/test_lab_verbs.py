"""The lab's verbs on real lab hosts: every fault really happens, and nothing is left behind."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Lab, lab_cli

pytestmark = pytest.mark.lab


def _ping(lab: Lab, src: str, dst_ip: str) -> bool:
    """From inside host src (its own namespaces, no ssh needed)."""
    return lab.cli("exec", src, "--", "ping", "-c1", "-W1", dst_ip, check=False).returncode == 0


def test_three_distinct_hostnames_over_pyinfra(lab3):
    proc = lab3.pyinfra("inventories/lab.py", "exec", "-y", "--", "uname -n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for host in ("pg1", "pg2", "pg3"):
        assert f"[{host}] {host}" in out


def test_hosts_run_systemd_and_have_no_route_off_the_lab(lab3):
    proc = lab3.ssh("pg1", "ps -p 1 -o comm=; ip route; ping -c1 -W1 192.0.2.1")
    assert proc.stdout.splitlines()[0] == "systemd"
    assert "default" not in proc.stdout
    assert proc.returncode != 0  # the machine's own network is unreachable from a lab host


def test_apt_install_from_the_lab_repository(lab3):
    repo = lab3.desc["repo_url"]
    proc = lab3.ssh("pg3", f"echo 'deb [trusted=yes] {repo} ./' >/etc/apt/sources.list.d/lab.list && "
                           "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                           "--no-install-recommends rsync && rsync --version", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rsync  version" in proc.stdout


def test_crash_kills_everything_and_removes_addresses_restart_keeps_files(lab3):
    assert lab3.ssh("pg3", "touch /root/survivor").returncode == 0
    lab3.cli("crash", "pg3")
    assert "pg3\t" + lab3.ip("pg3") + "\tcrashed" in lab3.cli("status").stdout
    assert lab3.ssh("pg3", "true", timeout=20).returncode == 255
    assert not _ping(lab3, "pg1", lab3.ip("pg3"))
    assert "pgl-test-pg3" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    lab3.cli("restart", "pg3")
    proc = lab3.ssh("pg3", "ls /root/survivor && systemctl is-system-running --wait")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_partition_cuts_both_ways_and_heals(lab3):
    lab3.cli("partition", "pg2")
    try:
        assert not _ping(lab3, "pg2", lab3.ip("pg1"))
        assert not _ping(lab3, "pg1", lab3.ip("pg2"))
        assert lab3.ssh("pg2", "true", timeout=20).returncode == 255
    finally:
        lab3.cli("heal", "pg2")
    assert _ping(lab3, "pg1", lab3.ip("pg2"))
    assert lab3.ssh("pg2", "true").returncode == 0


def _reaches(lab: Lab, src: str, dst: str) -> bool:
    """A TCP connection from src to dst's sshd (ping's ARP and ICMP aside: what PostgreSQL uses)."""
    return lab.cli("exec", src, "--", "timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{lab.ip(dst)}/22",
                   check=False).returncode == 0


def test_cut_drops_one_link_only_and_mend_restores_it(lab3):
    lab3.cli("cut", "pg1", "pg2")
    try:
        assert not _reaches(lab3, "pg1", "pg2") and not _reaches(lab3, "pg2", "pg1")
        assert not _ping(lab3, "pg2", lab3.ip("pg1"))
        # each still reaches the third host, and the third both
        assert _reaches(lab3, "pg1", "pg3") and _reaches(lab3, "pg2", "pg3")
        assert _reaches(lab3, "pg3", "pg1") and _reaches(lab3, "pg3", "pg2")
        assert lab3.ssh("pg1", "true").returncode == 0 and lab3.ssh("pg2", "true").returncode == 0
        status = lab3.cli("status").stdout
        assert "link\tpg1 -> pg2\tcut" in status and "link\tpg2 -> pg1\tcut" in status
        # an address the host adds later (the VIP) is cut too: the rule matches the host, not an address
        vip = lab3.desc["vip"]
        lab3.ssh("pg1", f"ip -4 addr add {vip}/{lab3.desc['prefix']} dev eth0")
        assert not _ping(lab3, "pg2", vip) and _ping(lab3, "pg3", vip)
    finally:
        lab3.ssh("pg1", f"ip -4 addr del {lab3.desc['vip']}/{lab3.desc['prefix']} dev eth0")
        lab3.cli("mend", "pg1", "pg2")
    assert _reaches(lab3, "pg1", "pg2") and _reaches(lab3, "pg2", "pg1")
    assert "link" not in lab3.cli("status").stdout


def test_a_one_way_cut_drops_what_one_host_sends_to_the_other(lab3):
    """pg1's frames to pg2 dropped, pg2's to pg1 delivered: pg1 reaches nothing on pg2 (its SYN is
    lost), pg2's SYN arrives at pg1 but the answer does not come back."""
    lab3.cli("cut", "--one-way", "pg1", "pg2")
    try:
        assert not _reaches(lab3, "pg1", "pg2") and not _reaches(lab3, "pg2", "pg1")
        listener = subprocess.Popen(
            [sys.executable, "-m", "lab", "--name", lab3.name, "exec", "pg1", "--", "python3", "-c",
             "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 9999)); "
             "s.settimeout(5); print(s.recvfrom(64)[0].decode())"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        lab3.cli("exec", "pg2", "--", "bash", "-c", f"echo from-pg2 >/dev/udp/{lab3.ip('pg1')}/9999")
        assert listener.communicate(timeout=10)[0].strip() == "from-pg2"  # pg2 -> pg1 still arrives
        status = lab3.cli("status").stdout
        assert "link\tpg1 -> pg2\tcut" in status and "pg2 -> pg1" not in status
    finally:
        lab3.cli("mend", "--one-way", "pg1", "pg2")
    assert _reaches(lab3, "pg1", "pg2")


def test_shape_limits_the_link_both_ways_and_none_lifts_it(lab3):
    megabytes = 8  # at 16 Mbit/s (2 MB/s, after a 2 MB burst): 3 s or more each way; unshaped well under 1 s

    def seconds(command: str, data: str | None = None) -> float:
        started = time.monotonic()
        proc = lab3.ssh("pg2", command, timeout=60, input=data)
        assert proc.returncode == 0, proc.stderr
        return time.monotonic() - started

    out_of, into = f"head -c {megabytes}000000 /dev/zero", "wc -c"
    payload = "x" * (megabytes * 1_000_000)
    lab3.cli("shape", "pg2", "16mbit")
    try:
        assert seconds(out_of) >= 2.5
        assert seconds(into, payload) >= 2.5
    finally:
        lab3.cli("shape", "pg2", "none")
    assert seconds(out_of) < 2 and seconds(into, payload) < 2


def test_pause_stops_answering_and_resume_continues(lab3):
    before = lab3.ssh("pg1", "cat /proc/uptime; systemctl show -p MainPID --value ssh").stdout.split()[-1]
    lab3.cli("pause", "pg1")
    try:
        assert "paused" in lab3.cli("status").stdout
        try:
            answered = lab3.ssh("pg1", "true", timeout=8).returncode == 0
        except subprocess.TimeoutExpired:
            answered = False
        assert not answered
    finally:
        lab3.cli("resume", "pg1")
    after = lab3.ssh("pg1", "systemctl show -p MainPID --value ssh")
    assert after.returncode == 0 and after.stdout.strip() == before  # same sshd: resumed, not rebooted


def test_restart_reboots_on_the_same_disk(lab3):
    boot_id = lab3.ssh("pg2", "echo kept >/root/kept; cat /proc/sys/kernel/random/boot_id").stdout
    first_pid1 = lab3.ssh("pg2", "systemctl show -p ActiveEnterTimestamp --value multi-user.target").stdout
    lab3.cli("restart", "pg2")
    proc = lab3.ssh("pg2", "cat /root/kept; systemctl show -p ActiveEnterTimestamp --value multi-user.target")
    assert proc.stdout.splitlines()[0] == "kept"
    assert proc.stdout.splitlines()[1] != first_pid1.strip()
    assert boot_id  # same kernel: the container boots again, the machine does not


def _leftovers(lab: str) -> list[str]:
    found = []
    found += [line for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
              if line.startswith(f"pgl-{lab}-")]
    found += [line for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
              if f"pgl-{lab}" in line or f"v{lab}-" in line]
    found += [line for line in Path("/proc/self/mounts").read_text().splitlines() if f"/pgcascade-lab/{lab}/" in line]
    found += subprocess.run(["pgrep", "-af", f"pgcascade-lab/{lab}/"], capture_output=True, text=True).stdout.splitlines()
    found += [str(p) for p in Path("/sys/fs/cgroup/unified/pgl").glob(lab)]
    tables = subprocess.run(["nft", "list", "tables", "bridge"], capture_output=True, text=True).stdout
    found += [line for line in tables.splitlines() if line.endswith(f" pgl-{lab}")]
    return found


def test_down_leaves_nothing_behind():
    lab = Lab("gone", 2)
    lab.cli("cut", "pg1", "pg2")
    assert _leftovers(lab.name)  # the check sees a running lab
    lab.down()
    assert _leftovers(lab.name) == []
    assert lab_cli(lab.name, "status", check=False).returncode == 1


def test_two_labs_coexist_on_distinct_subnets(lab3):
    other = Lab("other", 1)
    try:
        assert other.desc["subnet"] != lab3.desc["subnet"]
        assert other.ssh("pg1", "uname -n").stdout.strip() == "pg1"
        assert lab3.ssh("pg1", "uname -n").stdout.strip() == "pg1"
    finally:
        other.down()


def test_bad_input_is_refused_with_a_clear_error():
    proc = lab_cli("bad", "up", "--subnet", "192.0.2.0/28", check=False)
    assert proc.returncode == 1 and "this machine's own network" in proc.stderr
    proc = lab_cli("Bad_Name", "up", check=False)
    assert proc.returncode == 1 and "lab name" in proc.stderr


def test_a_bare_lab_does_not_turn_into_one_with_packages(lab3):
    proc = lab_cli(lab3.name, "up", "--hosts", "3", "--with-packages", check=False)
    assert proc.returncode == 1 and "is up with bare hosts" in proc.stderr, proc.stderr
    proc = lab_cli(lab3.name, "up", "--from", "any", "--with-packages", check=False)
    assert proc.returncode == 1 and "--with-packages with --from" in proc.stderr, proc.stderr
    assert lab3.ssh("pg1", "uname -n").stdout.strip() == "pg1"  # untouched
