"""PgConfigState's command, run by a local shell against stand-in psql programs."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from facts import config_state
from facts.config_state import PgConfigState


def run_fact(tmp_path, psql_body: str, monkeypatch) -> tuple[dict, float]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    psql = bin_dir / "psql"
    psql.write_text("#!/bin/sh\n" + psql_body + "\n")
    psql.chmod(0o755)
    conf = tmp_path / "postgresql.conf"
    conf.write_text("port = 5432\n")
    monkeypatch.setattr(config_state, "READ_DEADLINE_S", 1)
    command = PgConfigState().command(5432, [str(conf)])
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    elapsed = time.monotonic() - started
    return PgConfigState().process(proc.stdout.splitlines()), elapsed


def test_a_server_whose_connections_hang_reads_as_not_running_within_the_deadline(tmp_path, monkeypatch):
    fact, elapsed = run_fact(tmp_path, "sleep 60", monkeypatch)
    assert elapsed < 10
    assert fact["running"] is False and fact["files_mtime"] > 0


def test_the_read_carries_a_connect_timeout_to_psql(tmp_path, monkeypatch):
    # The stand-in answers like the server would, echoing the deadline psql was given.
    answer = {"in_recovery": False, "conf_load_time": 1.0, "unapplied": [], "file_errors": [], "hba_errors": [],
              "pending_restart": []}
    body = f"test \"$PGCONNECT_TIMEOUT\" -gt 0 && echo '{json.dumps(answer)}'"
    fact, _ = run_fact(tmp_path, body, monkeypatch)
    assert fact["running"] is True and fact["in_recovery"] is False


@pytest.mark.parametrize("port", ["5432", None])
def test_the_port_must_be_an_int(port):
    with pytest.raises(ValueError):
        PgConfigState().command(port, [])
