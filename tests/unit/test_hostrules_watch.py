"""hostrules.watch (ha-watch's decisions), hostrules.release (a resource stop) and
hostrules.canfailover (the standing check): tables of observations."""
from __future__ import annotations

import pytest

from hostrules import canfailover, release, watch
from hostrules.nodestate import Downstream, NodeState
from hostrules.verdict import Verdict
from hostrules.watch import Memory, Observation

SYSID = "7"
PRIMARY = NodeState("primary", 1, SYSID, 1 << 30)
STANDBY = NodeState("standby", 1, SYSID, 1 << 30, "standby_1", "10.0.0.1")
DOWN = NodeState("stopped-primary", 1, SYSID)
STOPPED_STANDBY = NodeState("stopped-standby", 1, SYSID)
FENCE = Verdict("fence", "successor-timeline", "pg2 (primary, timeline 2) branched off")
KEEP = Verdict("keep", "newest-timeline", "")
SYNC = 'FIRST 1 ("standby_2")'
REACHES_2_OF_3 = {"hosts_reached": 2, "hosts_total": 3, "inventory_master": False}  # a promoted cascade
SYNC_PRIMARY = NodeState("primary", 2, SYSID, 1 << 30, synchronous_standby_names=SYNC)
SYNC_BACK = NodeState("primary", 2, SYSID, 1 << 30, synchronous_standby_names="",
                      replication=[Downstream("standby_2", "10.0.0.3", "streaming", "async", (1 << 30) - 4096)])
SYNC_BEHIND = NodeState("primary", 2, SYSID, 1 << 30, synchronous_standby_names="",
    replication=[Downstream("standby_2", "10.0.0.3", "streaming", "async", (1 << 30) - (64 << 20))])


def obs(local=PRIMARY, flag=True, vip=True, unit="active", hb="active", rsc=None, peer="active", **kw):
    """pg1, the preferred node: it holds the group when heartbeat says local or all."""
    if rsc is None:
        rsc = "all" if flag else "none"
    defaults = dict(heartbeat_enabled=True, heartbeat_settled=True, hapostgres_running=False, deposition=KEEP)
    defaults.update(kw)
    return Observation(local, flag, vip, unit, hb, defaults.pop("heartbeat_enabled"), defaults.pop("heartbeat_settled"),
                       rsc, peer, **defaults)


CASES = [
    ("a healthy primary", obs(), Memory(), "none", "primary"),
    ("scenario 1: the flagged primary's PostgreSQL died", obs(DOWN, unit="failed"), Memory(), "restart-postgres",
     "primary-down"),
    ("... it was restarted and is starting", obs(NodeState("starting", 1, SYSID), unit="activating"),
     Memory(down_for=2, restarts=1), "none", "starting"),
    ("... still starting after the deadline", obs(NodeState("starting", 1, SYSID), unit="activating"),
     Memory(down_for=watch.RESTART_DEADLINE, restarts=1), "hand-over", "restart-too-slow"),
    ("... the queued start waits for a stop under way", obs(DOWN, unit="deactivating"), Memory(down_for=1, restarts=1),
     "none", "restart-pending"),
    ("... not past the restart deadline", obs(DOWN, unit="inactive"),
     Memory(down_for=watch.RESTART_DEADLINE, restarts=1), "hand-over", "primary-stays-down"),
    ("... it came up after the restart and died again: a new outage", obs(DOWN, unit="failed", ready_ago=0.5),
     Memory(down_for=1.5, restarts=1), "restart-postgres", "primary-down-again"),
    ("... the postmaster was last ready before the restart: the restart failed", obs(DOWN, unit="failed", ready_ago=9),
     Memory(down_for=1.5, restarts=1), "hand-over", "primary-stays-down"),
    ("... came back and died again once too often", obs(DOWN, unit="failed", ready_ago=0.5),
     Memory(down_for=1.5, restarts=watch.MAX_RESTARTS), "hand-over", "primary-stays-down"),
    ("... the restart failed", obs(DOWN, unit="failed"), Memory(down_for=1, restarts=1), "hand-over",
     "primary-stays-down"),
    ("a running primary that stopped answering (hung)", obs(NodeState("unresponsive", 1, SYSID)), Memory(),
     "none", "unresponsive"),
    ("... still not answering at the deadline", obs(NodeState("unresponsive", 1, SYSID)),
     Memory(down_for=watch.UNRESPONSIVE_DEADLINE), "hand-over", "primary-unresponsive"),
    ("... the deadline reached during this check's read", obs(NodeState("unresponsive", 1, SYSID), unanswered_for=2),
     Memory(down_for=watch.UNRESPONSIVE_DEADLINE - 2), "hand-over", "primary-unresponsive"),
    ("... not before it", obs(NodeState("unresponsive", 1, SYSID), unanswered_for=1.9),
     Memory(down_for=watch.UNRESPONSIVE_DEADLINE - 2), "none", "unresponsive"),
    ("... not while the peer could not take over (its stop would only outlast a thaw)",
     obs(NodeState("unresponsive", 1, SYSID), peer_standby=False), Memory(down_for=9), "none",
     "unresponsive-no-successor"),
    ("... answering again: the count ends", obs(), Memory(down_for=3), "none", "primary"),
    ("... not while hapostgres runs (a promotion)", obs(NodeState("unresponsive", 1, SYSID), hapostgres_running=True),
     Memory(down_for=9), "none", "starting"),
    ("the data directory is gone", obs(NodeState("absent")), Memory(), "hand-over", "cannot-restart"),
    ("hapostgres is starting it", obs(DOWN, unit="inactive", hapostgres_running=True), Memory(), "none", "starting"),
    ("a stopped primary without the flag is left alone (the boot guard kept it down)",
     obs(DOWN, flag=False, vip=False, rsc="none"), Memory(), "none", "stopped-primary"),
    ("the cold-booted master, first up: a stopped primary once the others answer, for long",
     obs(DOWN, flag=False, vip=False, rsc="none", cluster_answers=True), Memory(unclaimed_for=watch.RECLAIM_AFTER),
     "reclaim", "stopped-primary-unclaimed"),
    ("... not before they answer", obs(DOWN, flag=False, vip=False, rsc="none"),
     Memory(unclaimed_for=watch.RECLAIM_AFTER), "none", "stopped-primary"),
    ("... not when a standby succeeded it", obs(DOWN, flag=False, vip=False, rsc="none", cluster_answers=True,
                                                deposition=FENCE), Memory(unclaimed_for=99), "none", "stopped-primary"),
    ("... not while another host is a primary", obs(DOWN, flag=False, vip=False, rsc="none", cluster_answers=True,
                                                    primary_elsewhere=True), Memory(unclaimed_for=99), "none",
     "stopped-primary"),
    ("... not while hapostgres runs", obs(DOWN, flag=False, vip=False, rsc="none", cluster_answers=True,
                                          hapostgres_running=True), Memory(unclaimed_for=99), "none", "stopped-primary"),
    ("... not while heartbeat settles", obs(DOWN, flag=False, vip=False, rsc="none", cluster_answers=True,
                                            heartbeat_settled=False), Memory(unclaimed_for=99), "none", "stopped-primary"),
    ("... heartbeat says it holds the group, nothing of it is here", obs(DOWN, flag=False, vip=False, rsc="all",
                                                                         cluster_answers=True),
     Memory(unclaimed_for=watch.RECLAIM_AFTER), "take-group", "stopped-primary-group-not-started"),
    ("... not while heartbeat is in transition", obs(DOWN, flag=False, vip=False, rsc="transition",
                                                     cluster_answers=True), Memory(unclaimed_for=99), "none",
     "stopped-primary"),
    ("a former primary", obs(deposition=FENCE), Memory(), "fence", "successor-timeline"),
    ("the newest primary without resources, not long", obs(flag=False, vip=False, rsc="none"),
     Memory(unclaimed_for=3), "none", "primary"),
    ("the newest primary without resources for long", obs(flag=False, vip=False, rsc="none"),
     Memory(unclaimed_for=watch.RECLAIM_AFTER), "reclaim", "newest-primary-unclaimed"),
    ("... heartbeat not settled yet", obs(flag=False, vip=False, rsc="none", heartbeat_settled=False),
     Memory(unclaimed_for=watch.RECLAIM_AFTER), "none", "primary"),
    ("a stray VIP, first sight", obs(STANDBY, flag=False, vip=True, rsc="none"), Memory(), "none", "standby"),
    ("a stray VIP, second sight", obs(STANDBY, flag=False, vip=True, rsc="none"), Memory(stray_vip_seen=1),
     "remove-vip", "stray-vip"),
    ("scenario 5: the peer dead, no primary, long enough", obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead"),
     Memory(peer_dead_for=watch.RETRY_AFTER), "retry-promotion", "peer-dead-no-primary"),
    ("... while hapostgres runs", obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead", hapostgres_running=True),
     Memory(peer_dead_for=10), "none", "standby"),
    ("... too soon after the last retry", obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead"),
     Memory(peer_dead_for=30, since_retry=5), "none", "standby"),
    ("... too soon, but a witness answers again since the last retry",
     obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead", hosts_reached=2, hosts_total=3),
     Memory(peer_dead_for=30, since_retry=1, reached_at_retry=1), "retry-promotion", "witness-back"),
    ("... too soon, the same hosts as at the last retry",
     obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead", hosts_reached=2, hosts_total=3),
     Memory(peer_dead_for=30, since_retry=1, reached_at_retry=2), "none", "standby"),
    ("... a witness back, but heartbeat restarted by the last retry is not settled",
     obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead", hosts_reached=2, hosts_total=3,
         heartbeat_settled=False), Memory(peer_dead_for=30, since_retry=1, reached_at_retry=1), "none", "standby"),
    ("... a primary exists elsewhere", obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead",
                                          primary_elsewhere=True), Memory(peer_dead_for=30), "none", "standby"),
    ("... heartbeat restarted by the last retry, not settled (its takeover is still to come)",
     obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead", heartbeat_settled=False),
     Memory(peer_dead_for=30, since_retry=watch.RETRY_EVERY), "none", "standby"),
    ("a standby's PostgreSQL killed (its unit failed)", obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed"),
     Memory(was_standby=True), "restart-postgres", "standby-down"),
    ("... a restart that failed again", obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed"),
     Memory(standby_restarts=1), "restart-postgres", "standby-down"),
    ("... stopped by an admin (inactive) is left alone", obs(STOPPED_STANDBY, flag=False, vip=False, unit="inactive"),
     Memory(was_standby=True), "none", "stopped-standby"),
    ("... never seen running: a rejoin's stopped former primary (unit failed at boot) is left to the task",
     obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed"), Memory(), "none", "stopped-standby"),
    ("... still down after the restarts", obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed"),
     Memory(standby_restarts=watch.MAX_RESTARTS), "none", "standby-stays-down"),
    ("... not while hapostgres runs", obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed", hapostgres_running=True),
     Memory(was_standby=True), "none", "stopped-standby"),
    ("heartbeat killed", obs(hb="failed"), Memory(), "start-heartbeat", "heartbeat-failed"),
    ("heartbeat stopped by an admin is left alone", obs(hb="inactive"), Memory(), "none", "primary"),
    ("scenario 12: the standby's heartbeat claims what it does not hold",
     obs(STANDBY, flag=False, vip=False, rsc="all"), Memory(claims_for=watch.STUCK_AFTER), "restart-heartbeat",
     "heartbeat-claims-resources"),
    ("... not while heartbeat settles", obs(STANDBY, flag=False, vip=False, rsc="all", heartbeat_settled=False),
     Memory(claims_for=watch.STUCK_AFTER), "none", "standby"),
    ("a primary while heartbeat is in transition is not reclaimed", obs(flag=False, vip=False, rsc="transition"),
     Memory(unclaimed_for=0), "none", "primary"),
    ("the primary's heartbeat stuck in transition (after a partition's hand-shake): restarted",
     obs(rsc="transition"), Memory(transition_for=watch.STUCK_AFTER), "restart-heartbeat",
     "heartbeat-stuck-in-transition"),
    ("... not before", obs(rsc="transition"), Memory(transition_for=watch.STUCK_AFTER - 1), "none", "primary"),
    ("a standby's heartbeat wedged in transition (its peer killed mid hand-shake): restarted",
     obs(STANDBY, flag=False, vip=False, rsc="transition"), Memory(transition_for=watch.STUCK_AFTER),
     "restart-heartbeat", "heartbeat-stuck-in-transition"),
    ("... not while a resource script runs (a promotion under way)",
     obs(STANDBY, flag=False, vip=False, rsc="transition", hapostgres_running=True),
     Memory(transition_for=watch.STUCK_AFTER), "none", "standby"),
    ("... not before heartbeat settled", obs(STANDBY, flag=False, vip=False, rsc="transition", heartbeat_settled=False),
     Memory(transition_for=watch.STUCK_AFTER), "none", "standby"),
    ("... not while heartbeat settles", obs(rsc="transition", heartbeat_settled=False),
     Memory(transition_for=watch.STUCK_AFTER), "none", "primary"),
    ("a master booted alone (its start refused), its heartbeat wedged in transition as its peer joined: restarted",
     obs(DOWN, flag=False, vip=False, unit="failed", rsc="transition"), Memory(transition_for=watch.STUCK_AFTER),
     "restart-heartbeat", "heartbeat-stuck-in-transition"),
    ("... not before", obs(DOWN, flag=False, vip=False, unit="failed", rsc="transition"),
     Memory(transition_for=watch.STUCK_AFTER - 1), "none", "stopped-primary"),
    ("... nor while its heartbeat starts the group (hapostgres runs)",
     obs(DOWN, flag=False, vip=False, unit="failed", rsc="transition", hapostgres_running=True),
     Memory(transition_for=99), "none", "stopped-primary"),
    ("... not while the resources really move (no flag: a hand-over, a switchover)",
     obs(flag=False, rsc="transition"), Memory(transition_for=99), "none", "primary"),
    ("a primary whose only synchronous standby is gone, for long: commits stop waiting",
     obs(SYNC_PRIMARY, **REACHES_2_OF_3), Memory(sync_missing_for=watch.SYNC_RELAX_AFTER), "relax-sync",
     "synchronous-standby-gone"),
    ("... not before", obs(SYNC_PRIMARY, **REACHES_2_OF_3), Memory(sync_missing_for=watch.SYNC_RELAX_AFTER - 1),
     "none", "primary"),
    ("... not once relaxed", obs(SYNC_PRIMARY, relaxed={"setting": SYNC}, **REACHES_2_OF_3),
     Memory(sync_missing_for=99), "none", "primary"),
    ("... not when cut off from the others (a standby beyond the cut may be promoted)",
     obs(SYNC_PRIMARY, hosts_reached=1, hosts_total=3, inventory_master=False), Memory(sync_missing_for=99), "none",
     "primary"),
    ("... not on the inventory's master (the cascade failover decides whom it waits for)",
     obs(SYNC_PRIMARY, hosts_reached=3, hosts_total=3, inventory_master=True), Memory(sync_missing_for=99), "none",
     "primary"),
    ("... back and caught up: synchronous again", obs(SYNC_BACK, relaxed={"setting": SYNC}), Memory(),
     "restore-sync", "synchronous-standby-back"),
    ("... back but far behind: not yet", obs(SYNC_BEHIND, relaxed={"setting": SYNC}), Memory(), "none", "primary"),
    ("a standby that was a relaxed primary: the override goes", obs(STANDBY, flag=False, vip=False, rsc="none",
                                                                   relaxed={"setting": SYNC}), Memory(),
     "restore-sync", "no-longer-primary"),
]


@pytest.mark.parametrize("o, m, decision, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_watch(o, m, decision, reason):
    verdict = watch.decide(o, m)
    assert (verdict.decision, verdict.reason) == (decision, reason), verdict.message


@pytest.mark.parametrize("rscstatus, preferred_here, holds", [
    ("all", True, True), ("local", True, True), ("foreign", True, False), ("none", True, False),
    ("all", False, True), ("foreign", False, True), ("local", False, False), ("none", False, False),
    ("transition", True, None), ("", False, None),
])
def test_holds_group(rscstatus, preferred_here, holds):
    """The healthy standby pg2 (not the preferred node) says 'local': it holds nothing."""
    assert watch.holds_group(rscstatus, preferred_here) is holds


def test_a_healthy_non_preferred_standby_saying_local_is_no_claim():
    o = obs(STANDBY, flag=False, vip=False, rsc="local", preferred_here=False)
    m = watch.remember(o, Memory(), Verdict("none", "standby"), 40)
    assert m.claims_for == 0 and watch.decide(o, Memory(claims_for=99)).decision == "none"


def test_transition_is_neither_unclaimed_nor_a_claim():
    m = watch.remember(obs(flag=False, vip=False, rsc="transition"), Memory(), Verdict("none", "primary"), 5)
    assert m.unclaimed_for == 0
    m = watch.remember(obs(STANDBY, flag=False, vip=False, rsc="transition"), Memory(), Verdict("none", "x"), 5)
    assert m.claims_for == 0
    m = watch.remember(obs(flag=False, vip=False, rsc="none"), Memory(), Verdict("none", "primary"), 5)
    assert m.unclaimed_for == 5


def test_transition_time_counts_on_the_flagged_primary_holding_the_vip_or_on_an_idle_standby():
    for o in (obs(rsc="transition"), obs(STANDBY, flag=False, vip=False, rsc="transition"),
              obs(DOWN, flag=False, vip=False, rsc="transition")):
        m = watch.remember(o, Memory(transition_for=10), Verdict("none", "primary"), 5)
        assert m.transition_for == 15
    for o in (obs(rsc="all"), obs(flag=False, rsc="transition"), obs(vip=False, rsc="transition"),
              obs(rsc="transition", hapostgres_running=True),
              obs(STANDBY, flag=False, vip=False, rsc="transition", hapostgres_running=True)):
        assert watch.remember(o, Memory(transition_for=10), Verdict("none", "x"), 5).transition_for == 0
    restarted = watch.remember(obs(rsc="transition"), Memory(transition_for=40), Verdict("restart-heartbeat", "x"), 5)
    assert restarted.transition_for == 0


def test_killed_again_while_its_start_job_runs_is_a_new_outage_though_the_pid_file_went():
    """Restarted, ready 0.2 s later, killed 0.6 s after that while pg_ctlcluster still waits: the
    failed start job removes postmaster.pid, so only the check that saw "ready" can tell."""
    m = Memory(down_for=0.0, restarts=1)
    starting = obs(DOWN, unit="activating", ready_ago=0.8)
    assert watch.decide(starting, m).reason == "starting"
    m = watch.remember(starting, m, watch.decide(starting, m), 1.0)
    assert m.came_back
    failed = obs(DOWN, unit="failed")  # no ready_ago: the pid file is gone
    assert watch.decide(failed, m)[:2] == ("restart-postgres", "primary-down-again")
    assert watch.decide(failed, m._replace(came_back=False))[:2] == ("hand-over", "primary-stays-down")
    after = watch.remember(failed, m, watch.decide(failed, m), 1.0)
    assert (after.came_back, after.restarts, after.down_for) == (False, 2, 0.0)


def test_a_check_that_cannot_tell_keeps_the_stuck_counts():
    """cl_status silent, or this host's PostgreSQL not answering in time (a loaded host): the time
    heartbeat has been stuck neither grows nor starts again; a plain answer resets it."""
    kept = Memory(transition_for=20, claims_for=25)
    for o in (obs(STANDBY, flag=False, vip=False, rsc=""), obs(rsc=""),
              obs(NodeState("unresponsive", 1, SYSID), flag=False, vip=False, rsc="transition")):
        m = watch.remember(o, kept, Verdict("none", "x"), 5)
        assert (m.transition_for, m.claims_for) == (20, 25)
    m = watch.remember(obs(STANDBY, flag=False, vip=False, rsc="none"), kept, Verdict("none", "standby"), 5)
    assert (m.transition_for, m.claims_for) == (0, 0)
    m = watch.remember(obs(rsc=""), kept, Verdict("restart-heartbeat", "x"), 5)
    assert (m.transition_for, m.claims_for) == (0, 0)
    m = watch.remember(obs(STANDBY, flag=False, vip=False, rsc="", hb="inactive"), kept, Verdict("none", "x"), 5)
    assert (m.transition_for, m.claims_for) == (0, 0)  # a stopped heartbeat is stuck in nothing


def test_sync_missing_time_counts_only_while_no_named_standby_streams():
    streaming = NodeState("primary", 2, SYSID, 1 << 30, synchronous_standby_names=SYNC,
                          replication=[Downstream("standby_2", "10.0.0.3", "streaming", "sync", 1 << 30)])
    none = Verdict("none", "primary", "")
    assert watch.remember(obs(SYNC_PRIMARY), Memory(sync_missing_for=3), none, 1.5).sync_missing_for == 4.5
    assert watch.remember(obs(streaming), Memory(sync_missing_for=3), none, 1.5).sync_missing_for == 0
    assert watch.remember(obs(PRIMARY), Memory(sync_missing_for=3), none, 1.5).sync_missing_for == 0  # names nobody
    relaxed = obs(SYNC_PRIMARY, relaxed={"setting": SYNC})
    assert watch.remember(relaxed, Memory(sync_missing_for=3), none, 1.5).sync_missing_for == 0


def test_memory_counts_wall_clock_time_and_resets():
    o = obs(DOWN, unit="failed")
    m = watch.remember(o, Memory(), watch.decide(o, Memory()), 0.7)
    assert m.restarts == 1 and m.down_for == 0.0
    m = watch.remember(o, m, Verdict("none", "starting"), 1.5)
    assert m.down_for == 1.5 and m.restarts == 1
    again = watch.remember(o, m, Verdict("restart-postgres", "primary-down-again"), 1.0)
    assert again.restarts == 2 and again.down_for == 0.0  # the deadline counts from the latest restart
    healthy = watch.remember(obs(), m, Verdict("none", "primary"), 1.0)
    assert healthy.down_for is None and healthy.restarts == 0
    waiting = obs(STANDBY, flag=False, vip=False, rsc="none", peer="dead")
    m = Memory()
    for _ in range(3):
        m = watch.remember(waiting, m, watch.decide(waiting, m), 2.0)
    assert m.since_retry == 0.0  # retried at 4 s, once
    assert watch.decide(waiting, m).decision == "none"
    alone = waiting._replace(hosts_reached=1, hosts_total=3)
    m = watch.remember(alone, m._replace(since_retry=None), Verdict("retry-promotion", "peer-dead-no-primary"), 1.0)
    assert m.reached_at_retry == 1
    back = alone._replace(hosts_reached=2)
    assert watch.decide(back, m).reason == "witness-back"  # the frozen witness answers again: at once
    m = watch.remember(back, m, watch.decide(back, m), 1.0)
    assert m.reached_at_retry == 2 and watch.decide(back, m).decision == "none"


def test_a_hung_primary_is_handed_over_at_its_second_silent_read():
    """The first silent read starts the count at the time it waited; the second reaches the deadline."""
    hung = obs(NodeState("unresponsive", 1, SYSID), unanswered_for=watch.LOCAL_READ_TIMEOUT)
    first = watch.decide(hung, Memory())
    assert first.decision == "none"
    m = watch.remember(hung, Memory(), first, watch.LOCAL_READ_TIMEOUT + 0.3)
    assert m.down_for == watch.LOCAL_READ_TIMEOUT
    assert watch.decide(hung, m).decision == "hand-over"


def test_a_primary_found_stopped_counts_from_zero():
    m = watch.remember(obs(DOWN, unit="failed"), Memory(), Verdict("none", "x"), 1)
    assert m.down_for == 0.0


RELEASE_CASES = [
    ("a link blip: heartbeat restarts itself", PRIMARY, True, False, KEEP, "keep", "heartbeat-restarting"),
    ("an admin stops heartbeat", PRIMARY, True, True, KEEP, "release", "heartbeat-stopping"),
    ("a former primary", PRIMARY, True, False, FENCE, "release", "former-primary"),
    ("no flag", PRIMARY, False, False, KEEP, "release", "not-flagged"),
    ("a standby", STANDBY, False, False, None, "release", "not-a-primary"),
    ("an admin stops heartbeat on the new primary, its peer a former primary", PRIMARY, True, True, KEEP, "keep",
     "peer-cannot-take-over"),
]


@pytest.mark.parametrize("local, flag, stop_job, deposition, decision, reason", [c[1:] for c in RELEASE_CASES],
                         ids=[c[0] for c in RELEASE_CASES])
def test_release(local, flag, stop_job, deposition, decision, reason):
    peer = NodeState("stopped-primary", 0, SYSID) if reason == "peer-cannot-take-over" else STANDBY
    verdict = release.decide(local, flag, stop_job, deposition, peer, "pg1")
    assert (verdict.decision, verdict.reason) == (decision, reason)


def test_release_during_ha_watchs_hand_over_reads_nothing(tmp_path):
    marker = tmp_path / "handing-over"
    assert not release.handing_over(str(marker))
    marker.write_text("")
    assert release.handing_over(str(marker))
    assert not release.handing_over(str(marker), now=marker.stat().st_mtime + release.HAND_OVER_FRESH)  # stale
    verdict = release.decide(None, False, False, None, handing_over=True)
    assert (verdict.decision, verdict.reason) == ("release", "handing-over")


def sync_primary(state="streaming", sync="sync", flush=1 << 30):
    return NodeState("primary", 1, SYSID, 1 << 30, replication=[Downstream("standby_1", "10.0.0.2", state, sync, flush)])


@pytest.mark.parametrize("kwargs, ok, fragment", [
    (dict(), True, ""),
    (dict(heartbeat_state="failed"), False, "heartbeat is failed on pg1"),
    (dict(rscstatus="none", holds=False), False, "holds 'none' resources"),
    (dict(peer_status="dead"), False, "sees pg2 as dead"),
    # may-promote asks the witnesses from the standby: the primary's own view of them is no reason
    (dict(witnesses={"pg3": NodeState("unreachable")}), True, ""),
    (dict(local=sync_primary(sync="async")), False, "not synchronous"),
    (dict(local=sync_primary(state="catchup")), False, "does not stream"),
    (dict(peer=NodeState("standby", 1, SYSID, 0)), False, "MB behind"),
])
def test_can_fail_over_from_the_primary(kwargs, ok, fragment):
    args = dict(self_name="pg1", peer_name="pg2", local=sync_primary(), flag=True, heartbeat_state="active",
                rscstatus="all", peer_status="active", witnesses={"pg3": STANDBY}, peer=STANDBY,
                peer_address="10.0.0.2", holds=True)
    args.update(kwargs)
    view = canfailover.evaluate(**args)
    assert view["can_fail_over"] is ok
    assert fragment in "; ".join(view["reasons"])


@pytest.mark.parametrize("witnesses, ok", [({"pg3": STANDBY}, True), ({"pg3": NodeState("unreachable")}, False)])
def test_can_fail_over_from_the_standby_needs_a_witness_it_reaches(witnesses, ok):
    standby = NodeState("standby", 1, SYSID, 1 << 30, streaming_from="10.0.0.1")
    view = canfailover.evaluate("pg2", "pg1", standby, False, "active", "none", "active", witnesses, None,
                                "10.0.0.1", holds=False)
    assert view["can_fail_over"] is ok, view["reasons"]
    assert ("no witness answers pg2 (pg3)" in "; ".join(view["reasons"])) is not ok


def test_can_fail_over_status_line():
    good = {"reasons": []}
    assert canfailover.status_line([good, good], ["pg1", "pg2"]) == "can fail over: yes"
    line = canfailover.status_line([good, None], ["pg1", "pg2"])
    assert line.startswith("can fail over: no, because no ha-watch report from pg2")
    bad = canfailover.evaluate("pg2", "pg1", STANDBY, False, "active", "all", "active", {"pg3": STANDBY}, None, "x",
                               holds=True)
    assert "claims the resources" in canfailover.status_line([good, bad], ["pg1", "pg2"])


def test_a_stopped_primary_counts_unclaimed_time_only_once_the_cluster_answers():
    alone = obs(DOWN, flag=False, vip=False, rsc="none")
    assert watch.remember(alone, Memory(), Verdict("none", "stopped-primary"), 5).unclaimed_for == 0
    answered = alone._replace(cluster_answers=True)
    m = watch.remember(answered, Memory(unclaimed_for=4), Verdict("none", "stopped-primary"), 5)
    assert m.unclaimed_for == 9
    assert watch.remember(answered, m, Verdict("reclaim", "stopped-primary-unclaimed"), 1).unclaimed_for == 0


ELSEWHERE = dict(primary_elsewhere=True)


@pytest.mark.parametrize("o, is_steady", [
    (obs(), True),
    (obs(hb="failed"), False),
    (obs(hb="deactivating"), False),
    (obs(vip=False), False),
    (obs(flag=False), False),
    (obs(STANDBY, flag=False, vip=False, **ELSEWHERE), True),
    (obs(STANDBY, flag=False, vip=False), False),  # no primary answers: the peer's death may matter now
    (obs(STANDBY, flag=False, vip=True, **ELSEWHERE), False),
    (obs(STANDBY, flag=True, vip=False, **ELSEWHERE), False),
    (obs(DOWN, unit="failed"), False),
    (obs(NodeState("starting", 1, SYSID)), False),
    (obs(NodeState("absent")), False),
])
def test_steady(o, is_steady):
    assert watch.steady(o.local, o.flag, o.vip_here, o.primary_elsewhere, o.heartbeat_state) is is_steady


@pytest.mark.parametrize("steady_now, ages, process, read_with, reread", [
    (True, (None, None), "46 100", "", (True, True)),  # never read
    (True, (1.0, 1.0), "46 100", "46 100", (False, False)),
    (True, (watch.REREAD_EVERY, 1.0), "46 100", "46 100", (True, False)),
    (True, (1.0, watch.UNITS_REREAD_EVERY), "46 100", "46 100", (False, True)),
    (False, (0.1, 0.1), "46 100", "46 100", (True, True)),
    (True, (0.1, 0.1), "", "46 100", (True, True)),  # heartbeat died
    (True, (0.1, 0.1), "46 200", "46 100", (True, True)),  # heartbeat restarted with the same pid
    (True, (0.1, 0.1), "", "", (True, True)),  # no heartbeat process known
])
def test_reread_words(steady_now, ages, process, read_with, reread):
    assert watch.reread_words(steady_now, *ages, process, read_with) == reread


WORD_VARIANTS = [dict(unit=u) for u in ("active", "failed", "inactive", "activating")] + [
    dict(rsc=r) for r in ("all", "local", "foreign", "none", "transition", "")] + [
    dict(peer=p) for p in ("active", "dead", "up", "")] + [
    dict(heartbeat_enabled=False), dict(heartbeat_settled=False)]
STEADY_CASES = [c for c in CASES + [("a standby", obs(STANDBY, flag=False, vip=False, **ELSEWHERE), Memory(), "", "")]
                if watch.steady(c[1].local, c[1].flag, c[1].vip_here, c[1].primary_elsewhere, c[1].heartbeat_state)]
SLOW = ("reclaim", "restart-heartbeat")  # decisions that wait RECLAIM_AFTER / STUCK_AFTER, far over REREAD_EVERY


@pytest.mark.parametrize("o, m", [c[1:3] for c in STEADY_CASES], ids=[c[0] for c in STEADY_CASES])
def test_words_of_an_earlier_check_change_only_slow_decisions_on_a_steady_node(o, m):
    """On a steady node (heartbeat active), whatever systemd and heartbeat say now instead of what
    they said REREAD_EVERY seconds ago, the decision is the same or a slow one (taken on words read
    again: hawatch reads them before acting)."""
    assert watch.REREAD_EVERY < min(watch.RECLAIM_AFTER, watch.STUCK_AFTER)
    decided = watch.decide(o, m).decision
    for variant in WORD_VARIANTS:
        args = {"unit": o.unit_state, "rsc": o.rscstatus, "peer": o.peer_status,
                "heartbeat_enabled": o.heartbeat_enabled, "heartbeat_settled": o.heartbeat_settled, **variant}
        varied = o._replace(unit_state=args["unit"], rscstatus=args["rsc"], peer_status=args["peer"],
                            heartbeat_enabled=args["heartbeat_enabled"], heartbeat_settled=args["heartbeat_settled"])
        for memory in (m, m._replace(unclaimed_for=99, claims_for=99, peer_dead_for=99, transition_for=99)):
            now, before = watch.decide(varied, memory).decision, watch.decide(o, memory).decision
            # a slow decision on either words is taken again on words read at that check
            assert now in (decided, before, *SLOW) or before in SLOW, (variant, memory, now)


def test_standby_restarts_count_until_it_runs_again():
    running = obs(STANDBY, flag=False, vip=False)
    m = watch.remember(running, Memory(), watch.decide(running, Memory()), 1.0)
    assert m.was_standby
    gone = obs(STOPPED_STANDBY, flag=False, vip=False, unit="active")  # systemd has not noticed yet
    m = watch.remember(gone, m, watch.decide(gone, m), 1.0)
    assert m.was_standby and watch.decide(gone, m).decision == "none"
    down = obs(STOPPED_STANDBY, flag=False, vip=False, unit="failed")
    for expected in (1, 2, 3):
        m = watch.remember(down, m, watch.decide(down, m), 1.0)
        assert m.standby_restarts == expected
    assert watch.decide(down, m).reason == "standby-stays-down"
    assert watch.remember(running, m, watch.decide(running, m), 1.0).standby_restarts == 0
