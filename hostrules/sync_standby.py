"""May this standby become (again) a synchronous standby? Only once it has caught up. (pure, stdlib)

A standby named in synchronous_standby_names holds every commit on its primary until it confirms
it; one that is not streaming, or still replaying a backlog, would make every commit wait (for
ever, if it can no longer catch up: away longer than wal_keep_size). So the deploy, rejoin,
switchover and rebuild name a standby synchronous only when its upstream's pg_stat_replication
row says it streams ('streaming', not 'catchup' or 'startup') and its flushed position is within
MAX_LAG_BYTES of the upstream's.

    caught_up(row, max_lag_bytes) -> Verdict

row: the standby's pg_stat_replication row on its upstream as a mapping (state, flush_lag_bytes),
None when it has none.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

MAX_LAG_BYTES = 16 * 1024 * 1024  # one WAL segment

CAUGHT_UP = "caught-up"
NOT_CONNECTED = "not-connected"
CATCHING_UP = "catching-up"
LAGGING = "lagging"
NO_POSITION = "no-position"


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
    return Verdict(True, CAUGHT_UP, f"streaming and caught up ({lag} bytes behind)")


# ---------------------------------------------------------------- the command line


def parse_row(text: str) -> dict | None:
    """psql's 'STATE|FLUSH_LAG_BYTES' (an empty lag: no confirmed position); '' -> None."""
    text = text.strip()
    if not text:
        return None
    state, _, lag = text.partition("|")
    return {"state": state, "flush_lag_bytes": int(lag) if lag.strip().lstrip("-").isdigit() else None}


def main(argv: list[str]) -> int:
    """python3 -m hostrules.sync_standby 'STATE|FLUSH_LAG_BYTES' [MAX_LAG_BYTES]: exit 0 when
    caught up, 1 when not (the reason on stdout), 2 on bad usage."""
    if not 1 <= len(argv) <= 2:
        print("usage: python3 -m hostrules.sync_standby 'STATE|FLUSH_LAG_BYTES' [MAX_LAG_BYTES]", file=sys.stderr)
        return 2
    verdict = caught_up(parse_row(argv[0]), int(argv[1]) if len(argv) == 2 else MAX_LAG_BYTES)
    print(f"{verdict.reason}: {verdict.message}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
