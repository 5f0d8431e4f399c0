"""hostrules.sync_standby: only a caught-up standby may become synchronous."""
from __future__ import annotations

import pytest

from hostrules import sync_standby as ss


@pytest.mark.parametrize("row, ok, reason", [
    (None, False, ss.NOT_CONNECTED),
    ({}, False, ss.NOT_CONNECTED),
    ({"state": "startup", "flush_lag_bytes": 0}, False, ss.CATCHING_UP),
    ({"state": "catchup", "flush_lag_bytes": 0}, False, ss.CATCHING_UP),
    ({"state": "backup", "flush_lag_bytes": None}, False, ss.CATCHING_UP),
    ({"state": "streaming", "flush_lag_bytes": None}, False, ss.NO_POSITION),
    ({"state": "streaming", "flush_lag_bytes": ss.MAX_LAG_BYTES + 1}, False, ss.LAGGING),
    ({"state": "streaming", "flush_lag_bytes": ss.MAX_LAG_BYTES}, True, ss.CAUGHT_UP),
    ({"state": "streaming", "flush_lag_bytes": 0}, True, ss.CAUGHT_UP),
])
def test_caught_up(row, ok, reason):
    verdict = ss.caught_up(row)
    assert (verdict.ok, verdict.reason) == (ok, reason)
    assert verdict.message


def test_the_bound_is_a_parameter():
    assert not ss.caught_up({"state": "streaming", "flush_lag_bytes": 100}, max_lag_bytes=99).ok


@pytest.mark.parametrize("text, code", [
    ("streaming|0", 0),
    ("streaming|", 1),
    ("catchup|0", 1),
    ("", 1),
    (f"streaming|{ss.MAX_LAG_BYTES + 1}", 1),
])
def test_the_command_line(text, code):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "hostrules.sync_standby", text], capture_output=True, text=True)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.strip()
