"""hostrules.cascade_health: when the cascade monitor fails over, waits, or leaves the cascade
alone, as a table of observed states over time."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hostrules import cascade_health as ch
from hostrules.cascade_health import FAIL_OVER, HEALTHY, WAIT, Memory, Observation, judge

SYSID = "7300000000000000001"
MASTER_OK = dict(local_sysid=SYSID, local_tli=1, master_in_recovery="f", master_sysid=SYSID, master_tli=1)


def seen(**changes) -> Observation:
    base = dict(MASTER_OK, master_lsn=1000, cascade_row=True, cascade_flush_lsn=1000, cascade_reply="r0",
                cascade_in_recovery="t")
    return Observation(**{**base, **changes})


STREAMING_IDLE = seen()
GONE = seen(cascade_row=False, cascade_flush_lsn=None, cascade_reply="", cascade_in_recovery="")
HUNG = seen(cascade_in_recovery="", master_lsn=5000)  # its row stays, nothing moves, no answer


def run(steps: list[tuple[float, Observation]]) -> list[tuple[str, str]]:
    """Judge a sequence of (time, observation), carrying the memory as the monitor does."""
    memory, verdicts = Memory(), []
    for now, observation in steps:
        result = judge(observation, memory, now, "pg2", "pg1")
        memory = result.memory
        verdicts.append((result.verdict, result.reason))
    return verdicts


def replies(start: int, count: int, **changes) -> list[tuple[float, Observation]]:
    """A healthy idle cascade: a new reply every second."""
    return [(float(t), seen(cascade_reply=f"r{t}", **changes)) for t in range(start, start + count)]


@pytest.mark.parametrize("story, last", [
    # a healthy idle cascade replies every second
    (replies(0, 10), (HEALTHY, ch.WAL_FLOWS)),
    # a busy one flushes: the flush position moves while the master is ahead
    ([(float(t), seen(master_lsn=100 * t + 50, cascade_flush_lsn=100 * t)) for t in range(10)],
     (HEALTHY, ch.WAL_FLOWS)),
    # hung (paused): its row stays, nothing moves; 4 s later, fail over
    (replies(0, 3) + [(float(t), HUNG) for t in range(3, 6)], (WAIT, ch.GRACE)),
    (replies(0, 3) + [(float(t), HUNG) for t in range(3, 7)], (FAIL_OVER, ch.CASCADE_STALLED)),
    # its PostgreSQL killed on a live host: the row disappears
    (replies(0, 3) + [(float(t), GONE) for t in range(3, 6)], (WAIT, ch.GRACE)),
    (replies(0, 3) + [(float(t), GONE) for t in range(3, 7)], (FAIL_OVER, ch.CASCADE_DISCONNECTED)),
    # a restart of its PostgreSQL: 3 s without a row, then streaming again: no failover
    (replies(0, 3) + [(float(t), GONE) for t in range(3, 6)] + replies(6, 3), (HEALTHY, ch.WAL_FLOWS)),
    # a link blip: replies stop for 3 s, then catch up
    (replies(0, 3) + [(float(t), seen(cascade_reply="r2")) for t in range(3, 6)] + replies(6, 2),
     (HEALTHY, ch.WAL_FLOWS)),
    # replies arrive but the flush position does not move while WAL is pending: commits wait
    ([(float(t), seen(master_lsn=5000, cascade_flush_lsn=1000, cascade_reply=f"r{t}")) for t in range(9)],
     (FAIL_OVER, ch.CASCADE_STALLED)),
    # the monitor starts while the cascade is already gone: the grace counts from the first look
    ([(float(t), GONE) for t in range(4)], (WAIT, ch.GRACE)),
    ([(float(t), GONE) for t in range(5)], (FAIL_OVER, ch.CASCADE_DISCONNECTED)),
])
def test_flow_over_time(story, last):
    assert run(story)[-1] == last


def test_a_hung_cascade_is_failed_over_4_s_after_its_last_progress_never_earlier():
    verdicts = run(replies(0, 3) + [(2 + t / 2, HUNG) for t in range(1, 14)])
    first = next(i for i, (verdict, _) in enumerate(verdicts) if verdict == FAIL_OVER)
    assert first == 3 + 7  # t = 6.0: 4 s after the last reply at t = 2
    assert all(verdict != FAIL_OVER for verdict, _ in verdicts[:first])


@pytest.mark.parametrize("changes, reason", [
    (dict(local_sysid=""), ch.LOCAL_DOWN),
    (dict(master_error="timeout expired"), ch.MASTER_UNREACHABLE),
    (dict(master_in_recovery="t"), ch.MASTER_IN_RECOVERY),
    (dict(master_in_recovery=""), ch.MASTER_IN_RECOVERY),
    (dict(master_sysid="7399999999999999999"), ch.MASTER_OTHER_CLUSTER),
    (dict(master_tli=1, local_tli=2), ch.MASTER_OLDER_TIMELINE),
    (dict(master_tli=None), ch.MASTER_OLDER_TIMELINE),
    (dict(cascade_in_recovery="f"), ch.CASCADE_PROMOTED),  # a failover of the master, not of the cascade
])
def test_never_fails_over_on_a_view_it_cannot_trust(changes, reason):
    gone = Observation(**{**GONE.__dict__, **changes})
    verdicts = run(replies(0, 2) + [(float(t), gone) for t in range(2, 20)])
    assert verdicts[-1] == (WAIT, reason)
    assert FAIL_OVER not in {verdict for verdict, _ in verdicts}


def test_a_promoted_cascade_is_never_failed_over_even_within_the_grace():
    assert judge(seen(cascade_row=False, cascade_in_recovery="f"), Memory("1000/r1", 0.0), 1.0).reason \
        == ch.CASCADE_PROMOTED


def test_messages_say_what_and_why():
    result = judge(GONE, Memory("1000/r1", 0.0), 6.0, "pg2", "pg1")
    assert result.message == ("pg2 has not streamed from pg1 for 6.0 s (its PostgreSQL does not answer)")
    waiting = judge(Observation(**{**GONE.__dict__, "master_error": "timeout"}), Memory("1000/r1", 0.0), 6.0,
                    "pg2", "pg1")
    assert waiting.message == "pg2 takes no WAL, but not failing over: the master pg1 does not answer: timeout"


def test_the_command_line_carries_the_memory():
    def call(*args: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "hostrules.cascade_health", *args], capture_output=True,
                              text=True, check=True)
        return proc.stdout.splitlines()
    facts = [f"{k}={v}" for k, v in MASTER_OK.items()] + ["cascade=pg2", "master=pg1"]
    first = call("100.0", "-", "-", *facts, "cascade_row=t", "cascade_flush_lsn=10", "master_lsn=10",
                 "cascade_reply=a", "cascade_in_recovery=t")
    assert first == ["healthy", "wal-flows", "10/a", "100.000", "WAL flows from pg1 to pg2"]
    later = call("106.0", first[2], first[3], *facts, "cascade_row=f")
    assert later[:4] == ["fail-over", "cascade-disconnected", "-", "100.000"]


def test_a_reply_without_flush_progress_while_wal_is_pending_is_no_progress():
    assert ch.progressed(seen(master_lsn=5000, cascade_reply="r2"), "1000/r1") is False
    assert ch.progressed(seen(master_lsn=5000, cascade_flush_lsn=2000), "1000/r0") is True
    assert ch.progressed(seen(cascade_reply="r2"), "1000/r1") is True  # idle: a reply is progress
    assert ch.progressed(seen(), "") is True  # a row again: reconnected
    assert ch.progressed(GONE, "1000/r1") is False


def test_a_monitor_that_just_started_gives_the_cascade_its_start_grace():
    """A cold boot: the cascade may come up after this host; no failover within START_GRACE."""
    early = judge(GONE, Memory(), 110.0, "pg2", "pg1", started=100.0)
    assert (early.verdict, early.reason) == (WAIT, ch.STARTING)
    memory = Memory("", 100.0)
    assert judge(GONE, memory, 129.0, started=100.0).reason == ch.STARTING
    assert judge(GONE, memory, 131.0, started=100.0).verdict == FAIL_OVER
    assert judge(STREAMING_IDLE, Memory(), 101.0, started=100.0).verdict == HEALTHY


# ---- a planned restart (the deploy or a rolling restart holds the monitor until a deadline) ----

def held(until: float, observation: Observation = GONE) -> Observation:
    return Observation(**{**observation.__dict__, "hold_until": until})


def test_a_planned_restart_longer_than_the_failover_delay_is_waited_out():
    story = replies(0, 3) + [(float(t), held(100.0)) for t in range(3, 20)]
    assert run(story)[-1] == (WAIT, ch.PLANNED_RESTART)


def test_once_the_hold_ends_the_silent_seconds_count_from_its_end_not_from_the_last_flow():
    held_rounds = [(float(t), held(10.0)) for t in range(3, 10)]
    after = [(float(t), GONE) for t in range(10, 13)]  # the hold is over; still no row
    verdicts = run(replies(0, 3) + held_rounds + after)
    assert verdicts[-1] == (WAIT, ch.GRACE)  # 3 s after the last held round (9 s after the last flow)
    assert run(replies(0, 3) + held_rounds + after + [(13.5, GONE)])[-1] == (FAIL_OVER, ch.CASCADE_DISCONNECTED)


def test_a_hold_that_is_over_or_implausibly_far_is_ignored():
    assert run(replies(0, 3) + [(float(t), held(2.0)) for t in range(3, 8)])[-1] == (
        FAIL_OVER, ch.CASCADE_DISCONNECTED)
    far = 10.0 + ch.HOLD_MAX + 1
    assert run(replies(0, 3) + [(float(t), held(far)) for t in range(3, 8)])[-1] == (
        FAIL_OVER, ch.CASCADE_DISCONNECTED)


def test_a_held_cascade_that_streams_is_healthy():
    assert run([(t, held(100.0, o)) for t, o in replies(0, 5)])[-1] == (HEALTHY, ch.WAL_FLOWS)


def test_the_command_line_reads_the_hold():
    out = subprocess.run([sys.executable, "-m", "hostrules.cascade_health", "10", "-", "-", "local_sysid=1",
                          "local_tli=1", "master_in_recovery=f", "master_sysid=1", "master_tli=1",
                          "hold_until=50"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[:2] == [WAIT, ch.PLANNED_RESTART]


def test_a_master_restarted_in_place_leaves_its_cascade_time_to_reconnect():
    """The master's PostgreSQL down 6 s then back: the cascade's row comes back about 1 s later
    (wal_retrieve_retry_interval). The silence while the master did not answer does not count."""
    down = Observation(**{**GONE.__dict__, "master_error": "connection refused"})
    back_gone = [(float(t), GONE) for t in range(9, 12)]
    verdicts = run(replies(0, 3) + [(float(t), down) for t in range(3, 9)] + back_gone + replies(12, 2))
    assert FAIL_OVER not in {verdict for verdict, _ in verdicts}
    assert verdicts[-1] == (HEALTHY, ch.WAL_FLOWS)
    # ... but a cascade that does not come back is failed over 4 s after the master's last silent look.
    never = run(replies(0, 3) + [(float(t), down) for t in range(3, 9)] + [(float(t), GONE) for t in range(9, 13)])
    assert never[-2] == (WAIT, ch.GRACE) and never[-1] == (FAIL_OVER, ch.CASCADE_DISCONNECTED)


def test_a_monitor_that_cannot_read_the_positions_never_fails_over():
    """Without pg_read_all_stats the master's pg_stat_replication shows the cascade's row with NULL
    positions: that is a blind view (master-view-blind), not a cascade that stopped streaming."""
    blind = Observation(**{**GONE.__dict__, "master_reads_positions": "f"})
    verdicts = run(replies(0, 3) + [(float(t), blind) for t in range(3, 20)])
    assert verdicts[-1] == (WAIT, ch.MASTER_VIEW_BLIND)
    assert FAIL_OVER not in {verdict for verdict, _ in verdicts}
    assert ch.parse_observation(["master_reads_positions=f"]).master_reads_positions == "f"
