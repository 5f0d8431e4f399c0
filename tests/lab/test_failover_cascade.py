"""The cascading standby fails, on lab hosts: the cascade monitor repairs by
itself, or tasks/failover_cascade.py by hand when the automation is off; it never re-points the
downstream to a master that is not the primary; a deploy restores the tree. Lab `fc`."""
from __future__ import annotations

import textwrap
import time

import pytest

from tests.conftest import ROOT, Lab, deployed_lab, wait_until
from tests.lab.pyinfra_output import changes, started_any_operation

pytestmark = pytest.mark.lab

INVENTORY = "inventories/lab.py"
TASK = "tasks/failover_cascade.py"
ARCHIVE = "/var/lib/postgresql/wal_archive"
MONITOR = "pgcascade-cascade-monitor"
REPAIR_DEADLINE = 30  # seconds from the crash: the bench measures it (target 10 s)
REPLICATION_ROWS = "select application_name, sync_state from pg_stat_replication order by 1"


@pytest.fixture(scope="module")
def cluster():
    with deployed_lab("fc") as lab:
        lab.psql("pg1", "create table t_fc(id serial primary key, at timestamptz default now())")
        yield lab


@pytest.fixture(scope="module")
def no_automation(tmp_path_factory) -> str:
    """The lab's inventory with pg_cascade_monitor = False on every host."""
    path = tmp_path_factory.mktemp("inventory") / "inventory.py"
    path.write_text(textwrap.dedent(f"""\
        import runpy
        _lab = runpy.run_path({str(ROOT / INVENTORY)!r})
        _off = {{"pg_cascade_monitor": False}}
        master = [(n, {{**d, **_off}}) for n, d in _lab["master"]]
        cascade = [(n, {{**d, **_off}}) for n, d in _lab["cascade"]]
        downstream = [(n, {{**d, **_off}}) for n, d in _lab["downstream"]]
        """))
    return str(path)


def run(lab: Lab, *args: str, ok: bool = True) -> str:
    proc = lab.pyinfra(*args)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, output[-4000:]
    return output


def deploy(lab: Lab, inventory: str = INVENTORY) -> set:
    return changes(run(lab, "-y", inventory, "deploy.py"))


def streaming_from(lab: Lab, host: str) -> str:
    return lab.psql(host, "select sender_host from pg_stat_wal_receiver where status = 'streaming'")


def sync_commit_returns(lab: Lab) -> bool:
    """An insert on the master commits, acknowledged by a synchronous standby within 3 s.

    statement_timeout does not cover the wait for the standby (it ends before the commit), so
    psql gets SIGINT after 3 s: it cancels the wait (the row stays, committed locally, with a
    WARNING) and timeout exits 124. Either is no success.
    """
    proc = lab.ssh("pg1", "cd / && runuser -u postgres -- timeout -s INT 3 psql -XAtq -v ON_ERROR_STOP=1 "
                          "-c 'insert into t_fc default values'")
    return proc.returncode == 0 and "synchronous replication" not in proc.stderr


def new_wal_reaches(lab: Lab, host: str) -> None:
    segment = lab.psql("pg1", "select pg_walfile_name(pg_current_wal_lsn())")
    lab.psql("pg1", "insert into t_fc default values; select pg_switch_wal()")
    wait_until(lambda: lab.ssh(host, f"test -f {ARCHIVE}/{segment}").returncode == 0, 60,
               f"{segment} in {host}'s archive")


def include_points_at(lab: Lab, host: str) -> str:
    return lab.ssh(host, "grep -o 'primary_conninfo = .host=[0-9.]*' /etc/postgresql/15/main/conf.d/pgcascade.conf"
                   ).stdout.strip().rsplit("=", 1)[-1]


def monitor_log(lab: Lab, after: int = 0) -> str:
    """pg3's monitor journal, from line `after` on (see log_mark)."""
    lines = lab.ssh("pg3", f"journalctl -u {MONITOR} --no-pager -o cat").stdout.splitlines()
    return "\n".join(lines[after:])


def log_mark(lab: Lab) -> int:
    return len(monitor_log(lab).splitlines())


def wait_for_log(lab: Lab, mark: int, wanted, what: str, timeout: float = 60) -> None:
    """A line of the monitor's journal after `mark` for which wanted(line) holds; the journal in
    the failure."""
    try:
        wait_until(lambda: any(wanted(line) for line in monitor_log(lab, mark).splitlines()), timeout, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\npg3's monitor said:\n{monitor_log(lab, mark)[-3000:]}") from None


def assert_original_tree(lab: Lab) -> None:
    wait_until(lambda: streaming_from(lab, "pg3") == lab.ip("pg2"), 60, "pg3 streaming from pg2")
    wait_until(lambda: streaming_from(lab, "pg2") == lab.ip("pg1"), 60, "pg2 streaming from pg1")
    wait_until(lambda: lab.psql("pg1", REPLICATION_ROWS) == "standby_1|sync", 60, "standby_1 synchronous on pg1")
    assert sync_commit_returns(lab)


def restore(lab: Lab, inventory: str = INVENTORY) -> None:
    """The cascade back (boot on the same disk) and streaming from the master, then the deploy:
    the original tree. (A deploy keeps a cascade failover while the cascade has not caught up:
    planner.held_failover; test_cascade_failures covers that case.)"""
    lab.cli("restart", "pg2")
    wait_until(lambda: lab.ssh("pg2", "pg_isready -q").returncode == 0, 60, "PostgreSQL up on pg2")
    wait_until(lambda: lab.psql("pg1", "select count(*) from pg_stat_replication where application_name = "
                                       "'standby_1' and state = 'streaming'") == "1", 60, "pg2 streaming from pg1")
    deploy(lab, inventory)
    assert_original_tree(lab)


def stays(check, seconds: float, what: str) -> None:
    """check() holds for the whole window (watching that something does NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.5)


# ---- with the automation (the default) ----------------------------------------------------------

def test_the_deploy_prepares_the_automation_and_a_rerun_changes_nothing(cluster):
    assert cluster.ssh("pg3", f"systemctl is-active {MONITOR}").stdout.strip() == "active"
    for host in ("pg1", "pg3"):
        assert cluster.ssh(host, "test -f /etc/pgcascade/cascade-failed/pg2/pgcascade.conf").returncode == 0
    assert cluster.ssh("pg2", "test -e /etc/pgcascade/cascade-failed").returncode != 0
    assert cluster.ssh("pg1", f"systemctl cat {MONITOR}").returncode != 0
    assert deploy(cluster) == set()


def test_the_task_refuses_while_the_cascade_is_healthy(cluster):
    output = run(cluster, "-y", INVENTORY, TASK, ok=False)
    assert "the cascade is healthy" in output and "--data force=true" in output
    assert not started_any_operation(output)
    assert streaming_from(cluster, "pg3") == cluster.ip("pg2")


def test_the_monitor_repairs_a_crashed_cascade(cluster):
    cluster.cli("crash", "pg2")
    wait_until(lambda: sync_commit_returns(cluster), REPAIR_DEADLINE, "a synchronous commit on pg1")
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg1"), REPAIR_DEADLINE, "pg3 streaming from pg1")
    assert cluster.psql("pg1", REPLICATION_ROWS) == "standby_2|sync"
    new_wal_reaches(cluster, "pg3")
    # Its last line comes after the synchronous-set record is written, which waits on the dead pg2.
    wait_until(lambda: "failed over from pg2" in monitor_log(cluster), 30, "the monitor's last line")
    log = monitor_log(cluster)
    # No WAL flowed to pg2 for 4 s (a crash leaves pg1's WAL sender waiting on the dead peer:
    # "stalled"; a closed connection: "disconnected"), and pg2 does not answer.
    assert "(its PostgreSQL does not answer), and the master is a running primary of this cluster: " \
           "failing over (cascade-" in log, log


def test_a_deploy_restores_the_tree_once_the_cascade_is_back(cluster):
    restore(cluster)
    assert include_points_at(cluster, "pg3") == cluster.ip("pg2")
    wait_until(lambda: "watching" in monitor_log(cluster).splitlines()[-1], 30, "the monitor watching pg2 again")


def test_no_failover_to_a_master_whose_postgresql_is_down(cluster):
    mark = log_mark(cluster)
    # ha-watch restarts a primary whose PostgreSQL stopped (or hands its resources over): stopped
    # first, so that the master stays down for as long as this test needs.
    cluster.ssh("pg1", "systemctl stop pgcascade-ha-watch postgresql@15-main")
    try:
        cluster.cli("crash", "pg2")
        wait_for_log(cluster, mark, lambda line: "pg2 takes no WAL, but not failing over: the master pg1 does not "
                     "answer" in line, "the monitor saying why it waits")
        stays(lambda: include_points_at(cluster, "pg3") == cluster.ip("pg2"), 5, "pg3 was re-pointed")
    finally:
        cluster.ssh("pg1", "systemctl start postgresql@15-main pgcascade-ha-watch")
    # The master back as the primary: now the monitor repairs.
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg1"), REPAIR_DEADLINE, "pg3 streaming from pg1")
    wait_until(lambda: sync_commit_returns(cluster), REPAIR_DEADLINE, "a synchronous commit on pg1")
    restore(cluster)


def test_no_failover_to_a_master_the_downstream_cannot_reach(cluster):
    blackhole = f"ip route add prohibit {cluster.ip('pg1')}/32"
    mark = log_mark(cluster)
    assert cluster.ssh("pg3", blackhole).returncode == 0
    try:
        cluster.cli("crash", "pg2")
        # psql's own words: connection to server at "ADDRESS", port 5432 failed: ...
        wait_for_log(cluster, mark, lambda line: "pg2 takes no WAL, but not failing over: the master pg1 does not "
                     f"answer: psql: error: connection to server at \"{cluster.ip('pg1')}\"" in line,
                     "the monitor saying why it waits")
        stays(lambda: include_points_at(cluster, "pg3") == cluster.ip("pg2"), 5, "pg3 was re-pointed")
    finally:
        cluster.ssh("pg3", blackhole.replace(" add ", " del "))
    wait_until(lambda: streaming_from(cluster, "pg3") == cluster.ip("pg1"), REPAIR_DEADLINE, "pg3 streaming from pg1")
    restore(cluster)


# ---- without the automation: by hand -----------------------------------------------------------

def test_pg_cascade_monitor_false_removes_the_automation(cluster, no_automation):
    deploy(cluster, no_automation)
    assert cluster.ssh("pg3", f"systemctl is-active {MONITOR}").stdout.strip() != "active"
    assert cluster.ssh("pg3", "test -e /usr/local/lib/pgcascade/cascade-monitor").returncode != 0
    assert cluster.ssh("pg1", "test -e /etc/pgcascade/cascade-failed").returncode != 0


def test_without_the_automation_nothing_happens_by_itself(cluster):
    cluster.cli("crash", "pg2")
    stays(lambda: include_points_at(cluster, "pg3") == cluster.ip("pg2"), 10, "pg3 re-pointed by itself")
    assert not sync_commit_returns(cluster)  # the master blocks: its synchronous standby is gone


def test_the_task_previews_with_dry_and_changes_nothing(cluster, no_automation):
    output = run(cluster, "--dry", no_automation, TASK, "--exclude", "pg2")
    assert "failover_cascade: act: pg2 is unreachable" in output
    assert "pg1: synchronous_standby_names 'FIRST 1 (\"standby_1\")' -> 'FIRST 1 (\"standby_2\")'" in output
    assert f"pg3: primary_conninfo is host={cluster.ip('pg2')}" in output
    master_step = next(line for line in output.splitlines() if "master: include file without pg2" in line)
    assert "1 (pg1)" in master_step
    assert include_points_at(cluster, "pg3") == cluster.ip("pg2")


def test_the_task_repairs_by_hand(cluster, no_automation):
    output = run(cluster, "-y", no_automation, TASK, "--exclude", "pg2")
    waited = ("Cascade failover | re-pointed standbys stream from pg1", "pg3")  # or it streamed already
    assert changes(output) - {waited} == {
        ("Cascade failover | standbys: include file without pg2", "pg3"),
        ("Cascade failover | standbys: PostgreSQL reloads it", "pg3"),
        ("Cascade failover | master: include file without pg2", "pg1"),
        ("Cascade failover | master: PostgreSQL reloads it", "pg1"),
    }
    assert sync_commit_returns(cluster)
    assert streaming_from(cluster, "pg3") == cluster.ip("pg1")
    assert cluster.psql("pg1", REPLICATION_ROWS) == "standby_2|sync"
    new_wal_reaches(cluster, "pg3")


def test_a_second_run_of_the_task_changes_nothing(cluster, no_automation):
    output = run(cluster, "-y", no_automation, TASK, "--exclude", "pg2")
    assert changes(output) == set()
    assert "nothing: already failed over from pg2" in output


def test_a_deploy_restores_the_tree_without_the_automation(cluster, no_automation):
    restore(cluster, no_automation)
