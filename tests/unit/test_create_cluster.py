"""planner.postgres_unit.create_cluster, run by a local shell with a stand-in pg_createcluster."""
from __future__ import annotations

import os
import subprocess

from planner.postgres_unit import create_cluster


def run(tmp_path, conf, data):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "pg_createcluster"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/called\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", create_cluster(15, "main", 5433, str(conf), str(data))], env=env,
                          capture_output=True, text=True, timeout=30)


def test_nothing_there_the_cluster_is_made_and_started(tmp_path):
    done = run(tmp_path, tmp_path / "etc/15/main", tmp_path / "lib/15/main")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "called").read_text().split() == [
        "--port", "5433", "-d", str(tmp_path / "lib/15/main"), "--start", "15", "main"]


def test_an_earlier_runs_files_without_postgresql_conf_are_moved_aside(tmp_path):
    conf, data = tmp_path / "etc/15/main", tmp_path / "lib/15/main"
    (conf / "conf.d").mkdir(parents=True)
    (conf / "pg_hba.conf").write_text("local all all peer\n")
    data.mkdir(parents=True)  # empty: pg_createcluster accepts it
    done = run(tmp_path, conf, data)
    assert done.returncode == 0, done.stderr
    assert not conf.exists()
    moved = [p for p in conf.parent.iterdir() if p.name.startswith("main.pgcascade-moved-")]
    assert len(moved) == 1 and (moved[0] / "pg_hba.conf").exists()
    assert (tmp_path / "called").exists()


def test_a_data_directory_holding_files_is_refused_and_left_as_it_is(tmp_path):
    conf, data = tmp_path / "etc/15/main", tmp_path / "lib/15/main"
    conf.mkdir(parents=True)
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    done = run(tmp_path, conf, data)
    assert done.returncode == 1
    assert "holds files but" in done.stderr and "postgresql.conf is missing" in done.stderr
    assert conf.exists() and (data / "PG_VERSION").exists()
    assert not (tmp_path / "called").exists()
