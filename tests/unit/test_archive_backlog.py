"""archive-wal with a child that does not take its WAL files: the archiver is never held, the
files wait in a bounded backlog that is shipped first once the child answers, and past the
budget the child is named for rebuild. ssh and rsync are stubs running locally; the decision is
the real hostrules.wal_backlog."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from planner import settings
from planner.model import Cluster
from planner.render import render
from tests.conftest import ROOT

CHILD = "198.51.100.13"
SSH = r"""#!/bin/bash
while [ $# -gt 0 ]; do
    case $1 in
        -[oliFpEbcDeLRWJSOQmwBI]) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
target=$1
shift
printf '%s\n' "$target" >>"$STUB/ssh.log"
[ -e "$STUB/down" ] && { echo "ssh: connect to host $target port 22: No route to host" >&2; exit 255; }
exec bash -c "$*"
"""
RSYNC = r"""#!/bin/bash
src=${@: -2:1}
dst=${@: -1}
[ -e "$STUB/down" ] && exit 12
cp -- "$src" "${dst#*:}"
"""


def executable(path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def wal(tmp_path):
    (tmp_path / "bin").mkdir()
    executable(tmp_path / "bin" / "ssh", SSH)
    executable(tmp_path / "bin" / "rsync", RSYNC)
    (tmp_path / "archive").mkdir()
    (tmp_path / "pg_wal").mkdir()

    class Wal:
        backlog = tmp_path / "backlog"
        archive = tmp_path / "archive"

        def script(self, budget_mb: int = 1):
            variables = {**settings.archive_wal_vars(Cluster(archive_backlog_mb=budget_mb)),
                         "backlog_directory": str(self.backlog), "hostrules_directory": str(ROOT)}
            path = tmp_path / "archive-wal"
            executable(path, render("archive-wal.sh.j2", variables))
            return path

        def archive_file(self, n: int, size: int = 300_000, budget_mb: int = 1):
            name = f"0000000100000000000000{n:02X}"
            (tmp_path / "pg_wal" / name).write_bytes(os.urandom(size))
            return subprocess.run([str(self.script(budget_mb)), f"pg_wal/{name}", name, str(self.archive), CHILD],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                  env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "STUB": str(tmp_path),
                                       "HOME": str(tmp_path)})

        def down(self, is_down: bool):
            (tmp_path / "down").touch() if is_down else (tmp_path / "down").unlink(missing_ok=True)

        def forget_the_last_try(self):
            stamp = self.backlog / CHILD / ".down"
            os.utime(stamp, (1, 1))

        def report(self):
            proc = subprocess.run([sys.executable, "-m", "hostrules.wal_backlog", "report", str(self.backlog)],
                                  capture_output=True, text=True, check=True, cwd=ROOT)
            return json.loads(proc.stdout)

        def ssh_tries(self) -> int:
            log = tmp_path / "ssh.log"
            return len(log.read_text().splitlines()) if log.exists() else 0

        def archived(self):
            return sorted(p.name for p in self.archive.iterdir() if not p.name.startswith("."))

    return Wal()


def test_a_child_that_answers_gets_the_file(wal):
    result = wal.archive_file(1)
    assert result.returncode == 0, result.stderr
    assert wal.archived() == ["000000010000000000000001"]
    assert wal.report()[CHILD]["files"] == 0


def test_a_dead_child_never_holds_the_archiver_and_catches_up_when_it_answers(wal):
    wal.down(True)
    first = wal.archive_file(1)
    assert first.returncode == 0, first.stderr
    assert "did not take it; kept in its backlog" in first.stderr
    tries = wal.ssh_tries()
    second = wal.archive_file(2)  # within RETRY_SECONDS: straight to the backlog, no ssh try
    assert second.returncode == 0 and wal.ssh_tries() == tries
    assert wal.report()[CHILD] == {"files": 2, "bytes": 600_000, "oldest": "000000010000000000000001",
                                   "named_for_rebuild": None}
    assert wal.archived() == []

    wal.down(False)
    wal.forget_the_last_try()
    third = wal.archive_file(3)
    assert third.returncode == 0, third.stderr
    assert "caught up 2 file(s)" in third.stderr
    assert wal.archived() == ["000000010000000000000001", "000000010000000000000002", "000000010000000000000003"]
    assert wal.report()[CHILD]["files"] == 0


def test_past_its_budget_the_child_is_named_for_rebuild_and_skipped(wal):
    wal.down(True)
    assert wal.archive_file(1, size=600_000).returncode == 0  # 0.6 of 1 MB
    full = wal.archive_file(2, size=600_000)
    assert full.returncode == 0, full.stderr
    assert "its backlog is full: dropped its backlog; it is named for rebuild" in full.stderr
    report = wal.report()[CHILD]
    assert report["files"] == 0 and report["named_for_rebuild"].startswith(
        "misses WAL from 000000010000000000000002 on")
    wal.down(False)
    tries = wal.ssh_tries()
    later = wal.archive_file(3)
    assert later.returncode == 0 and wal.ssh_tries() == tries and wal.archived() == []


def test_a_different_file_in_the_childs_archive_is_an_error_not_a_backlog(wal):
    (wal.archive / "000000010000000000000001").write_bytes(b"something else")
    result = wal.archive_file(1)
    assert result.returncode == 1
    assert "DIFFERENT content" in result.stderr
    assert wal.report().get(CHILD, {}).get("files", 0) == 0
