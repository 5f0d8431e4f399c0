"""The failover scripts (templates/ha-lib.sh.j2, hapostgres.j2, may-promote.sh.j2, boot-guard.sh.j2,
ha-watch.sh.j2), rendered and run against stub commands: psql, pg_controldata, pg_ctl,
pg_isready, systemctl, ssh (which plays the other cluster hosts) and friends.

The fake cluster is pg2 (the cascade, where the scripts run) with pg1 (the master, its heartbeat
peer) and pg3 (the downstream, the witness). Each host's answers are files in the fixture's
directory: `local` is this host's state line (or "down"), `remote.ADDRESS` another host's,
`probe.FROM.ADDRESS` pg_isready's exit status from FROM (local, or a witness's address).
"""
from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from planner import settings
from planner.render import render
from tests.unit.executables import write_executable
from tests.unit.topologies import three

PG1, PG3 = "198.51.100.11", "198.51.100.13"
SYSID = "7312345678901234567"

STUBS = {
    "psql": """\
        case "$*" in
            *pg_promote*) cp "$T/promote_to" "$T/local"; echo t ;;
            *pg_is_in_recovery*) [ "$(cat "$T/local")" = down ] && exit 2; cat "$T/local" ;;
            *) exit 2 ;;
        esac
        """,
    "pg_controldata": """\
        printf 'Database system identifier:           %s\\n' "$(cat "$T/sysid")"
        printf "Latest checkpoint's TimeLineID:       %s\\n" "$(cat "$T/checkpoint_tli")"
        """,
    "pg_ctl": '[ -e "$T/postmaster" ] && exit 0\nexit 3\n',
    "pg_isready": """\
        while getopts qh:p:t: option; do [ "$option" = h ] && host=$OPTARG; done
        file="$T/probe.${FAKE_FROM:-local}.$host"
        [ -e "$file" ] || exit 2
        [ "$(cat "$file")" = hang ] && exec sleep 30
        exit "$(cat "$file")"
        """,
    "systemctl": """\
        case $1 in
            start) cp "$T/start_to" "$T/local" ;;
            stop) echo down >"$T/local" ;;
            show) [ -e "$T/heartbeat_since" ] && cat "$T/heartbeat_since" ;;
        esac
        exit 0
        """,
    "ssh": """\
        while [ $# -gt 0 ]; do
            case $1 in
                -o | -l | -i) shift 2 ;;
                -O) check=1; shift 2 ;;
                --) shift; break ;;
                *) break ;;
            esac
        done
        [ -n "${check:-}" ] && exit 255
        address=$1 command=${2:-}
        [ -e "$T/unreachable.$address" ] && exit 255
        case $command in
            "bash -s"*) cat "$T/remote.$address" ;;
            true) ;;
            *) FAKE_FROM=$address bash -c "$command" ;;
        esac
        """,
    "id": "echo 1000\n",
    "logger": "",
    "ip": """\
        case "$*" in
            *" addr del "*) rm -f "$T/vip_here" ;;
            *) [ -e "$T/vip_here" ] && echo "2: eth0    inet 198.51.100.15/24 scope global secondary eth0" ;;
        esac
        exit 0
        """,
    "hb_standby": "",
    "hb_takeover": "",
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
        variables = settings.ha_lib_vars(three(), "pg2")
        variables.update(
            pg_bin_directory=str(self.bin), pg_data_directory=str(self.data),
            runtime_directory=str(tmp_path / "run"), primary_flag=str(tmp_path / "run/primary-allowed"),
            may_promote_path=str(tmp_path / "may-promote"), hb_standby_path=str(self.bin / "hb_standby"),
            hb_takeover_path=str(self.bin / "hb_takeover"), ready_timeout=2, watch_interval=0, reclaim_after=0,
        )
        (tmp_path / "ha-lib").write_text(render("ha-lib.sh.j2", variables))
        script_vars = {**settings.ha_script_vars(three()), "ha_lib_path": str(tmp_path / "ha-lib")}
        for template, name in (("hapostgres.j2", "hapostgres"), ("may-promote.sh.j2", "may-promote"),
                               ("boot-guard.sh.j2", "boot-guard"), ("ha-watch.sh.j2", "ha-watch")):
            write_executable(tmp_path / name, render(template, script_vars))
        self.flag = tmp_path / "run/primary-allowed"
        self.set(local="standby 1 " + SYSID, sysid=SYSID, checkpoint_tli="1")
        self.remote(PG1, "primary 1 " + SYSID)
        self.remote(PG3, "standby 1 " + SYSID)

    def set(self, **files):
        for name, content in files.items():
            (self.dir / name).write_text(content + "\n")

    def remote(self, address, line):
        self.set(**{f"remote.{address}": line})

    def probe(self, address, status, origin="local"):
        self.set(**{f"probe.{origin}.{address}": str(status)})

    def unreachable(self, address):
        self.set(**{f"unreachable.{address}": ""})

    @property
    def local(self):
        return (self.dir / "local").read_text().strip()

    def log(self):
        return self.calls.read_text()

    def run(self, script, *args, timeout=30):
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "T": str(self.dir)}
        return subprocess.run([str(self.dir / script), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)


@pytest.fixture
def fake(tmp_path):
    return FakeCluster(tmp_path)


def master_gone(fake):
    """pg1 crashed: silent from pg2 (the default) and from the witness pg3."""
    fake.probe(PG1, 2, origin=PG3)


# --- may-promote -----------------------------------------------------------------------------------


def test_may_promote_agrees_when_the_master_is_silent_from_here_and_from_a_witness(fake):
    master_gone(fake)
    result = fake.run("may-promote")
    assert result.returncode == 0, result.stderr
    assert "from pg2: silent; from pg3: silent" in result.stderr
    assert "agreed" in result.stderr


def test_may_promote_treats_a_hung_master_as_silent(fake):
    fake.probe(PG1, "hang")
    fake.probe(PG1, "hang", origin=PG3)
    result = fake.run("may-promote")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "setup, reason",
    [
        (lambda f: (master_gone(f), f.probe(PG1, 0)), "only heartbeat's link is down"),
        (lambda f: (master_gone(f), f.probe(PG1, 1)), "only heartbeat's link is down"),
        (lambda f: f.probe(PG1, 0, origin=PG3), "pg3 can still reach pg1"),
        (lambda f: f.unreachable(PG3), "this host may be the isolated one"),
        (lambda f: (master_gone(f), f.set(local="primary 1 " + SYSID)), "not a standby"),
        (lambda f: (master_gone(f), f.set(local="down")), "not a standby"),
    ],
    ids=["master-answers-here", "master-rejects-here", "witness-reaches-master", "witness-unreachable",
         "local-primary", "local-stopped"],
)
def test_may_promote_refuses(fake, setup, reason):
    setup(fake)
    result = fake.run("may-promote")
    assert result.returncode == 1
    assert "REFUSED" in result.stderr and reason in result.stderr, result.stderr


def test_may_promote_asks_the_witness_over_ssh_as_postgres_with_pinned_keys(fake):
    master_gone(fake)
    fake.run("may-promote")
    ssh = [line for line in fake.log().splitlines() if line.startswith("ssh ")]
    assert ssh and all("StrictHostKeyChecking=yes" in line and "-l postgres" in line for line in ssh)
    assert any(PG3 in line and "pg_isready -q -h 198.51.100.11 -p 5432" in line for line in ssh)


# --- hapostgres start --------------------------------------------------------------------------------


def test_start_promotes_a_standby_after_may_promote(fake):
    master_gone(fake)
    fake.set(promote_to="primary 2 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    log = fake.log()
    assert log.index("pg_isready") < log.index("pg_promote")
    assert "select pg_promote(true, 60)" in log
    assert fake.flag.exists()
    assert "is now the primary" in result.stderr


def test_start_does_not_promote_when_may_promote_refuses(fake):
    fake.probe(PG1, 0)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1
    assert "may-promote refused" in result.stderr
    assert "pg_promote" not in fake.log()
    assert not fake.flag.exists()


def test_start_refuses_without_may_promote(fake):
    master_gone(fake)
    (fake.dir / "may-promote").unlink()
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "missing" in result.stderr
    assert "pg_promote" not in fake.log()


def test_start_keeps_a_primary_no_other_host_is_newer_than(fake):
    fake.set(local="primary 1 " + SYSID)
    fake.remote(PG1, "standby 1 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    assert fake.flag.exists()
    assert "pg_promote" not in fake.log() and "systemctl" not in fake.log()


@pytest.mark.parametrize("newer", ["primary 2", "standby 2", "stopped-standby 3"])
def test_start_fences_a_former_primary(fake, newer):
    fake.set(local="primary 1 " + SYSID)
    fake.remote(PG3, f"{newer} {SYSID}")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1
    assert "former primary" in result.stderr
    assert "systemctl stop postgresql@15-main" in fake.log()
    assert fake.local == "down" and not fake.flag.exists()


def test_start_ignores_a_newer_timeline_of_another_cluster(fake):
    fake.set(local="primary 1 " + SYSID)
    fake.remote(PG3, "primary 4 1111111111111111111")
    assert fake.run("hapostgres", "start").returncode == 0


def test_start_starts_a_stopped_primary_when_the_others_are_not_newer(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID)
    fake.unreachable(PG1)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    assert "systemctl start postgresql@15-main" in fake.log()
    assert fake.flag.exists()


def test_start_keeps_a_stopped_former_primary_stopped(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID)
    fake.unreachable(PG1)
    fake.remote(PG3, "standby 2 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "former primary" in result.stderr
    assert "systemctl start" not in fake.log() and not fake.flag.exists()


def test_start_keeps_a_stopped_primary_stopped_when_nobody_answers(fake):
    fake.set(local="down", start_to="primary 1 " + SYSID)
    fake.unreachable(PG1)
    fake.unreachable(PG3)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "no other host of the cluster answers" in result.stderr
    assert "systemctl start" not in fake.log()


def test_start_starts_a_stopped_standby_then_promotes_it(fake):
    master_gone(fake)
    (fake.data / "standby.signal").write_text("")
    fake.set(local="down", start_to="standby 1 " + SYSID, promote_to="primary 2 " + SYSID)
    result = fake.run("hapostgres", "start")
    assert result.returncode == 0, result.stderr
    log = fake.log()
    assert log.index("systemctl start") < log.index("pg_promote")


def test_start_refuses_without_a_cluster(fake):
    (fake.data / "PG_VERSION").unlink()
    fake.set(local="down")
    result = fake.run("hapostgres", "start")
    assert result.returncode == 1 and "absent" in result.stderr


# --- hapostgres stop and status ----------------------------------------------------------------------


def test_stop_stops_a_primary_the_peer_can_take_over_from(fake):
    fake.set(local="primary 1 " + SYSID)
    fake.remote(PG1, "standby 1 " + SYSID)
    fake.flag.parent.mkdir()
    fake.flag.write_text("")
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0
    assert "systemctl stop postgresql@15-main" in fake.log()
    assert not fake.flag.exists()


def test_stop_keeps_the_newest_primary_when_the_peer_is_a_former_primary(fake):
    fake.set(local="primary 2 " + SYSID)
    fake.remote(PG1, "primary 1 " + SYSID)
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0
    assert "keeps running" in result.stderr
    assert "systemctl stop" not in fake.log()


def test_stop_stops_a_former_primary(fake):
    fake.set(local="primary 1 " + SYSID)
    fake.remote(PG3, "standby 2 " + SYSID)
    result = fake.run("hapostgres", "stop")
    assert result.returncode == 0 and "former primary" in result.stderr
    assert "systemctl stop" in fake.log()


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
        fake.flag.parent.mkdir()
        fake.flag.write_text("")
    result = fake.run("hapostgres", "status")
    assert (result.stdout, result.returncode) == (output, code)
    # heartbeat's ResourceManager: *[Nn][Oo][Tt]\ *[Rr]unning* -> stopped, *[Rr]unning*|*OK* -> running
    assert ("running" in result.stdout.lower()) is (code == 0)


@pytest.mark.parametrize("script, args", [("hapostgres", ["bogus"]), ("ha-watch", ["--checks", "x"]),
                                          ("ha-watch", ["--once"])])
def test_usage(fake, script, args):
    assert fake.run(script, *args).returncode == 2


# --- boot guard --------------------------------------------------------------------------------------


def test_boot_guard_lets_a_standby_start(fake):
    (fake.data / "standby.signal").write_text("")
    assert fake.run("boot-guard").returncode == 0


def test_boot_guard_refuses_a_primary_without_the_flag(fake):
    result = fake.run("boot-guard")
    assert result.returncode == 1
    assert "REFUSED to start PostgreSQL 15/main as a primary" in result.stderr


def test_boot_guard_lets_a_primary_start_with_the_flag(fake):
    fake.flag.parent.mkdir()
    fake.flag.write_text("")
    assert fake.run("boot-guard").returncode == 0


def test_boot_guard_ignores_an_empty_data_directory(fake):
    (fake.data / "PG_VERSION").unlink()
    assert fake.run("boot-guard").returncode == 0


# --- ha-watch ----------------------------------------------------------------------------------------


def test_watch_stops_a_former_primary_and_hands_the_vip_over(fake):
    fake.set(local="primary 1 " + SYSID, vip_here="")
    fake.remote(PG1, "primary 2 " + SYSID)
    fake.flag.parent.mkdir()
    fake.flag.write_text("")
    result = fake.run("ha-watch", "--checks", "1")
    assert result.returncode == 0
    assert "CRIT" in result.stderr and "former primary" in result.stderr
    log = fake.log()
    assert "systemctl stop postgresql@15-main" in log and "hb_standby all" in log
    assert "hb_takeover" not in log
    assert not fake.flag.exists()


def test_watch_leaves_the_newest_primary_holding_the_resources_alone(fake):
    fake.set(local="primary 2 " + SYSID)
    fake.flag.parent.mkdir()
    fake.flag.write_text("")
    fake.remote(PG1, "primary 1 " + SYSID)
    fake.unreachable(PG3)
    result = fake.run("ha-watch", "--checks", "1")
    assert result.returncode == 0 and result.stderr == ""
    assert "systemctl stop" not in fake.log() and "hb_" not in fake.log()


def test_watch_asks_heartbeat_for_the_resources_for_the_newest_primary(fake):
    fake.set(local="primary 2 " + SYSID)  # no primary flag, no VIP here
    fake.remote(PG1, "stopped-primary 1 " + SYSID)
    result = fake.run("ha-watch", "--checks", "1")
    assert "asking for them (hb_takeover)" in result.stderr
    assert "hb_takeover all" in fake.log() and "systemctl stop" not in fake.log()


def test_watch_does_not_ask_for_the_resources_while_heartbeat_settles(fake):
    # heartbeat (re)started after the time the watch waits for (0 s here): still settling
    fake.set(local="primary 2 " + SYSID,
             heartbeat_since=time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() + 60)))
    fake.remote(PG1, "stopped-primary 1 " + SYSID)
    fake.run("ha-watch", "--checks", "1")
    assert "hb_takeover" not in fake.log()


def test_watch_does_not_ask_for_the_resources_while_the_vip_is_here(fake):
    fake.set(local="primary 2 " + SYSID, vip_here="")
    fake.run("ha-watch", "--checks", "1")
    assert "hb_takeover" not in fake.log()


def test_watch_asks_for_the_resources_for_a_stopped_primary_once_the_cluster_answers(fake):
    # The whole cluster lost power and this master booted first: hapostgres refused, nobody answered.
    fake.set(local="down")
    fake.remote(PG1, "standby 1 " + SYSID)
    fake.unreachable(PG3)
    result = fake.run("ha-watch", "--checks", "1")
    assert "is a stopped primary on timeline 1 and no other host supersedes it" in result.stderr
    assert "hb_takeover all" in fake.log() and "systemctl start" not in fake.log()


@pytest.mark.parametrize("pg1, pg3", [
    (None, None),  # nobody answers: a standby may have been promoted meanwhile
    ("standby 2 " + SYSID, None),  # a newer timeline: this is a former primary
    ("primary 1 " + SYSID, "standby 1 " + SYSID),  # another host is the running primary
])
def test_watch_leaves_a_stopped_primary_alone(fake, pg1, pg3):
    fake.set(local="down")
    for address, line in ((PG1, pg1), (PG3, pg3)):
        if line:
            fake.remote(address, line)
        else:
            fake.unreachable(address)
    fake.run("ha-watch", "--checks", "1")
    assert "hb_takeover" not in fake.log() and "systemctl start" not in fake.log()


def test_watch_removes_a_leftover_vip_seen_twice(fake):
    fake.set(local="down", vip_here="")  # a fenced former primary, the VIP still on its interface
    fake.run("ha-watch", "--checks", "1")
    assert "addr del" not in fake.log()  # once is not enough: heartbeat may be moving it
    result = fake.run("ha-watch", "--checks", "2")
    assert "removing the leftover address" in result.stderr, result.stderr
    assert "ip -4 addr del 198.51.100.15/24 dev eth0" in fake.log()


def test_watch_keeps_the_vip_of_the_primary_holding_the_resources(fake):
    fake.set(local="primary 1 " + SYSID, vip_here="")
    fake.flag.parent.mkdir()
    fake.flag.write_text("")
    fake.run("ha-watch", "--checks", "3")
    assert "addr del" not in fake.log()


def test_watch_on_a_standby_keeps_the_witness_connection_open(fake):
    fake.run("ha-watch", "--checks", "1")
    assert f"-- {PG3} true" in fake.log()
    assert "systemctl" not in fake.log() and "hb_" not in fake.log()


# --- node_state, for real (no psql answer: from the files) -------------------------------------------


def node_state(fake, *setup):
    lib = fake.dir / "ha-lib"
    env = {"PATH": f"{fake.bin}:{os.environ['PATH']}", "T": str(fake.dir)}
    result = subprocess.run(["bash", "-c", f". {lib}; local_state"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_node_state_of_a_stopped_cluster_comes_from_pg_controldata(fake):
    fake.set(local="down", checkpoint_tli="3")
    assert node_state(fake) == f"stopped-primary 3 {SYSID}"
    (fake.data / "standby.signal").write_text("")
    assert node_state(fake) == f"stopped-standby 3 {SYSID}"
    fake.set(postmaster="")
    assert node_state(fake) == f"starting 3 {SYSID}"


def test_node_state_knows_the_newest_timeline_from_history_files(fake):
    fake.set(local="standby 1 " + SYSID)
    (fake.data / "pg_wal/00000002.history").write_text("")
    (fake.data / "pg_wal/0000000A.history").write_text("")
    assert node_state(fake) == f"standby 10 {SYSID}"


def test_node_state_without_a_cluster(fake):
    fake.set(local="down")
    (fake.data / "PG_VERSION").unlink()
    assert node_state(fake) == "absent 0 -"
