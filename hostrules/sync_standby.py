"""May this standby become (again) a synchronous standby? Only once it has caught up. (stdlib)

A standby named in synchronous_standby_names holds every commit on its primary until it confirms
it; one that is not streaming, or still replaying a backlog, would make every commit wait (for
ever, if it can no longer catch up: away longer than wal_keep_size). So the deploy, rejoin,
switchover and rebuild name a standby synchronous only when its upstream's pg_stat_replication
row says it streams ('streaming', not 'catchup' or 'startup'), its flushed position is within
MAX_LAG_BYTES of the upstream's, and it still answers.

A row outlives its standby's silence: after a cut link or a frozen host it reads 'streaming', with
its last position, until wal_sender_timeout ends it. So the row is looked at twice, REPLY_WINDOW
apart (looks()): a standby confirms at least every wal_receiver_status_interval (1 s), so one that
sent no reply in between is silent (replied()). Only the standby's own timestamps (reply_time)
are compared with each other, never two hosts' clocks.

    caught_up(row, max_lag_bytes) -> Verdict

row: the standby's pg_stat_replication row on its upstream as a mapping (state, flush_lag_bytes,
and replied: False when it sent no reply between two looks), None when it has none.

Command line, on the upstream as postgres:
    python3 -m hostrules.sync_standby looks PORT              both looks, as JSON
    python3 -m hostrules.sync_standby check PORT NAME [MAX]   exit 0 when NAME has caught up
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_LAG_BYTES = 16 * 1024 * 1024  # one WAL segment
REPLY_WINDOW = 1.5  # seconds between the two looks: more than wal_receiver_status_interval (1 s)
PSQL_TIMEOUT = 10  # seconds for one look

CAUGHT_UP = "caught-up"
NOT_CONNECTED = "not-connected"
CATCHING_UP = "catching-up"
LAGGING = "lagging"
NO_POSITION = "no-position"
SILENT = "silent"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # one of the codes above
    message: str


def caught_up(row: Mapping | None, max_lag_bytes: int = MAX_LAG_BYTES) -> Verdict:
    if not row:
        return Verdict(False, NOT_CONNECTED, "not streaming from its upstream (no pg_stat_replication row)")
    state = row.get("state")
    if state != "streaming":
        return Verdict(False, CATCHING_UP, f"its WAL sender is in state {state!r}, not 'streaming'")
    lag = row.get("flush_lag_bytes")
    if lag is None:
        return Verdict(False, NO_POSITION, "streaming, but it has not confirmed a flushed position yet")
    if lag > max_lag_bytes:
        return Verdict(False, LAGGING, f"streaming, but {lag} bytes behind (at most {max_lag_bytes})")
    if row.get("replied") is False:
        return Verdict(False, SILENT, f"its row says streaming, but it sent no reply within {REPLY_WINDOW:g} s "
                                      "(a cut link, a frozen host, a stalled WAL receiver)")
    return Verdict(True, CAUGHT_UP, f"streaming and caught up ({lag} bytes behind)")


def replied(before: Sequence[Mapping], after: Sequence[Mapping], application_name: str | None) -> bool:
    """Did the standby reply between the two looks? A WAL sender (pid) of it whose reply_time
    changed, or one that appeared meanwhile (a reconnect) and has replied."""
    earlier = {r.get("pid"): r.get("reply_time") for r in before if r.get("application_name") == application_name}
    for r in after:
        if r.get("application_name") != application_name or not r.get("reply_time"):
            continue
        if r.get("pid") not in earlier or earlier[r.get("pid")] != r.get("reply_time"):
            return True
    return False


def looked_row(looks: Mapping | None, application_name: str | None) -> dict | None:
    """The standby's row in the second look (a streaming one first), with `replied`; None when it
    has none, or the looks could not be taken."""
    if not looks or looks.get("error"):
        return None
    rows = [r for r in looks.get("after") or [] if r.get("application_name") == application_name]
    if not rows:
        return None
    row = dict(sorted(rows, key=lambda r: r.get("state") != "streaming")[0])
    row["replied"] = replied(looks.get("before") or [], looks.get("after") or [], application_name)
    return row


# ---------------------------------------------------------------- on the upstream

# The rows' positions: what this server has (written, or received as a cascading standby) minus
# what the standby flushed.
LOOK_QUERY = """
select coalesce(json_agg(json_build_object(
         'pid', pid, 'application_name', application_name, 'state', state, 'reply_time', reply_time::text,
         'flush_lag_bytes', pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_receive_lsn()
                                                 else pg_current_wal_lsn() end, flush_lsn)::bigint)), '[]')
  from pg_stat_replication
"""


def _look(port: str) -> list:
    proc = subprocess.run(["psql", "-XAtq", "-p", port, "-d", "postgres", "-c", LOOK_QUERY],
                          capture_output=True, text=True, timeout=PSQL_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"psql exited {proc.returncode}")
    return json.loads(proc.stdout)


def looks(port: str) -> dict:
    """Two looks at this server's pg_stat_replication, REPLY_WINDOW apart: {"before", "after"},
    or {"error"}."""
    try:
        before = _look(port)
        time.sleep(REPLY_WINDOW)
        return {"before": before, "after": _look(port)}
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        return {"error": str(error)[:500]}


USAGE = ("usage: python3 -m hostrules.sync_standby looks PORT | "
         "python3 -m hostrules.sync_standby check PORT APPLICATION_NAME [MAX_LAG_BYTES]")


def main(argv: list[str]) -> int:
    """looks: print both looks as JSON (exit 0). check: exit 0 when caught up, 1 when not (the
    reason on stdout). 2 on bad usage."""
    if len(argv) == 2 and argv[0] == "looks":
        print(json.dumps(looks(argv[1])))
        return 0
    if argv[:1] == ["check"] and 3 <= len(argv) <= 4:
        seen = looks(argv[1])
        verdict = caught_up(looked_row(seen, argv[2]), int(argv[3]) if len(argv) == 4 else MAX_LAG_BYTES)
        print(f"{verdict.reason}: {verdict.message}" + (f" ({seen['error']})" if seen.get("error") else ""))
        return 0 if verdict.ok else 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
