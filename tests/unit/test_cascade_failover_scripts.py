"""The cascade failover automation's scripts and unit, rendered from a topology and run against
stub commands (psql, ssh) on PATH, with the real hostrules package: when the monitor fails over,
and when not (the decision table itself: test_hostrules_cascade_health.py)."""
from __future__ import annotations

import getpass
import os
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from planner import settings
from planner.failover_cascade import without_cascade
from planner.model import Cluster, Node, Topology
from planner.render import render
from tests.conftest import ROOT

SYSID = "7300000000000000001"


def topology() -> Topology:
    return Topology(Cluster(), (
        Node("pg1", "master", "10.0.0.1", None, None, 0),
        Node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
        Node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
    ))


def monitor_vars() -> dict:
    """pg3's monitor script's variables (the registry adds the hostrules package's digest)."""
    return {**settings.cascade_monitor_vars(topology(), "pg3"), "hostrules_digest": "0123456789abcdef"}


def executable(path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


# Stub psql: answers from files in $STUB (one file per answer), records reloads. With -c (the
# switch script) it answers once; without (the monitor's kept-open sessions) it reads queries from
# stdin, answers each (a line ending in ';') and echoes \echo's word, like psql -At reading a pipe.
# Each start is a line in $STUB/starts-SERVER; $STUB/hang-SERVER: that server never answers.
PSQL = r"""#!/bin/bash
args="$*"
case $args in
    *host=10.0.0.1*) server=master ;;
    *host=10.0.0.2*) server=cascade ;;
    *) server=local ;;
esac
echo >>"$STUB/starts-$server"
answer() {  # answer QUERY
    case $server in
        master)  # the monitor asks the master
            [ -f "$STUB/master" ] || { echo "psql: error: connection to 10.0.0.1 failed: timeout" >&2; exit 2; }
            cat "$STUB/master" ;;
        cascade)  # ... and the cascade
            [ -f "$STUB/cascade" ] || exit 2
            cat "$STUB/cascade" ;;
        *)
            case $1 in
                *pg_control_system*) echo "SYSID|1" ;;
                *pg_reload_conf*) touch "$STUB/reloaded"; echo t ;;
                *pg_conf_load_time*) [ -f "$STUB/reloaded" ] && echo 9999999999 || echo 0 ;;
                *pg_is_in_recovery*) cat "$STUB/recovery" ;;
                *) echo "unexpected psql $args: $1" >&2; exit 3 ;;
            esac ;;
    esac
}
while [ $# -gt 0 ]; do
    if [ "$1" = -c ]; then answer "$2"; exit 0; fi
    shift
done
query=
while IFS= read -r line; do
    while [ -f "$STUB/hang-$server" ]; do sleep 0.05; done
    case $line in
        '\echo '*) echo "${line#\\echo }" ;;
        *';') answer "$query $line"; query= ;;
        *) query="$query $line" ;;
    esac
done
"""


@pytest.fixture()
def lab(tmp_path):
    """pg3's monitor and cascade-failed, rendered into tmp_path with stub commands."""
    bin_dir, stub = tmp_path / "bin", tmp_path / "stub"
    bin_dir.mkdir()
    stub.mkdir()
    executable(bin_dir / "psql", PSQL.replace("SYSID", SYSID))
    # ssh to the master: record the command line; run the master's part (here: succeed).
    executable(bin_dir / "ssh", textwrap.dedent("""\
        #!/bin/bash
        echo "$*" >>"$STUB/ssh"
        if [ -f "$STUB/ssh_fails" ]; then rm "$STUB/ssh_fails"; echo "ssh: timeout" >&2; exit 255; fi
        echo "switched on the master" >&2
        """))
    include, variants = tmp_path / "pgcascade.conf", tmp_path / "variants"
    (variants / "pg2").mkdir(parents=True)
    include.write_text(render("pgcascade.conf.j2", settings.render_vars_pgconf(topology(), "pg3")))
    (variants / "pg2/pgcascade.conf").write_text(
        render("pgcascade.conf.j2", settings.render_vars_pgconf(without_cascade(topology(), "pg2"), "pg3",
                                                                variant_without="pg2")))
    switch = tmp_path / "cascade-failed"
    executable(switch, render("cascade-failed.sh.j2", {
        **settings.cascade_failed_vars(topology(), "pg3"), "run_as_user": getpass.getuser(),
        "variants_directory": str(variants), "include_file": str(include), "pg_bin_directory": str(bin_dir),
        "reload_timeout": 2}))
    monitor = tmp_path / "cascade-monitor"
    executable(monitor, render("cascade-monitor.sh.j2", {
        **monitor_vars(), "pg_bin_directory": str(bin_dir),
        "include_file": str(include), "variant_file": str(variants / "pg2/pgcascade.conf"),
        "switch_path": str(switch), "hostrules_directory": str(ROOT)}))

    class Lab:
        def __init__(self):
            self.stub, self.include, self.variant = stub, include, variants / "pg2/pgcascade.conf"
            self.original = include.read_text()
            (stub / "recovery").write_text("t\n")

        def set(self, name: str, value: str | None = "") -> None:
            path = stub / name
            if value is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(value + "\n")

        def run(self, script, *args, rounds=None, fail_over_after=0.35, start_grace=0):
            argv = [str(script), *args] + (["--rounds", str(rounds), "--interval", "0.1",
                                            "--fail-over-after", str(fail_over_after),
                                            "--start-grace", str(start_grace)]
                                           if rounds else [])
            env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB": str(stub)}
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

        def monitor(self, rounds=4, fail_over_after=0.35, start_grace=0):
            return self.run(monitor, rounds=rounds, fail_over_after=fail_over_after, start_grace=start_grace)

        def switch(self, *args):
            return self.run(switch, *args)

        @property
        def switched(self) -> bool:
            return self.include.read_text() == self.variant.read_text()

        @property
        def ssh_calls(self) -> list[str]:
            path = stub / "ssh"
            return path.read_text().splitlines() if path.exists() else []

    return Lab()


# The master's answer: in_recovery|sysid|timeline|lsn|cascade row|its flush lsn|its last reply
MASTER_PRIMARY = f"f|{SYSID}|1|1000|f||"


def streaming(reply: str = "1.0", flush: int = 1000) -> str:
    return f"f|{SYSID}|1|1000|t|{flush}|{reply}"


def test_a_cascade_that_takes_wal_is_left_alone(lab, tmp_path):
    lab.set("cascade", "t")
    # a new reply every round: the stub's answer changes with a counter file
    counter = tmp_path / "n"
    counter.write_text("0")
    master = lab.stub / "master"
    (lab.stub.parent / "bin" / "psql").write_text((lab.stub.parent / "bin" / "psql").read_text().replace(
        'cat "$STUB/master" ;;',
        f'n=$(($(cat {counter}) + 1)); echo $n >{counter}; echo "f|{SYSID}|1|1000|t|1000|$n" ;;'))
    master.write_text("x\n")
    result = lab.monitor(rounds=8, fail_over_after=60)  # (rounds slower than a short grace under load)
    assert result.returncode == 0, result.stderr
    assert not lab.switched and lab.ssh_calls == []
    assert "watching the cascading standby pg2 (10.0.0.2)" in result.stdout
    assert "failing over" not in result.stdout


def test_once_wal_flowed_the_start_grace_is_over(lab, tmp_path):
    """A monitor started with its own host (the cascade streaming at once) fails over once WAL
    stops flowing, not only START_GRACE after its start (that grace is for a cold boot)."""
    lab.set("cascade", None)
    counter = tmp_path / "n"
    counter.write_text("0")
    psql = lab.stub.parent / "bin" / "psql"
    psql.write_text(psql.read_text().replace(
        'cat "$STUB/master" ;;',
        f'n=$(($(cat {counter}) + 1)); echo $n >{counter}; '
        f'if [ $n -le 2 ]; then echo "f|{SYSID}|1|1000|t|1000|$n"; else echo "{MASTER_PRIMARY}"; fi ;;'))
    lab.set("master", "x")
    result = lab.monitor(rounds=14, start_grace=600)
    assert result.returncode == 0, result.stderr
    assert "pg2 has not streamed from pg1" in result.stdout and "failing over (cascade-disconnected)" in result.stdout
    assert lab.switched


def test_before_wal_flowed_the_start_grace_holds(lab):
    lab.set("master", MASTER_PRIMARY)
    result = lab.monitor(rounds=8, start_grace=600)
    assert result.returncode == 0, result.stderr
    assert "is not streaming from pg1 yet; the monitor started" in result.stdout
    assert not lab.switched and lab.ssh_calls == []


@pytest.mark.parametrize("master, cascade, what", [
    (MASTER_PRIMARY, None, "pg2 has not streamed from pg1"),  # PostgreSQL dead, host alive
    (MASTER_PRIMARY, "t", "pg2 has not streamed from pg1"),  # answers, but does not stream
    (streaming(), None, "pg2 is connected to pg1 but took no WAL"),  # hung: the row stays, nothing moves
])
def test_a_cascade_that_takes_no_wal_is_failed_over_here_then_on_the_master(lab, master, cascade, what):
    lab.set("master", master)
    lab.set("cascade", cascade)
    # (36 rounds of 0.1 s: a row that stays is WAL that stopped only after STALL_AFTER, 2.5 s)
    result = lab.monitor(rounds=36)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert lab.switched
    assert (lab.stub / "reloaded").exists()
    [call] = lab.ssh_calls  # the same script on the master (its path here is the test's)
    assert call.startswith(
        "-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/postgresql/.ssh/known_hosts "
        "-o ConnectTimeout=10 -l postgres -- 10.0.0.1 /")
    assert call.endswith("/cascade-failed pg2")
    assert what in out and "and the master is a running primary of this cluster: failing over" in out
    assert ": cascade-failed: installed the configuration without pg2:" in out
    assert "primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator application_name=standby_2" in out
    assert "pg1: switched on the master" in out
    assert out.count("failed over from pg2") == 1  # then it waits: nothing more happens


@pytest.mark.parametrize("master, cascade, words", [
    (None, None, "the master pg1 does not answer: psql: error: connection"),
    (f"t|{SYSID}|0||f||", None, "the master pg1 is in recovery: it is no longer the primary"),
    ("f|7399999999999999999|1|1000|f||", None, "the master pg1 holds another cluster"),
    (f"f|{SYSID}|0|1000|f||", None, "the master pg1 is on timeline 0, older than this host's (1)"),
    (MASTER_PRIMARY, "f", "pg2 was promoted: this is a failover of the master"),
])
def test_it_never_re_points_to_a_master_that_is_not_the_primary(lab, master, cascade, words):
    lab.set("master", master)
    lab.set("cascade", cascade)
    result = lab.monitor(rounds=8)
    assert result.returncode == 0, result.stderr
    assert not lab.switched and lab.ssh_calls == []
    assert words in result.stdout
    assert result.stdout.count(words) == 1  # said once, not every second


def test_once_switched_by_hand_it_only_makes_sure_the_master_is_switched(lab):
    lab.include.write_text(lab.variant.read_text())  # tasks/failover_cascade.py did it
    result = lab.monitor(rounds=3)
    assert lab.ssh_calls and len(lab.ssh_calls) == 1
    assert "answers neither" not in result.stdout


def test_a_deploy_restoring_the_tree_makes_it_watch_again(lab):
    lab.set("master", streaming())
    lab.set("cascade", "t")
    lab.include.write_text(lab.variant.read_text())
    assert lab.monitor(rounds=1).returncode == 0
    lab.include.write_text(lab.original)  # (a healthy cascade: no failover within the rounds)
    assert not lab.switched and lab.monitor(rounds=2, fail_over_after=60).returncode == 0 and not lab.switched


def test_cascade_failed_installs_the_variant_once_and_reloads(lab):
    first = lab.switch("pg2")
    assert first.returncode == 0, first.stderr
    assert lab.switched and "reloaded: PostgreSQL runs with the configuration without pg2" in first.stderr
    second = lab.switch("pg2")
    assert second.returncode == 0
    assert "already in place" in second.stderr and "already runs with it" in second.stderr


@pytest.mark.parametrize("args, recovery, words", [
    (["pg2"], "f", "refusing: this server is not a standby"),
    (["pg9"], "t", "no prepared configuration for a failure of pg9"),
    (["../x"], "t", "usage: cascade-failed CASCADE"),
    ([], "t", "usage"),
])
def test_cascade_failed_refuses(lab, args, recovery, words):
    lab.set("recovery", recovery)
    result = lab.switch(*args)
    assert result.returncode == 1 and words in result.stderr
    assert not lab.switched and not (lab.stub / "reloaded").exists()


def test_the_master_expects_to_be_the_primary():
    variables = settings.cascade_failed_vars(topology(), "pg1")
    assert (variables["expect_recovery"], variables["expected_role"]) == ("f", "the primary")
    assert settings.cascade_failed_vars(topology(), "pg3")["expect_recovery"] == "t"


def test_the_unit_runs_the_monitor_as_postgres_and_restarts_it():
    unit = render("cascade-monitor.service.j2", settings.cascade_monitor_unit_vars(topology(), "pg3"))
    for line in ("User=postgres", "ExecStart=/usr/local/lib/pgcascade/cascade-monitor", "Restart=always",
                 "CapabilityBoundingSet=", "After=network-online.target postgresql@15-main.service",
                 "WantedBy=multi-user.target"):
        assert line in unit.splitlines()


def test_the_monitor_reaches_the_master_with_the_passfile_not_a_password():
    text = render("cascade-monitor.sh.j2", monitor_vars())
    assert ("MASTER_CONNINFO='host=10.0.0.1 port=5432 user=replicator dbname=postgres "
            "passfile=/var/lib/postgresql/.pgpass connect_timeout=5 "
            "application_name=pgcascade-cascade-monitor'") in text
    assert "password=" not in text
    assert "StrictHostKeyChecking=yes" in text and "StrictHostKeyChecking=no" not in text


def test_only_a_standby_of_a_cascade_gets_a_monitor():
    with pytest.raises(ValueError, match="standby of a cascading standby"):
        settings.cascade_monitor_vars(topology(), "pg2")


@pytest.mark.parametrize("name", ["cascade-failed.sh.j2", "cascade-monitor.sh.j2"])
def test_scripts_pass_bash_n(tmp_path, name):
    variables = (settings.cascade_failed_vars(topology(), "pg3") if name == "cascade-failed.sh.j2"
                 else monitor_vars())
    path = tmp_path / name
    path.write_text(render(name, variables))
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_failed_ssh_to_the_master_is_retried(lab):
    lab.set("master", MASTER_PRIMARY)
    lab.set("ssh_fails")
    result = lab.monitor(rounds=10)
    assert lab.switched and len(lab.ssh_calls) == 2
    assert "pg1: ssh: timeout" in result.stdout
    assert "could not switch the master pg1 over ssh: retrying" in result.stdout
    assert result.stdout.count("failed over from pg2") == 1


def test_a_planned_restart_of_the_cascade_holds_the_monitor(lab, tmp_path):
    """The deploy writes until when the cascade's restart is planned: a cascade that does not stream
    meanwhile is not failed over; once the hold file is gone, it is."""
    hold = Path(settings.cascade_monitor_vars(topology(), "pg3")["hold_path"].strip("'"))
    assert hold.parent.as_posix() == "/run/pgcascade"
    monitor = tmp_path / "cascade-monitor"
    local_hold = tmp_path / "hold"
    monitor.write_text(monitor.read_text().replace(f"HOLD={hold}", f"HOLD={local_hold}"))
    local_hold.write_text(f"{int(time.time()) + 120}\n")
    lab.set("master", MASTER_PRIMARY)
    lab.set("cascade", None)
    result = lab.monitor(rounds=14)
    assert result.returncode == 0, result.stderr
    assert "a restart of pg2 is planned" in result.stdout and not lab.switched and lab.ssh_calls == []
    local_hold.unlink()
    result = lab.monitor(rounds=14)
    assert "failing over (cascade-disconnected)" in result.stdout and lab.switched


# ---- the kept-open sessions: one psql per server while it answers; a hung one bounded ----------

def starts(lab, server: str) -> int:
    path = lab.stub / f"starts-{server}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_one_psql_per_server_answers_every_round(lab, tmp_path):
    lab.set("cascade", "t")
    counter = tmp_path / "n"
    counter.write_text("0")
    psql = lab.stub.parent / "bin" / "psql"
    psql.write_text(psql.read_text().replace(
        'cat "$STUB/master" ;;',
        f'n=$(($(cat {counter}) + 1)); echo $n >{counter}; echo "f|{SYSID}|1|1000|t|1000|$n" ;;'))
    lab.set("master", "x")
    result = lab.monitor(rounds=10, fail_over_after=60)
    assert result.returncode == 0, result.stderr
    assert counter.read_text().strip() == "10"  # the master was asked every round...
    assert (starts(lab, "local"), starts(lab, "master"), starts(lab, "cascade")) == (1, 1, 1)  # ...by one psql
    assert "failing over" not in result.stdout


@pytest.mark.parametrize("server, fail_over_after, words", [
    ("cascade", 60, None),
    ("master", 0.35, "pg2 takes no WAL, but not failing over: the master pg1 does not answer: no answer within 0.8 s"),
])
def test_a_hung_server_does_not_stretch_a_round_beyond_the_probe_timeout(lab, server, fail_over_after, words):
    """A server that accepts the query and never answers (a hung host): each round gives it up
    at the probe timeout (0.8 s), asks again with a new psql the next round, and goes on judging."""
    lab.set("master", streaming())
    lab.set("cascade", "t")
    lab.set(f"hang-{server}")
    started = time.monotonic()
    result = lab.monitor(rounds=4, fail_over_after=fail_over_after)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 4 * 0.8 + 2.5, f"4 rounds took {elapsed:.1f} s"  # (+ python3's start, the stubs)
    assert starts(lab, server) == 4  # each hung psql ended at its deadline
    assert starts(lab, "local") == 1
    if words:
        assert result.stdout.count(words) == 1


def test_a_blind_view_of_the_master_is_no_failover(lab):
    """The replication role lost pg_read_all_stats: the cascade's row reads with NULL positions."""
    lab.set("master", f"f|{SYSID}|1|1000|t|||f")
    lab.set("cascade", "t")
    result = lab.monitor(rounds=14)
    assert result.returncode == 0, result.stderr
    assert "cannot read the positions in pg1's pg_stat_replication" in result.stdout
    assert not lab.switched and lab.ssh_calls == []
