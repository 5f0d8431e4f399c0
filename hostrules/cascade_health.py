"""Is the cascading standby healthy enough for the master to wait for it? (pure, stdlib only)

The master's synchronous commits wait for the cascade, so "healthy" means what a commit needs:
the cascade's PostgreSQL answers the master and WAL flows to it. A host that answers ping is not
enough (a hung machine answers ping; so does a host whose PostgreSQL died).

The cascade monitor (on each standby of the cascade) observes once a second, from the master:
the cascade's row in pg_stat_replication (present or not, its flush position and the time of its
last reply) and the master's own WAL position; and, from the cascade itself, whether it answers
and is still in recovery. Progress is judged on the monitor's own clock, never by comparing two
hosts' clocks: while WAL is pending (the master's position ahead of the cascade's flush) progress
is the flush position moving; otherwise it is a new reply (a standby replies at least every
wal_receiver_status_interval, 1 s here).

Verdicts:
- healthy: WAL flowed within STALL_AFTER seconds.
- wait: no flow, but do not fail over (yet), with the reason: a restart of the cascade is planned
  (a deploy or a rolling restart wrote until when, at most HOLD_MAX ahead; the count of silent
  seconds starts again once that is over), within START_GRACE of the
  monitor's start until it first saw WAL flow (a cold boot), within FAIL_OVER_AFTER (a restart
  of the cascade's PostgreSQL or a link blip of a few seconds resumes by itself: a failover
  would cut the cascade out for nothing), or the view cannot be trusted (this host's PostgreSQL
  or the master does not answer, the master is no longer the primary, the cascade was promoted);
  such a view also starts the count of silent seconds again (a master restarted in place: its
  cascade reconnects once it is back).
- fail-over: no flow for FAIL_OVER_AFTER seconds and the master is a running primary of this
  cluster, on a timeline not older than this host's, and the cascade was not promoted.

FAIL_OVER_AFTER is 4 s: a restart of the cascade's PostgreSQL reconnects in 1-3 s (0.5 s measured
on the lab); a link blip shorter than that resumes by itself. Detection is on 1 s looks, and the
failover itself (this host re-pointed, the master reloaded, this host's first confirmation)
takes about 2 s: commits resume within about 7 s of the last flow, inside the 10 s target.

Command line (the monitor's entry point), one judgement per call:

    python3 -m hostrules.cascade_health NOW PROGRESS PROGRESS_AT KEY=VALUE...

NOW: this host's clock (epoch seconds); PROGRESS, PROGRESS_AT: the previous call's memory ('-'
the first time). Observations (missing keys count as unknown): local_sysid, local_tli,
master_error, master_in_recovery (t/f), master_reads_positions (t/f), master_sysid, master_tli,
master_lsn, cascade_row (t/f),
cascade_flush_lsn, cascade_reply (opaque text), cascade_in_recovery (t/f, '' no answer),
hold_until (epoch seconds: a planned restart of the cascade); and
cascade=NAME, master=NAME for the words, started=EPOCH (when the monitor started),
fail_over_after=SECONDS and start_grace=SECONDS (tests).
Prints five lines: verdict, reason code, PROGRESS, PROGRESS_AT, message.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

HEALTHY, WAIT, FAIL_OVER = "healthy", "wait", "fail-over"
FAIL_OVER_AFTER = 4.0  # seconds without WAL flow before the cascade is failed over
# A healthy idle cascade replies every second; two missed replies and it is "not flowing" (the
# monitor says so once), though not failed over before FAIL_OVER_AFTER.
STALL_AFTER = 2.5

# A monitor that just started and has not seen WAL flow to the cascade yet (a cold boot of the
# cluster, where the cascade may come up after this host; not a reboot of this host alone, where
# the cascade streams at once: the monitor passes no start from its first healthy look on) gives
# the cascade this long before it fails over.
START_GRACE = 30.0

# A planned restart's hold further ahead than this is not believed (a bad file or clock): the
# deploy holds for 30 s at most and ends the hold once this host streams again.
HOLD_MAX = 300.0

# Stable reason codes.
WAL_FLOWS = "wal-flows"
GRACE = "no-flow-within-grace"
STARTING = "monitor-starting"
LOCAL_DOWN = "local-postgresql-down"
MASTER_UNREACHABLE = "master-unreachable"
MASTER_IN_RECOVERY = "master-in-recovery"
MASTER_OTHER_CLUSTER = "master-other-cluster"
MASTER_OLDER_TIMELINE = "master-older-timeline"
MASTER_VIEW_BLIND = "master-view-blind"
CASCADE_PROMOTED = "cascade-promoted"
CASCADE_DISCONNECTED = "cascade-disconnected"
CASCADE_STALLED = "cascade-stalled"
PLANNED_RESTART = "planned-restart"


@dataclass(frozen=True)
class Observation:
    """What the monitor saw in one round ('' or None: unknown / no answer)."""

    local_sysid: str = ""
    local_tli: int | None = None
    master_error: str = ""  # '' when the master answered
    master_in_recovery: str = ""
    master_sysid: str = ""
    master_tli: int | None = None
    master_lsn: int | None = None
    cascade_row: bool = False  # the cascade has a row in the master's pg_stat_replication
    cascade_flush_lsn: int | None = None
    cascade_reply: str = ""
    cascade_in_recovery: str = ""  # 't', 'f', or '' (no answer)
    # 'f': the monitor's role cannot read the positions in the master's pg_stat_replication (they
    # read as NULL without pg_read_all_stats): a blind view, not a silent cascade. '' unknown.
    master_reads_positions: str = ""
    hold_until: float | None = None  # a planned restart of the cascade, until then


@dataclass(frozen=True)
class Memory:
    """Carried from one judgement to the next: the last progress token and when it changed."""

    progress: str = ""
    progress_at: float | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: str
    reason: str
    message: str
    memory: Memory = field(default_factory=Memory)


def progress_token(seen: Observation) -> str:
    """The cascade's position as the master sees it, "FLUSH/REPLY"; '' when the master has no
    row for it (nothing flows)."""
    if not seen.cascade_row or seen.cascade_flush_lsn is None:
        return ""
    return f"{seen.cascade_flush_lsn}/{seen.cascade_reply}"


def progressed(seen: Observation, previous: str) -> bool:
    """WAL flows since the previous look: the flush position moved, or (nothing pending) a new
    reply came. A reply that does not move the flush position while WAL is pending is none: the
    commits still wait."""
    token = progress_token(seen)
    if not token or token == previous:
        return False
    if not previous:
        return True  # (re)connected
    flush, _ = previous.split("/", 1)
    if str(seen.cascade_flush_lsn) != flush:
        return True
    return seen.master_lsn is None or seen.cascade_flush_lsn is None or seen.master_lsn <= seen.cascade_flush_lsn


def master_problem(seen: Observation, master: str) -> tuple[str, str] | None:
    """(reason code, words) when the master cannot take this host's stream, else None."""
    if not seen.local_sysid:
        return LOCAL_DOWN, "this host's PostgreSQL does not answer"
    if seen.master_error:
        return MASTER_UNREACHABLE, f"the master {master} does not answer: {seen.master_error}"
    if seen.master_reads_positions == "f":
        return (MASTER_VIEW_BLIND, f"the replication role cannot read the positions in {master}'s "
                "pg_stat_replication (it lacks pg_read_all_stats: a deploy grants it again)")
    if seen.master_in_recovery != "f":
        return MASTER_IN_RECOVERY, f"the master {master} is in recovery: it is no longer the primary"
    if seen.master_sysid != seen.local_sysid:
        return (MASTER_OTHER_CLUSTER, f"the master {master} holds another cluster (system identifier "
                f"{seen.master_sysid}, this host's {seen.local_sysid})")
    if seen.master_tli is None or seen.local_tli is None or seen.master_tli < seen.local_tli:
        return (MASTER_OLDER_TIMELINE, f"the master {master} is on timeline {seen.master_tli}, older than "
                f"this host's ({seen.local_tli}): not the primary it follows")
    return None


def judge(seen: Observation, memory: Memory, now: float, cascade: str = "the cascade",
          master: str = "the master", fail_over_after: float = FAIL_OVER_AFTER,
          started: float | None = None, start_grace: float = START_GRACE) -> Judgement:
    token = progress_token(seen)
    if progressed(seen, memory.progress):
        since = now
    elif memory.progress_at is None:
        since = now  # first look: the grace starts now
    else:
        since = memory.progress_at
    remembered = Memory(token, since)
    silent = now - since
    if token and silent < min(STALL_AFTER, fail_over_after):  # (a shorter fail_over_after: tests)
        return Judgement(HEALTHY, WAL_FLOWS, f"WAL flows from {master} to {cascade}", remembered)
    if seen.hold_until is not None and now < seen.hold_until <= now + HOLD_MAX:
        # Its silence so far does not count: once the hold is over it has fail_over_after again.
        return Judgement(WAIT, PLANNED_RESTART, f"a restart of {cascade} is planned (for at most "
                         f"{seen.hold_until - now:.0f} s more): not failing over", Memory(token, now))
    if seen.cascade_in_recovery == "f":
        return Judgement(WAIT, CASCADE_PROMOTED, f"{cascade} was promoted: this is a failover of the "
                         "master, not a failed cascade", Memory(token, now))
    if problem := master_problem(seen, master):
        # Not a view to judge by, and no count of silence either: once the master (or this host) is
        # back, the cascade reconnects (wal_retrieve_retry_interval, 1 s) within fail_over_after.
        code, words = problem
        return Judgement(WAIT, code, f"{cascade} takes no WAL, but not failing over: {words}", Memory(token, now))
    if started is not None and now - started < start_grace:
        return Judgement(WAIT, STARTING, f"{cascade} is not streaming from {master} yet; the monitor started "
                         f"{now - started:.0f} s ago (fails over {start_grace:g} s after its start at the "
                         "earliest)", remembered)
    if silent < fail_over_after:
        if token:
            what = f"no WAL flowed from {master} to {cascade} for {silent:.1f} s"
        else:
            what = f"{cascade} has not been streaming from {master} for {silent:.1f} s"
        return Judgement(WAIT, GRACE, f"{what} (failing over after {fail_over_after:g} s)", remembered)
    if token:
        return Judgement(FAIL_OVER, CASCADE_STALLED,
                         f"{cascade} is connected to {master} but took no WAL for {silent:.1f} s"
                         f" ({_answers(seen)})", remembered)
    return Judgement(FAIL_OVER, CASCADE_DISCONNECTED,
                     f"{cascade} has not streamed from {master} for {silent:.1f} s ({_answers(seen)})",
                     remembered)


def _answers(seen: Observation) -> str:
    return ("its PostgreSQL answers, in recovery" if seen.cascade_in_recovery == "t"
            else "its PostgreSQL does not answer")


# ---------------------------------------------------------------- the command line


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def parse_observation(pairs: list[str]) -> Observation:
    raw = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    return Observation(
        local_sysid=raw.get("local_sysid", ""),
        local_tli=_int(raw.get("local_tli", "")),
        master_error=raw.get("master_error", ""),
        master_in_recovery=raw.get("master_in_recovery", ""),
        master_sysid=raw.get("master_sysid", ""),
        master_tli=_int(raw.get("master_tli", "")),
        master_lsn=_int(raw.get("master_lsn", "")),
        cascade_row=raw.get("cascade_row") == "t",
        cascade_flush_lsn=_int(raw.get("cascade_flush_lsn", "")),
        cascade_reply=raw.get("cascade_reply", ""),
        cascade_in_recovery=raw.get("cascade_in_recovery", ""),
        hold_until=_float(raw.get("hold_until", "")),
        master_reads_positions=raw.get("master_reads_positions", ""),
    )


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.split("Command line", 1)[1], file=sys.stderr)
        return 2
    now, progress, progress_at, *pairs = argv
    raw = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    memory = Memory("" if progress == "-" else progress, None if progress_at == "-" else float(progress_at))
    result = judge(parse_observation(pairs), memory, float(now), raw.get("cascade", "the cascade"),
                   raw.get("master", "the master"), float(raw.get("fail_over_after", FAIL_OVER_AFTER)),
                   float(raw["started"]) if raw.get("started") else None,
                   float(raw.get("start_grace", START_GRACE)))
    print(result.verdict, result.reason, result.memory.progress or "-",
          "-" if result.memory.progress_at is None else f"{result.memory.progress_at:.3f}",
          result.message.replace("\n", " "), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
