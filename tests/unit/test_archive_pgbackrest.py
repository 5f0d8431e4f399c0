"""templates/archive-pgbackrest.sh.j2, run for real with a stand-in pgbackrest that records its
calls: only the primary pushes segments, history files go from any host, and a new primary first
pushes the former timelines' backlog, once."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from planner.render import render

SEGMENT_1 = "000000010000000000000005"
SEGMENT_2 = "000000020000000000000006"


@pytest.fixture
def host(tmp_path: Path):
    data, archive = tmp_path / "data", tmp_path / "archive"
    (data / "pg_wal").mkdir(parents=True)
    archive.mkdir()
    calls = tmp_path / "calls"
    fake = tmp_path / "pgbackrest"
    # exits with the code named in FAIL_<file name>, else 0; records "archive-push PATH"
    fake.write_text('#!/bin/bash\nif [ "${@: -1}" = info ]; then echo "[{\\"archive\\":[{\\"max\\":\\"$(cat '
                    + str(tmp_path) + '/repo_max 2>/dev/null)\\"}]}]"; exit 0; fi\n'
                    'f=$(basename "$3"); echo "$2 $3" >>' + shlex.quote(str(calls)) +
                    '\ncode=$(cat "' + str(tmp_path) + '/fail_$f" 2>/dev/null); exit ${code:-0}\n')
    fake.chmod(0o755)
    script = tmp_path / "archive-pgbackrest"
    script.write_text(render("archive-pgbackrest.sh.j2", {
        "stanza": "main", "pgbackrest": shlex.quote(str(fake)), "archive_dir": shlex.quote(str(archive)),
        "backlog_marker": shlex.quote(str(tmp_path / "marker"))}))
    script.chmod(0o755)

    def run(path: str, name: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), path, name], cwd=data, text=True, capture_output=True, timeout=30)

    def pushed() -> list[str]:
        return calls.read_text().splitlines() if calls.exists() else []

    return type("Host", (), {"data": data, "archive": archive, "run": staticmethod(run),
                             "pushed": staticmethod(pushed), "tmp": tmp_path})


def test_a_standby_pushes_no_segment_but_history_files(host):
    (host.data / "standby.signal").touch()
    (host.data / "pg_wal" / SEGMENT_1).write_text("x")
    assert host.run(f"pg_wal/{SEGMENT_1}", SEGMENT_1).returncode == 0
    assert host.pushed() == []
    (host.data / "pg_wal" / "00000002.history").write_text("1\t0/5000000\tno recovery target specified\n")
    assert host.run("pg_wal/00000002.history", "00000002.history").returncode == 0
    assert host.pushed() == ["archive-push pg_wal/00000002.history"]


def test_the_primary_pushes_and_a_failure_is_retried_by_postgresql(host):
    (host.data / "pg_wal" / SEGMENT_1).write_text("x")
    assert host.run(f"pg_wal/{SEGMENT_1}", SEGMENT_1).returncode == 0
    (host.tmp / f"fail_{SEGMENT_1}").write_text("82")
    assert host.run(f"pg_wal/{SEGMENT_1}", SEGMENT_1).returncode == 1
    assert host.pushed() == [f"archive-push pg_wal/{SEGMENT_1}"] * 2


def test_a_new_primary_pushes_the_former_timelines_backlog_once(host):
    wal = host.data / "pg_wal"
    (wal / "00000002.history").write_text("1\t0/6000000\tno recovery target specified\n")
    (host.archive / "000000010000000000000003").write_text("in the repository already")
    (host.tmp / "repo_max").write_text("000000010000000000000003")
    (host.archive / "000000010000000000000004").write_text("shipped by the former primary")
    (wal / SEGMENT_1).write_text("streamed")
    (wal / SEGMENT_2).write_text("new")
    (host.tmp / "fail_000000010000000000000004").write_text("45")  # the repository has the former primary's copy
    result = host.run(f"pg_wal/{SEGMENT_2}", SEGMENT_2)
    assert result.returncode == 0, result.stderr
    assert host.pushed() == [f"archive-push {host.archive}/000000010000000000000004",
                             f"archive-push pg_wal/{SEGMENT_1}", f"archive-push pg_wal/{SEGMENT_2}"]
    assert "already holds the former primary's copy" in result.stderr
    assert (host.tmp / "marker").read_text().strip() == "2"
    host.run(f"pg_wal/{SEGMENT_2}", SEGMENT_2)
    assert len(host.pushed()) == 4  # the backlog is not pushed again


def test_a_failed_backlog_push_fails_the_segment(host):
    (host.data / "pg_wal" / "00000002.history").write_text("1\t0/6000000\tx\n")
    (host.data / "pg_wal" / SEGMENT_1).write_text("streamed")
    (host.tmp / f"fail_{SEGMENT_1}").write_text("1")
    assert host.run(f"pg_wal/{SEGMENT_2}", SEGMENT_2).returncode == 1
    assert not (host.tmp / "marker").exists()
