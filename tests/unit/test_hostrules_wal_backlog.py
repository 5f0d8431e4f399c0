"""hostrules.wal_backlog: a child's backlog is kept within its budget, then it is named for
rebuild; the backlog is reported as data."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hostrules import wal_backlog as wb

MB = 1024 * 1024


@pytest.mark.parametrize("backlog, size, budget, verdict", [
    (0, 16 * MB, 64 * MB, wb.KEEP),
    (48 * MB, 16 * MB, 64 * MB, wb.KEEP),  # exactly the budget
    (64 * MB, 16 * MB, 64 * MB, wb.REBUILD),
    (0, 16 * MB, 8 * MB, wb.REBUILD),  # a budget smaller than one file: never kept
    (0, 0, 0, wb.KEEP),
])
def test_decide(backlog, size, budget, verdict):
    assert wb.decide(backlog, size, budget) == verdict


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError):
        wb.decide(-1, 0, 0)


def test_report(tmp_path):
    (tmp_path / "10.0.0.3").mkdir()
    (tmp_path / "10.0.0.3" / "000000010000000000000005").write_bytes(b"x" * 10)
    (tmp_path / "10.0.0.3" / "000000010000000000000004").write_bytes(b"x" * 5)
    (tmp_path / "10.0.0.3" / ".000000010000000000000006.tmp").write_bytes(b"partial")
    (tmp_path / "10.0.0.4.rebuild").write_text("misses WAL from 000000010000000000000002 on\n")
    assert wb.report(str(tmp_path)) == {
        "10.0.0.3": {"files": 2, "bytes": 15, "oldest": "000000010000000000000004", "named_for_rebuild": None},
        "10.0.0.4": {"files": 0, "bytes": 0, "oldest": None,
                     "named_for_rebuild": "misses WAL from 000000010000000000000002 on"},
    }
    assert wb.report(str(tmp_path / "absent")) == {}


def test_the_command_line(tmp_path):
    def call(*args):
        return subprocess.run([sys.executable, "-m", "hostrules.wal_backlog", *args], capture_output=True, text=True)
    assert call("decide", "0", "16", "32").stdout.strip() == "keep"
    assert call("decide", "32", "16", "32").stdout.strip() == "rebuild"
    assert json.loads(call("report", str(tmp_path)).stdout) == {}
    assert call("bogus").returncode == 2
