"""The cascade failover automation's scripts and unit, rendered from a topology and run against
stub commands (psql, pg_isready, ping, ssh) on PATH: when the monitor fails over, and when not."""
from __future__ import annotations

import getpass
import os
import stat
import subprocess
import textwrap

import pytest

from planner import settings
from planner.failover_cascade import without_cascade
from planner.model import Cluster, Node, Topology
from planner.render import render

SYSID = "7300000000000000001"


def topology() -> Topology:
    return Topology(Cluster(), (
        Node("pg1", "master", "10.0.0.1", None, None, 0),
        Node("pg2", "cascade", "10.0.0.2", "pg1", "standby_1", 1),
        Node("pg3", "downstream", "10.0.0.3", "pg2", "standby_2", 2),
    ))


def executable(path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


# Stub psql: answers from files in $STUB (one file per answer), records reloads.
PSQL = r"""#!/bin/bash
args="$*"
case $args in
    *host=10.0.0.1*)  # the monitor asks the master
        [ -f "$STUB/master" ] || { echo "psql: error: connection to 10.0.0.1 failed: timeout" >&2; exit 2; }
        cat "$STUB/master" ;;
    *last_msg_receipt_time*) cat "$STUB/heard" 2>/dev/null || echo 0 ;;
    *pg_control_system*) echo "SYSID|1" ;;
    *pg_reload_conf*) touch "$STUB/reloaded"; echo t ;;
    *pg_conf_load_time*) [ -f "$STUB/reloaded" ] && echo 9999999999 || echo 0 ;;
    *pg_is_in_recovery*) cat "$STUB/recovery" ;;
    *) echo "unexpected psql $args" >&2; exit 3 ;;
esac
"""


@pytest.fixture()
def lab(tmp_path):
    """pg3's monitor and cascade-failed, rendered into tmp_path with stub commands."""
    bin_dir, stub = tmp_path / "bin", tmp_path / "stub"
    bin_dir.mkdir()
    stub.mkdir()
    executable(bin_dir / "psql", PSQL.replace("SYSID", SYSID))
    executable(bin_dir / "pg_isready", '#!/bin/bash\n[ -f "$STUB/cascade_postgres_up" ]  && exit 0; exit 2\n')
    executable(bin_dir / "ping", '#!/bin/bash\n[ -f "$STUB/cascade_host_up" ]\n')
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
        **settings.cascade_monitor_vars(topology(), "pg3"), "pg_bin_directory": str(bin_dir),
        "include_file": str(include), "variant_file": str(variants / "pg2/pgcascade.conf"),
        "switch_path": str(switch)}))

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

        def run(self, script, *args, rounds=None):
            argv = [str(script), *args] + (["--rounds", str(rounds), "--interval", "0"] if rounds else [])
            env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB": str(stub)}
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

        def monitor(self, rounds=4):
            return self.run(monitor, rounds=rounds)

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


MASTER_PRIMARY = f"f|{SYSID}|1"


def test_a_cascade_that_answers_is_left_alone(lab):
    lab.set("cascade_host_up")
    lab.set("cascade_postgres_up")
    lab.set("master", MASTER_PRIMARY)
    result = lab.monitor()
    assert result.returncode == 0, result.stderr
    assert not lab.switched and lab.ssh_calls == []
    assert "watching the cascading standby pg2 (10.0.0.2)" in result.stdout


def test_a_cascade_whose_host_answers_ping_is_not_down(lab):
    lab.set("cascade_host_up")  # its PostgreSQL restarts, say
    lab.set("master", MASTER_PRIMARY)
    assert not lab.switched and lab.monitor().returncode == 0 and not lab.switched


def test_a_dead_cascade_with_a_primary_master_fails_over_here_then_on_the_master(lab):
    lab.set("master", MASTER_PRIMARY)
    result = lab.monitor(rounds=5)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert lab.switched
    assert (lab.stub / "reloaded").exists()
    [call] = lab.ssh_calls  # the same script on the master (its path here is the test's)
    assert call.startswith(
        "-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/postgresql/.ssh/known_hosts "
        "-o ConnectTimeout=10 -l postgres -- 10.0.0.1 /")
    assert call.endswith("/cascade-failed pg2")
    assert "answers neither ping nor pg_isready (1/3)" in out and "(2/3)" in out
    assert "pg2 is down (3 probes without an answer) and the master pg1 is a running primary" in out
    assert ": cascade-failed: installed the configuration without pg2:" in out
    assert "primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator application_name=standby_2" in out
    assert "pg1: switched on the master" in out
    assert out.count("failed over from pg2") == 1  # then it waits: nothing more happens


@pytest.mark.parametrize("master, words", [
    (None, "the master pg1 (10.0.0.1) does not answer: psql: error: connection"),
    (f"t|{SYSID}|0", "the master pg1 is in recovery: it is no longer the primary"),
    ("f|7399999999999999999|1", "the master pg1 holds another cluster"),
    (f"f|{SYSID}|0", "the master pg1 is on timeline 0, older than this host's (1)"),
])
def test_it_never_re_points_to_a_master_that_is_not_the_primary(lab, master, words):
    lab.set("master", master)
    result = lab.monitor(rounds=6)
    assert result.returncode == 0, result.stderr
    assert not lab.switched and lab.ssh_calls == []
    assert f"pg2 is down, but not failing over: {words}" in result.stdout
    assert result.stdout.count("not failing over") == 1  # said once, not every second


def test_wal_still_arriving_from_the_cascade_means_it_is_alive(lab):
    lab.set("master", MASTER_PRIMARY)
    lab.set("heard", "99999999999")
    result = lab.monitor(rounds=3)
    assert not lab.switched
    assert "WAL still arrives from it: not failing over" in result.stdout


def test_once_switched_by_hand_it_only_makes_sure_the_master_is_switched(lab):
    lab.include.write_text(lab.variant.read_text())  # tasks/failover_cascade.py did it
    result = lab.monitor(rounds=3)
    assert lab.ssh_calls and len(lab.ssh_calls) == 1
    assert "answers neither" not in result.stdout


def test_a_deploy_restoring_the_tree_makes_it_watch_again(lab):
    lab.set("master", MASTER_PRIMARY)
    lab.set("cascade_host_up")
    lab.include.write_text(lab.variant.read_text())
    assert lab.monitor(rounds=1).returncode == 0
    lab.include.write_text(lab.original)
    assert not lab.switched and lab.monitor(rounds=2).returncode == 0 and not lab.switched


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
                 "AmbientCapabilities=CAP_NET_RAW", "After=network-online.target postgresql@15-main.service",
                 "WantedBy=multi-user.target"):
        assert line in unit.splitlines()


def test_the_monitor_reaches_the_master_with_the_passfile_not_a_password():
    text = render("cascade-monitor.sh.j2", settings.cascade_monitor_vars(topology(), "pg3"))
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
                 else settings.cascade_monitor_vars(topology(), "pg3"))
    path = tmp_path / name
    path.write_text(render(name, variables))
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_failed_ssh_to_the_master_is_retried(lab):
    lab.set("master", MASTER_PRIMARY)
    lab.set("ssh_fails")
    result = lab.monitor(rounds=6)
    assert lab.switched and len(lab.ssh_calls) == 2
    assert "pg1: ssh: timeout" in result.stdout
    assert "could not switch the master pg1 over ssh: retrying" in result.stdout
    assert result.stdout.count("failed over from pg2") == 1
