"""The shell failover scripts (templates/ha-lib.sh.j2, hapostgres.j2, boot-guard.sh.j2,
pgcascade-vip.sh.j2), rendered and run against stub commands. Their decisions are hostrules's
(tested directly in test_hostrules_*.py); here a stub `python3` plays each hostrules entry point
with canned answers, so what is tested is the scripts' flow: what they run, in which order, and
what they leave behind (the primary flag, the server's state).

Each answer is a file in the fixture's directory: `local` is this host's state line (or "down"),
`succession` and `release` hostrules's lines, `may_promote` may-promote's exit status.
"""
from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from planner import settings
from planner.render import render
from tests.unit.executables import write_executable
from tests.unit.topologies import three

SYSID = "7312345678901234567"

STUBS = {
    "psql": """\
        case "$*" in
            *pg_promote*) cp "$T/promote_to" "$T/local"; echo t ;;
            *) exit 2 ;;
        esac
        """,
    # env PYTHONPATH=... python3 -m hostrules.MODULE ARGS (ha-lib's `rules`)
    "python3": """\
        case $2 in
            hostrules.nodestate) [ "$(cat "$T/local")" = down ] && echo "stopped-primary 1 $SYSID" || cat "$T/local" ;;
            hostrules.succession) cat "$T/succession" ;;
            hostrules.release) cat "$T/release" ;;
            hostrules.syncset) echo "syncset $3" >>"$T/calls" ;;
            *) exit 2 ;;
        esac
        """,
    "systemctl": """\
        case $1 in
            start) cp "$T/start_to" "$T/local" ;;
            stop) echo down >"$T/local" ;;
        esac
        exit 0
        """,
    "id": "echo 1000\n",
    "logger": "",
    "setpriv": 'while [ "${1#--}" != "$1" ]; do shift; done; exec "$@"\n',
    "IPaddr2": "",
    # The VIP on this host is the file $T/vip.
    "ip": """\
        case "$*" in
            *"addr show"*) [ -e "$T/vip" ] && echo "2: eth0    inet $VIP_SEEN scope global eth0" ;;
            *"addr add"*) [ -e "$T/vip" ] && exit 2; touch "$T/vip" ;;
            *"addr del"*) rm "$T/vip" ;;
        esac
        exit 0
        """,
    "setsid": 'exec "$@"\n',
    "send_arp": "",
}


class FakeCluster:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.data = tmp_path / "data"
        (self.data / "pg_wal").mkdir(parents=True)
        (self.data / "PG_VERSION").write_text("15\n")
        self.calls = tmp_path / "calls"
        self.calls.write_text("")
        for name, body in STUBS.items():
            write_executable(self.bin / name, f'#!/bin/bash\necho "{name} $*" >>"$T/calls"\n'
                                              + textwrap.dedent(body))
        write_executable(tmp_path / "may-promote",
                         '#!/bin/bash\necho "may-promote" >>"$T/calls"\nexit "$(cat "$T/may_promote")"\n')
        variables = settings.ha_lib_vars(three(), "pg2")
        variables.update(
            pg_bin_directory=str(self.bin), pg_data_directory=str(self.data),
            runtime_directory=str(tmp_path / "run"), primary_flag=str(tmp_path / "run/primary-allowed"),
            hand_over_marker=str(tmp_path / "run/handing-over"),
            may_promote_path=str(tmp_path / "may-promote"), ready_timeout=2,
            send_arp_path=str(self.bin / "send_arp"), send_arp_pid_directory=str(tmp_path / "run/resource-agents"),
        )
        (tmp_path / "ha-lib").write_text(render("ha-lib.sh.j2", variables))
        script_vars = {**settings.ha_script_vars(three()), "ha_lib_path": str(tmp_path / "ha-lib")}
        for template, name in (("hapostgres.j2", "hapostgres"), ("boot-guard.sh.j2", "boot-guard")):
            write_executable(tmp_path / name, render(template, script_vars))
        write_executable(tmp_path / "pgcascade-vip", render("pgcascade-vip.sh.j2", {
            **settings.vip_resource_vars(three(), "pg2"), "ipaddr2_path": str(self.bin / "IPaddr2"),
            "ha_lib_path": str(tmp_path / "ha-lib")}))
        self.flag = tmp_path / "run/primary-allowed"
        self.set(local="standby 1 " + SYSID, may_promote="0", succession="keep 2 newest-timeline no newer (view)",
                 release="release not-a-primary nothing to keep")

    def set(self, **files):
        for name, content in files.items():
            (self.dir / name).write_text(content + "\n")

    def set_flag(self):
        self.flag.parent.mkdir(exist_ok=True)
        self.flag.write_text("")

    @property
    def local(self):
        return (self.dir / "local").read_text().strip()

    def log(self):
        return self.calls.read_text()

    def run(self, script, *args, timeout=30):
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "T": str(self.dir), "SYSID": SYSID}
        return subprocess.run([str(self.dir / script), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)


@pytest.fixture
def fake(tmp_path):
    return FakeCluster(tmp_path)


# --- hapostgres start --------------------------------------------------------------------------------


def test_start_promotes_a_standby_after_may_promote_then_records_the_synchronous_set(fake):
    fake.set(promote_to="primary 2 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    log = fake.log()
    assert log.index("may-promote") < log.index("pg_promote")
    assert "select pg_promote(true, 60)" in log
    assert fake.flag.exists()
    assert "is now the primary" in result.stderr
    for _ in range(50):  # written in the background
        if "syncset write" in fake.log():
            break
        __import__("time").sleep(0.05)
    assert "syncset write" in fake.log()


def test_start_does_not_promote_when_may_promote_refuses(fake):
    fake.set(may_promote="1")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1
    assert "may-promote refused" in result.stderr
    assert "pg_promote" not in fake.log()
    assert not fake.flag.exists()


def test_start_refuses_without_may_promote(fake):
    (fake.dir / "may-promote").unlink()
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "missing" in result.stderr
    assert "pg_promote" not in fake.log()


def test_start_keeps_a_primary_nobody_succeeded(fake):
    fake.set(local="primary 1 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    assert fake.flag.exists()
    assert "pg_promote" not in fake.log() and "systemctl" not in fake.log()


def test_start_fences_a_former_primary(fake):
    fake.set(local="primary 1 " + SYSID, succession="fence 2 successor-timeline pg2 branched off: a former primary")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1
    assert "former primary" in result.stderr and "[successor-timeline]" in result.stderr
    assert "systemctl stop postgresql@15-main" in fake.log()
    assert fake.local == "down" and not fake.flag.exists()


def test_start_starts_a_stopped_primary_when_nobody_succeeded_it(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    assert "systemctl start postgresql@15-main" in fake.log()
    assert fake.flag.exists()


def test_start_keeps_a_stopped_former_primary_stopped(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID, succession="fence 1 successor-timeline pg3 on 2")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "rejoin it as a standby" in result.stderr
    assert "systemctl start" not in fake.log() and not fake.flag.exists()


def test_start_keeps_a_stopped_primary_stopped_when_nobody_answers(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID, succession="keep 0 newest-timeline nobody newer")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "no other host of the cluster answers" in result.stderr
    assert "systemctl start" not in fake.log()


def test_start_starts_a_stopped_standby_then_promotes_it(fake):
    fake.set(local="stopped-standby 1 " + SYSID, start_to="standby 1 " + SYSID, promote_to="primary 2 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    log = fake.log()
    assert log.index("systemctl start") < log.index("pg_promote")


def test_start_refuses_without_a_cluster(fake):
    fake.set(local="absent 0 -")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "absent" in result.stderr


# --- hapostgres stop and status ----------------------------------------------------------------------


def test_stop_stops_a_primary_when_released(fake):
    fake.set(local="primary 1 " + SYSID, release="release heartbeat-stopping heartbeat is being stopped")
    fake.set_flag()
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0
    assert "systemctl stop postgresql@15-main" in fake.log()
    assert not fake.flag.exists()


def test_stop_keeps_the_primary_and_its_flag_while_heartbeat_only_restarts(fake):
    fake.set(local="primary 1 " + SYSID, release="keep heartbeat-restarting nobody replaced it")
    fake.set_flag()
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0 and "[heartbeat-restarting]" in result.stderr
    assert "systemctl" not in fake.log() and fake.flag.exists()


def test_a_start_that_sets_the_flag_ends_an_earlier_hand_over(fake):
    """The marker would otherwise make a heartbeat restart within its 30 s release this primary."""
    fake.set(promote_to="primary 2 " + SYSID)
    marker = fake.flag.parent / "handing-over"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text("")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    assert fake.flag.exists() and not marker.exists()


def test_stop_during_ha_watchs_hand_over_stops_nothing_itself(fake):
    """ha-watch queued the stop of its hung server: waiting for that stop here would hold the
    hand-over up until systemd's stop timeout."""
    fake.set(local="unresponsive 1 " + SYSID, release="release handing-over ha-watch is handing the resources over")
    fake.set_flag()
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0 and "handing the resources over" in result.stderr
    assert "systemctl" not in fake.log() and not fake.flag.exists()


@pytest.mark.parametrize("local", ["standby 1 " + SYSID, "down"])
def test_stop_leaves_a_standby_alone_and_always_succeeds(fake, local):
    fake.set(local=local)
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0
    assert "systemctl" not in fake.log()


@pytest.mark.parametrize(
    "local, flag, output, code",
    [("primary 1 " + SYSID, True, "running\n", 0), ("primary 1 " + SYSID, False, "stopped\n", 3),
     ("standby 1 " + SYSID, True, "stopped\n", 3), ("down", True, "stopped\n", 3)],
)
def test_status(fake, local, flag, output, code):
    fake.set(local=local)
    if flag:
        fake.set_flag()
    result = fake.run("hapostgres", "status")
    assert (result.stdout, result.returncode) == (output, code)
    # heartbeat's ResourceManager: *[Nn][Oo][Tt]\ *[Rr]unning* -> stopped, *[Rr]unning*|*OK* -> running
    assert ("running" in result.stdout.lower()) is (code == 0)


def test_usage(fake):
    assert fake.run("hapostgres", "bogus").returncode == 2


# --- the VIP resource ------------------------------------------------------------------------------


def test_vip_stop_keeps_the_vip_when_hostrules_keeps_the_primary(fake):
    fake.set(release="keep heartbeat-restarting nobody replaced it")
    result = fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "stop")
    assert result.returncode == 0 and "keeping the VIP" in result.stderr
    assert "IPaddr2" not in fake.log()


def test_vip_stop_otherwise_is_ipaddr2s(fake):
    fake.set(release="release heartbeat-stopping stop job")
    assert fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "stop").returncode == 0
    assert "IPaddr2 198.51.100.15/24/eth0 stop" in fake.log()


def test_vip_start_adds_the_address_then_announces_it_and_status_says_running(fake):
    assert fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "status").stdout.strip() == "stopped"
    result = fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "start")
    assert result.returncode == 0, result.stderr
    log = fake.log()
    assert "ip -4 addr add 198.51.100.15/24 dev eth0" in log
    for _ in range(50):  # announced in the background
        if "send_arp" in fake.log():
            break
        __import__("time").sleep(0.05)
    assert "send_arp -i 200 -r 5 -p " in fake.log() and "eth0 198.51.100.15 auto" in fake.log()
    assert "IPaddr2" not in fake.log()
    status = fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "status")
    assert (status.stdout.strip(), status.returncode) == ("running", 0)


def test_vip_start_with_the_vip_already_here_adds_nothing(fake):
    (fake.dir / "vip").write_text("")
    assert fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "start").returncode == 0
    assert "addr add" not in fake.log()


def test_vip_start_fails_when_the_address_cannot_be_added(fake):
    write_executable(fake.bin / "ip", '#!/bin/bash\necho "ip $*" >>"$T/calls"\nexit 2\n')
    result = fake.run("pgcascade-vip", "198.51.100.15/24/eth0", "start")
    assert result.returncode == 1 and "could not add the VIP" in result.stderr
    assert "send_arp" not in fake.log()


# --- boot guard --------------------------------------------------------------------------------------


def test_boot_guard_lets_a_standby_start(fake):
    (fake.data / "standby.signal").write_text("")
    assert fake.run("boot-guard").returncode == 0


def test_boot_guard_refuses_a_primary_without_the_flag(fake):
    result = fake.run("boot-guard")
    assert result.returncode == 1
    assert "REFUSED to start PostgreSQL 15/main as a primary" in result.stderr


def test_boot_guard_lets_a_primary_start_with_the_flag(fake):
    fake.set_flag()
    assert fake.run("boot-guard").returncode == 0


def test_boot_guard_ignores_an_empty_data_directory(fake):
    (fake.data / "PG_VERSION").unlink()
    assert fake.run("boot-guard").returncode == 0
