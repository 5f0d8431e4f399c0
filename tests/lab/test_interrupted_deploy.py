"""A first deploy killed part-way (the controller dies: its ssh sessions drop, and what runs on
the hosts runs on), then run again on the same hosts: the rerun finishes the cluster. Killed
once the configuration is everywhere (before any clone), and in the middle of a clone. Also a
standby's cluster dropped, as the deploy's refusals advise: a rerun makes it again and clones."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

from lab.client import PYINFRA
from tests.conftest import ROOT, Lab

pytestmark = pytest.mark.lab

DEPLOY = ("-y", "inventories/lab.py", "deploy.py")
MASTER_STEP = "--> Starting operation: Master |"
DEADLINE = 600  # s, for one deploy (a first one takes about a minute)


@pytest.fixture
def bare():
    lab = Lab("intr", 3)
    try:
        yield lab
    finally:
        lab.down()


def deploy_killed(lab: Lab, at: str, before_kill=lambda: None, on_line: dict | None = None) -> str:
    """Run the deploy; once a line starts with `at`, run before_kill, then SIGKILL pyinfra
    (on_line: {start of a line: what to do when it comes} before that). What it printed; fails
    if the line never came."""
    hooks = dict(on_line or {})
    proc = subprocess.Popen([PYINFRA, *DEPLOY], cwd=ROOT, env=lab.env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(DEADLINE, proc.kill)
    watchdog.start()
    printed, killed = [], False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            printed.append(line)
            for start in [start for start in hooks if line.strip().startswith(start)]:
                hooks.pop(start)()
            if line.strip().startswith(at):
                before_kill()
                proc.kill()
                killed = True
                break
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait(timeout=30)
    output = "".join(printed)
    assert killed, f"the deploy never printed {at!r}:\n{output[-4000:]}"
    return output


def rerun(lab: Lab) -> str:
    proc = lab.pyinfra(*DEPLOY, timeout=DEADLINE)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    lab.wait_healthy(timeout=120)
    return output


def test_killed_before_any_clone_the_standbys_never_used_clusters_stay_untouched_and_a_rerun_finishes(bare):
    deploy_killed(bare, MASTER_STEP)
    for standby in ("pg2", "pg3"):
        # Left alone by the configuration step: the cluster's archive_command never ran there,
        # so the rerun still knows it for a never-used cluster.
        assert bare.psql(standby, "select current_setting('archive_mode'), archived_count, failed_count "
                                  "from pg_stat_archiver") == "off|0|0"
    output = rerun(bare)
    assert "holds a never-used cluster 15/main" in output


def test_killed_in_the_middle_of_a_clone_a_rerun_clones_again_and_a_dropped_cluster_comes_back(bare):
    data = "/var/lib/postgresql/15/main"

    def slow_link():  # the cascade's base backup then lasts long enough to be cut
        bare.cli("shape", "pg2", "8mbit")

    def copy_started():
        deadline = time.monotonic() + 120
        while bare.ssh("pg2", f"test -f {data}/backup_label").returncode != 0:
            assert time.monotonic() < deadline, "pg2's clone never started copying"
            time.sleep(0.2)

    deploy_killed(bare, "[pg2] clone:", copy_started, on_line={MASTER_STEP: slow_link})
    bare.cli("shape", "pg2", "none")
    output = rerun(bare)
    assert "a copy that a clone made and never ran" in output
    assert bare.psql("pg3", "select status from pg_stat_wal_receiver") == "streaming"

    # The same hosts, healthy: the downstream's cluster dropped (its configuration and data), as
    # a refusal advises for data that is not needed; the rerun makes it again and clones.
    assert bare.ssh("pg3", "pg_dropcluster --stop 15 main", timeout=120).returncode == 0
    output = rerun(bare)
    assert "pg_createcluster 15 main" in output
    assert bare.psql("pg3", "select status from pg_stat_wal_receiver") == "streaming"
