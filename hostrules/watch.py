"""What ha-watch does on a heartbeat node, check by check (about every second).

heartbeat v1 watches its peer's node, not the resources: the primary's own PostgreSQL can die on
a live host, a refused promotion is never tried again, and its state machine can end up where it
no longer fails over. ha-watch observes, and this module decides, one action per check:

  restart-postgres  this node holds the resources (primary flag) but its PostgreSQL is down: start
                    it again in place (crash recovery), once per outage; again if it came back in
                    between (its postmaster said "ready" after the restart) and died once more, up
                    to MAX_RESTARTS times before ha-watch sees it answer;
  hand-over         ... and it did not come back within the restart deadline (or the start failed),
                    or it runs but has not answered for UNRESPONSIVE_DEADLINE (hung: frozen
                    processes, a stalled disk) while its peer is a standby that could take over:
                    the flag goes and heartbeat hands the resources to the peer (hb_standby);
  fence             a running primary whose timeline has a successor elsewhere (timeline.py);
  reclaim           the newest primary holds no resources for a while (heartbeat says so, or no
                    flag and no VIP), heartbeat settled: ask for them (hb_takeover); so does a
                    stopped primary the boot guard kept down once another host of the cluster
                    answers, none is a primary and none succeeded it (after a power cut of the
                    whole cluster the master may boot first: hapostgres then refuses, nobody being
                    there to say whether a standby was promoted, and heartbeat gives the
                    resources up for good);
  take-group        ... the same stopped primary while heartbeat says this node holds the resource
                    group although nothing of it is here (heartbeat counted it acquired without
                    running it: seen when the peer died during the boot): run the group's start as
                    heartbeat would (ResourceManager takegroup; hapostgres checks everything again);
  remove-vip        the VIP is here but hapostgres has not made this host the primary (seen twice);
  retry-promotion   a standby whose heartbeat peer is dead while no primary answers anywhere, for a
                    while, and no hapostgres is running: ask may-promote again and, if it agrees,
                    restart heartbeat here (with its peer dead it then takes every resource); again
                    every RETRY_EVERY seconds, and at once when it reaches more cluster hosts than at
                    its last try (a witness that was frozen or cut off answers again);
  relax-sync        a promoted primary (not the inventory's master: the cascade failover owns that
                    one's setting) that reaches a majority of the cluster hosts but none of whose
                    synchronous standbys (synchronous_standby_names) has streamed for
                    SYNC_RELAX_AFTER seconds (the standby died, or can no longer follow: promoted
                    by hand, away too long) while nothing else switches them (the cascade
                    failover acts sooner): every commit would wait for ever, so the
                    setting is emptied (ALTER SYSTEM, remembered in a state file, recorded in the
                    synchronous-set record: nobody is then guaranteed to hold every commit);
  restore-sync      ... and one of those standbys streams again, caught up: the setting is reset to
                    the managed one (or the node is no longer a primary: the override goes);
  restart-postgres  ... also a standby that ran here at the last check and whose unit failed
                    (killed, crashed): started again, up to MAX_RESTARTS times until it runs (an
                    admin's stop leaves it inactive: left alone);
  start-heartbeat   heartbeat is enabled here but failed (killed): start it again;
  restart-heartbeat a standby that holds nothing while its settled heartbeat says it holds the
                    resource group, for long (stuck: "Dead node gave up resources" and no takeover
                    follows); or the primary, with its flag and the VIP, whose settled heartbeat
                    says "transition" for as long (stuck in the resource hand-shake after a
                    partition: "Both machines own our resources!", then the peer going standby;
                    heartbeat restarting keeps the primary and its VIP: hostrules.release); or a
                    standby holding nothing whose heartbeat says "transition" for as long (a
                    hand-over request cut mid-way: "Standby in progress- new request ignored"),
                    or whose PostgreSQL is stopped (a master booted alone, its peer joining
                    during the takeover); never while hapostgres runs. ha-watch kills heartbeat
                    and starts it;
  none.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from hostrules.nodestate import NodeState
from hostrules.syncset import parse_names
from hostrules.verdict import Verdict

RESTART_DEADLINE = 6.0  # seconds a restarted primary has to answer before the resources are handed over
UNRESPONSIVE_DEADLINE = 3.0  # seconds a running primary may go without answering: two silent reads in a row
LOCAL_READ_TIMEOUT = 1.5  # seconds ha-watch waits for its own PostgreSQL's answer (a trivial query, kept-open session)
MAX_RESTARTS = 3  # in-place restarts of the primary before ha-watch has seen it answer again
RECLAIM_AFTER = 12.0  # seconds the newest primary goes without the resources before asking for them
RETRY_AFTER = 4.0  # seconds the peer is dead without a primary anywhere before the promotion is retried
RETRY_EVERY = 8.0  # seconds between two refused retries (each asks the witnesses once)
# "none" verdicts that leave the node waiting for an operator or a peer: ha-watch says each once,
# when it starts (the others are transient, or the normal state).
SAID_WAITS = ("standby-stays-down", "unresponsive-no-successor")
STUCK_AFTER = 30.0  # seconds a settled heartbeat may claim resources it does not hold, or stay in transition
SYNC_RELAX_AFTER = 10.0  # seconds a primary's synchronous standbys may all be gone before commits stop waiting
CAUGHT_UP_BYTES = 16 * 1024 * 1024  # a returning synchronous standby this close (one WAL segment) is caught up
REREAD_EVERY = 5.0  # seconds between two reads of heartbeat's words (cl_status) on a steady node
UNITS_REREAD_EVERY = 60.0  # ... of systemd's (the units' states) while heartbeat's process stays the same


class Observation(NamedTuple):
    local: NodeState
    flag: bool  # hapostgres made or confirmed this host's primary (the primary flag)
    vip_here: bool
    unit_state: str  # systemd ActiveState of the PostgreSQL unit: active, failed, inactive, activating...
    heartbeat_state: str  # systemd ActiveState of heartbeat
    heartbeat_enabled: bool
    heartbeat_settled: bool  # active for RECLAIM_AFTER seconds
    rscstatus: str  # cl_status rscstatus: all, local, foreign, none, transition ('' when unknown)
    peer_status: str  # cl_status nodestatus PEER: active, dead, up, ... ('' when unknown)
    hapostgres_running: bool
    ready_ago: Optional[float] = None  # seconds since the postmaster wrote "ready" in postmaster.pid (read when down)
    deposition: Optional[Verdict] = None  # timeline.successor_verdict, for a running primary
    primary_elsewhere: bool = False  # another cluster host answers as a primary
    preferred_here: bool = True  # this node is haresources's preferred node (the group is its "local" one)
    cluster_answers: bool = False  # another host of this cluster (system identifier) answers
    relaxed: Optional[dict] = None  # {"setting": ...} while ha-watch holds synchronous commit off (relax-sync)
    hosts_reached: int = 0  # cluster hosts this node reaches (itself included)
    hosts_total: int = 1
    inventory_master: bool = True  # this node is the inventory's master (its cascade's failover owns its setting)
    unanswered_for: float = 0.0  # seconds this check's read of an unresponsive server waited in vain
    peer_standby: bool = True  # the heartbeat peer answers as a standby of this cluster (it could take over)

    @property
    def holds(self) -> Optional[bool]:
        return holds_group(self.rscstatus, self.preferred_here)


class Memory(NamedTuple):
    """What the loop remembers between checks (seconds are wall-clock durations)."""

    down_for: Optional[float] = None  # the flagged primary has been down this long (None: it is not)
    restarts: int = 0  # in-place restarts since ha-watch last saw the flagged primary answer
    unclaimed_for: float = 0.0
    stray_vip_seen: int = 0
    peer_dead_for: float = 0.0  # dead peer and no primary anywhere, this standby holding nothing
    since_retry: Optional[float] = None
    claims_for: float = 0.0  # a standby's heartbeat claiming resources it does not hold
    sync_missing_for: float = 0.0  # a primary whose synchronous standbys all stopped streaming
    transition_for: float = 0.0  # the flagged primary's heartbeat saying "transition"
    reached_at_retry: int = 0  # cluster hosts this node reached at its last retry-promotion
    standby_restarts: int = 0  # restarts of this host's standby since it last ran
    was_standby: bool = False  # a running standby here at the last check, or since, down or starting
    came_back: bool = False  # the restarted primary said "ready" since the restart (seen at a check while down)


def holds_group(rscstatus: str, preferred_here: bool) -> Optional[bool]:
    """Does heartbeat say this node holds the resource group? (cl_status rscstatus: its *local*
    resources are the haresources lines whose preferred node it is, the *foreign* ones the
    peer's; a node that holds nothing still says "local" when it is not the preferred node.)
    None: heartbeat does not say (no answer, or "transition")."""
    if rscstatus not in ("all", "local", "foreign", "none"):
        return None
    return rscstatus in (("all", "local") if preferred_here else ("all", "foreign"))


def steady(local: NodeState, flag: bool, vip_here: bool, primary_elsewhere: bool, heartbeat_state: str) -> bool:
    """A node whose next decisions heartbeat's and systemd's words (the units' states, rscstatus,
    the peer's status) can only change slowly: heartbeat active, and this node the primary with the
    flag and the VIP, or a standby with neither while another host answers as the primary. The
    decisions that read those words there wait far longer than REREAD_EVERY (reclaim,
    restart-heartbeat); the others need a node that is down, starting, unflagged or alone, or
    heartbeat not active, which is never steady."""
    if heartbeat_state != "active":
        return False
    if local.state == "primary":
        return flag and vip_here
    if local.state == "standby":
        return not flag and not vip_here and primary_elsewhere
    return False


def reread_words(steady_now: bool, heartbeat_age: Optional[float], units_age: Optional[float],
                 heartbeat_process: str, read_with: str) -> Tuple[bool, bool]:
    """Read (heartbeat's words, systemd's words) at this check? Both, unless the node is steady
    and heartbeat's process is the one that ran at the last read (`heartbeat_process`: its pid and
    start time, '' when none runs; `read_with`: the same at that read): a heartbeat that died or
    restarted is seen at the next check. On a steady node heartbeat's words (rscstatus, the peer's
    status) are read every REREAD_EVERY seconds; systemd's every UNITS_REREAD_EVERY seconds: while
    heartbeat's process is the same its unit stays active since the same moment, and the
    PostgreSQL unit's state only matters for a node that does not run (never steady). Ages:
    seconds since the last read, None when never read."""
    if not steady_now or not heartbeat_process or heartbeat_process != read_with:
        return True, True
    return (heartbeat_age is None or heartbeat_age >= REREAD_EVERY,
            units_age is None or units_age >= UNITS_REREAD_EVERY)


def act(decision: str, reason: str, message: str = "") -> Verdict:
    return Verdict(decision, reason, message)


def decide(o: Observation, m: Memory) -> Verdict:
    local = o.local
    if o.heartbeat_enabled and o.heartbeat_state == "failed":
        return act("start-heartbeat", "heartbeat-failed",
                   "heartbeat is enabled here but failed (killed?): starting it again")
    if o.vip_here and not o.flag and m.stray_vip_seen >= 1:
        return act("remove-vip", "stray-vip",
                   "the VIP is here but hapostgres has not made this host the primary (no primary flag): "
                   "removing the leftover address")
    if o.flag and local.state != "primary":
        restarted = m.restarts > 0 and not (m.came_back or came_back_since_restart(o, m))
        if local.state == "unresponsive" and not o.hapostgres_running:
            # A hand-over queues the hung server's stop: with nobody to take over, that would only
            # turn a server that may thaw into one that is stopped when it does.
            if not o.peer_standby:
                return act("none", "unresponsive-no-successor",
                           "PostgreSQL does not answer, but the heartbeat peer is no standby that could take over: "
                           "waiting for it")
            # counted to the end of this check's read, which found it silent too
            if m.down_for is not None and m.down_for + o.unanswered_for >= UNRESPONSIVE_DEADLINE:
                return act("hand-over", "primary-unresponsive",
                           f"PostgreSQL has not answered for {m.down_for + o.unanswered_for:.0f} s although its "
                           "postmaster runs and said it was ready (hung: frozen processes, a stalled disk): handing "
                           "the resources to the peer")
            return act("none", "unresponsive", "PostgreSQL does not answer")
        if local.state == "starting" or o.unit_state in ("activating", "reloading") or o.hapostgres_running:
            if m.down_for is not None and m.down_for >= RESTART_DEADLINE and restarted:
                return act("hand-over", "restart-too-slow",
                           f"PostgreSQL did not answer {RESTART_DEADLINE:.0f} s after its restart: handing the "
                           "resources to the peer")
            return act("none", "starting", "PostgreSQL is starting")
        if not restarted and local.state == "stopped-primary" and m.restarts < MAX_RESTARTS:
            return act("restart-postgres", "primary-down" if m.restarts == 0 else "primary-down-again",
                       f"this host holds the resources but its PostgreSQL is down ({local.line()}, unit "
                       f"{o.unit_state}): starting it again in place")
        # The start is queued, not waited for: a stop still under way (unit deactivating) delays it.
        if restarted and (m.down_for or 0.0) < RESTART_DEADLINE and o.unit_state != "failed":
            return act("none", "restart-pending", "PostgreSQL was started again: waiting for it to answer")
        return act("hand-over", "primary-stays-down" if m.restarts else "cannot-restart",
                   f"this host holds the resources but its PostgreSQL is '{local.line()}' (unit {o.unit_state})"
                   + (f" after {m.restarts} restart(s)" if m.restarts else "")
                   + ": handing the resources to the peer")
    if local.state == "primary":
        if o.deposition is not None and o.deposition.decision == "fence":
            return act("fence", o.deposition.reason, o.deposition.message + "; stopping it")
        if stuck_in_transition(o) and m.transition_for >= STUCK_AFTER and o.heartbeat_settled:
            return act("restart-heartbeat", "heartbeat-stuck-in-transition",
                       f"heartbeat has said 'transition' for {m.transition_for:.0f} s while this host holds the primary "
                       "flag and the VIP (stuck: the cluster cannot fail over meanwhile): restarting heartbeat here "
                       "(the primary and its VIP stay)")
        if m.unclaimed_for >= RECLAIM_AFTER and o.heartbeat_settled:
            return act("reclaim", "newest-primary-unclaimed",
                       f"PostgreSQL is the newest primary (timeline {local.timeline}) but heartbeat says this "
                       f"host holds no resources ({o.rscstatus or 'no flag, no VIP'}): asking for them (hb_takeover)")
        # Only with a majority of the cluster in reach: a primary cut off from the others keeps
        # waiting, since a standby beyond the cut may be promoted and its commits would be lost.
        # Not on the inventory's master: its synchronous standby is the cascade, whose failover
        # (automatic, or tasks/failover_cascade.py by hand) decides whom it waits for.
        if (o.relaxed is None and m.sync_missing_for >= SYNC_RELAX_AFTER and 2 * o.hosts_reached > o.hosts_total
                and not o.inventory_master):
            return act("relax-sync", "synchronous-standby-gone",
                       f"none of the synchronous standbys ({local.synchronous_standby_names}) has streamed for "
                       f"{m.sync_missing_for:.0f} s: every commit would wait for ever; synchronous commit off "
                       "until one is back")
        back = returned_synchronous(local, o.relaxed)
        if back:
            return act("restore-sync", "synchronous-standby-back",
                       f"{back} streams again and caught up: synchronous commit back on ({(o.relaxed or {}).get('setting')})")
        return act("none", "primary", "")
    if o.relaxed is not None and local.state == "standby":
        return act("restore-sync", "no-longer-primary",
                   "this node is no longer a primary: the synchronous-commit override goes")
    if local.state == "stopped-primary" and not o.flag and not o.vip_here:
        if (stopped_primary_unclaimed(o) and m.unclaimed_for >= RECLAIM_AFTER and o.heartbeat_settled
                and not o.hapostgres_running and o.holds is True):
            return act("take-group", "stopped-primary-group-not-started",
                       f"PostgreSQL is a stopped primary (timeline {local.timeline}) that no other host succeeded, "
                       "the cluster's other hosts answer and none is a primary; heartbeat says this host holds "
                       f"the resources ({o.rscstatus}) but neither the primary flag nor the VIP is here: starting "
                       "the resource group as heartbeat would (ResourceManager takegroup)")
        if (stopped_primary_unclaimed(o) and m.unclaimed_for >= RECLAIM_AFTER and o.heartbeat_settled
                and not o.hapostgres_running):
            return act("reclaim", "stopped-primary-unclaimed",
                       f"PostgreSQL is a stopped primary (timeline {local.timeline}) that no other host succeeded, "
                       "the cluster's other hosts answer and none is a primary, but heartbeat says this host "
                       f"holds no resources ({o.rscstatus or 'no flag, no VIP'}): asking for them (hb_takeover)")
    if (local.state == "stopped-standby" and not o.flag and not o.hapostgres_running and o.unit_state == "failed"
            and (m.was_standby or m.standby_restarts > 0)):
        # It ran as a standby at the last check, or ha-watch is restarting it: a standby that died
        # (killed, crashed), not one a task is making (a rejoin writes standby.signal into a
        # stopped former primary, whose unit may have failed at boot: boot-guard), and not one
        # stopped (an admin's stop, a clone's, leave the unit inactive).
        if m.standby_restarts < MAX_RESTARTS:
            return act("restart-postgres", "standby-down",
                       f"PostgreSQL here, a standby, is down ({local.line()}, unit failed): starting it again")
        return act("none", "standby-stays-down",
                   f"PostgreSQL here, a standby, is still down after {m.standby_restarts} restarts: left to the "
                   "operator (journalctl -u postgresql@*, then the deploy or tasks/rebuild.py)")
    if local.state == "standby" and not o.flag and not o.vip_here:
        # heartbeat settled: a retry restarts it, and it takes the resources only after its initdead;
        # a second restart meanwhile would stop the promotion the first one started.
        may_retry = (m.peer_dead_for >= RETRY_AFTER and not o.hapostgres_running and not o.primary_elsewhere
                     and o.heartbeat_settled)
        if may_retry and (m.since_retry is None or m.since_retry >= RETRY_EVERY):
            return act("retry-promotion", "peer-dead-no-primary",
                       f"the peer has been dead for {m.peer_dead_for:.0f} s and no host is a primary: asking "
                       "may-promote again")
        if may_retry and m.since_retry is not None and o.hosts_reached > m.reached_at_retry:
            return act("retry-promotion", "witness-back",
                       f"the peer has been dead for {m.peer_dead_for:.0f} s, no host is a primary, and this node "
                       f"reaches {o.hosts_reached - m.reached_at_retry} more cluster host(s) than at its last "
                       "try: asking may-promote again")
        if o.holds is True and m.claims_for >= STUCK_AFTER and o.peer_status == "active" and o.heartbeat_settled:
            return act("restart-heartbeat", "heartbeat-claims-resources",
                       f"heartbeat here says it holds the resources ({o.rscstatus}) but this standby holds "
                       "nothing: restarting heartbeat here (it holds nothing to release)")
    # A node holding nothing (the primary's case is above, where its VIP stays).
    if stuck_in_transition(o) and m.transition_for >= STUCK_AFTER and o.heartbeat_settled:
        return act("restart-heartbeat", "heartbeat-stuck-in-transition",
                   f"heartbeat has said 'transition' for {m.transition_for:.0f} s on this host, which holds "
                   f"nothing (PostgreSQL {local.state}, no primary flag, no VIP) and runs no resource script "
                   "(a hand-shake that never ended: the cluster cannot fail over meanwhile): restarting "
                   "heartbeat here")
    return act("none", local.state, "")


def synchronous_names(setting: str) -> list:
    return parse_names(setting)[2]


def streaming_names(local: NodeState) -> set:
    return {d.application_name for d in local.replication if d.state == "streaming"}


def synchronous_missing(local: NodeState) -> bool:
    """A running primary that names synchronous standbys, none of which streams to it."""
    names = synchronous_names(local.synchronous_standby_names)
    return (local.state == "primary" and bool(names) and "*" not in names
            and not (set(names) & streaming_names(local)))


def returned_synchronous(local: NodeState, relaxed: Optional[dict]) -> str:
    """The first standby of the relaxed setting that streams again within CAUGHT_UP_BYTES ('' if none)."""
    if not relaxed or local.state != "primary":
        return ""
    for row in local.replication:
        if (row.application_name in synchronous_names(relaxed.get("setting") or "") and row.state == "streaming"
                and row.flush_lsn is not None and local.lsn is not None
                and local.lsn - row.flush_lsn <= CAUGHT_UP_BYTES):
            return row.application_name
    return ""


def came_back_since_restart(o: Observation, m: Memory) -> bool:
    """The restarted PostgreSQL came up (its postmaster said "ready" after the restart, which
    down_for counts from) and is down again before ha-watch saw it answer: a new outage. (Its
    systemd unit is no witness: Debian's pg_ctlcluster returns seconds after the server is ready.)"""
    return (m.restarts > 0 and m.down_for is not None and o.ready_ago is not None
            and o.ready_ago < m.down_for)


HOLDING_NOTHING_STATES = ("standby", "stopped-primary", "stopped-standby")


def stuck_in_transition(o: Observation) -> bool:
    """heartbeat says the resources are moving, while no hapostgres runs (no start or stop under
    way: the restart kills heartbeat's processes), here on the primary with its flag and the VIP,
    or on a node holding neither whose PostgreSQL is a standby or stopped (a master that booted
    alone after a power cut, its start refused by the boot guard: "T_STARTING received during
    takeover" as its peer joined, then "transition" for good)."""
    if o.rscstatus != "transition" or o.hapostgres_running:
        return False
    if o.local.state == "primary":
        return o.flag and o.vip_here
    return o.local.state in HOLDING_NOTHING_STATES and not o.flag and not o.vip_here


def unclear_check(o: Observation) -> bool:
    """This check cannot say whether a running heartbeat is stuck: cl_status gave no answer, or
    this host's running PostgreSQL did not answer ha-watch's read in time. (A heartbeat that is
    not active is stuck in nothing: its counts start again.)"""
    return o.heartbeat_state == "active" and (o.rscstatus == "" or o.local.state == "unresponsive")


def stopped_primary_unclaimed(o: Observation) -> bool:
    """A stopped primary without the resources (no flag, no VIP; heartbeat's word known) that may
    have them: other hosts of the cluster answer, none is a primary, none knows a successor
    timeline (o.deposition says keep)."""
    return (o.local.state == "stopped-primary" and not o.flag and not o.vip_here and o.holds is not None
            and o.cluster_answers and not o.primary_elsewhere
            and o.deposition is not None and o.deposition.decision == "keep")


def remember(o: Observation, m: Memory, verdict: Verdict, elapsed: float) -> Memory:
    """The memory for the next check, `elapsed` seconds later."""
    local = o.local
    down = o.flag and local.state != "primary"
    # down_for counts from the outage's start, then from each restart (the restart deadline's clock).
    # A hung server's outage began at the latest when the read that found it silent was sent.
    if not down:
        down_for = None
    elif verdict.decision == "restart-postgres":
        down_for = 0.0
    elif m.down_for is None:
        down_for = o.unanswered_for if local.state == "unresponsive" else 0.0
    else:
        down_for = m.down_for + elapsed
    restarts = 0 if not down or verdict.decision == "hand-over" else m.restarts + (verdict.decision == "restart-postgres")
    # Killed again while its start job still runs, the postmaster's pid file goes with the failed
    # job: that it came back is remembered from the check that saw its "ready".
    # (down_for is now the time since the restart, this check's interval included.)
    came_back = (down and verdict.decision not in ("restart-postgres", "hand-over")
                 and (m.came_back or came_back_since_restart(o, m._replace(down_for=down_for))))
    # heartbeat's word when it has one ("transition": it is moving them, wait); else the flag and the VIP.
    unclaimed = (local.state == "primary" and (o.holds is False
                                               or (o.rscstatus == "" and not o.flag and not o.vip_here))
                 or stopped_primary_unclaimed(o))
    unclaimed_for = 0.0 if verdict.decision in ("reclaim", "take-group") else (m.unclaimed_for + elapsed if unclaimed else 0.0)
    stray = m.stray_vip_seen + 1 if (o.vip_here and not o.flag and verdict.decision != "remove-vip") else 0
    waiting = (local.state == "standby" and not o.flag and not o.vip_here and o.peer_status == "dead"
               and not o.primary_elsewhere)
    peer_dead_for = m.peer_dead_for + elapsed if waiting else 0.0
    if verdict.decision == "retry-promotion":
        since_retry = 0.0
    elif m.since_retry is not None and waiting:
        since_retry = m.since_retry + elapsed
    else:
        since_retry = None
    claims = local.state == "standby" and not o.flag and not o.vip_here and o.holds is True
    # A check that could not tell (heartbeat or PostgreSQL gave no answer in time: a loaded host)
    # keeps the counts where they were: only a word that the node is not stuck resets them.
    unclear = unclear_check(o)
    if verdict.decision == "restart-heartbeat":
        claims_for = transition_for = 0.0
    elif unclear:
        claims_for, transition_for = m.claims_for, m.transition_for
    else:
        claims_for = m.claims_for + elapsed if claims else 0.0
        transition_for = m.transition_for + elapsed if stuck_in_transition(o) else 0.0
    missing = o.relaxed is None and synchronous_missing(local) and verdict.decision != "relax-sync"
    sync_missing_for = m.sync_missing_for + elapsed if missing else 0.0
    reached_at_retry = o.hosts_reached if verdict.decision == "retry-promotion" else m.reached_at_retry
    # systemd may tell of the unit's failure a check after the server is gone: the standby it was is
    # remembered until it runs again or becomes something else.
    was_standby = local.state == "standby" or (m.was_standby and local.state in ("stopped-standby", "starting"))
    standby_restarts = (0 if local.state in ("standby", "primary")
                        else m.standby_restarts + (verdict.reason == "standby-down"))
    return Memory(down_for, restarts, unclaimed_for, stray, peer_dead_for, since_retry, claims_for, sync_missing_for,
                  transition_for, reached_at_retry, standby_restarts, was_standby, came_back)
