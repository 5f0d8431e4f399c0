"""hostrules.hawatch's reading of postmaster.pid: when the postmaster was last ready."""
from __future__ import annotations

import os
import time

from hostrules.hawatch import postmaster_ready_ago

READY = "1234\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\n*\n  5432001     12\nready   \n"


def write_pidfile(directory, text: str, age: float) -> None:
    path = directory / "postmaster.pid"
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))


def test_a_ready_status_line_gives_the_files_age(tmp_path):
    write_pidfile(tmp_path, READY, 3.0)
    ago = postmaster_ready_ago(str(tmp_path))
    assert ago is not None and 2.5 < ago < 5


def test_a_starting_postmaster_or_no_file_is_not_ready(tmp_path):
    assert postmaster_ready_ago(str(tmp_path)) is None
    write_pidfile(tmp_path, READY.replace("ready   ", "starting"), 1.0)
    assert postmaster_ready_ago(str(tmp_path)) is None
    write_pidfile(tmp_path, "1234\n/var/lib/postgresql/15/main\n", 1.0)  # written before the status line
    assert postmaster_ready_ago(str(tmp_path)) is None
