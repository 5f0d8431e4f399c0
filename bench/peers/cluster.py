"""The Patroni peer seen from the main machine: its REST API and etcd's v2 keys, with deadlines.

Read-only except set_timing (Patroni's dynamic configuration, PATCH /config)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from bench.peers import patroni_files as pf


def _get(url: str, timeout: float = 1.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Peer:
    def __init__(self, desc: dict):
        self.desc = desc
        self.addresses = {h["name"]: h["ip"] for h in desc["hosts"]}

    def _first_answer(self, path: str, port: int, exclude: tuple[str, ...] = ()):
        errors = []
        for name, address in self.addresses.items():
            if name in exclude:
                continue
            try:
                return _get(f"http://{address}:{port}{path}")
            except (OSError, urllib.error.URLError, ValueError) as error:
                errors.append(f"{name}: {error}")
        raise ConnectionError(f"no member answered {path}: " + "; ".join(errors))

    def members(self, exclude: tuple[str, ...] = (), only: str | None = None) -> list[dict]:
        """Patroni's cluster view (GET /cluster), from the first member that answers (or `only`'s).
        A member's view is its own last read of etcd: one whose loop is blocked (retrying etcd
        after a partition, demoting) answers with what it saw before, so a view that decides
        anything is the leader's (`only`=the member the leader key names)."""
        if only is not None:
            return _get(f"http://{self.addresses[only]}:{pf.REST_PORT}/cluster")["members"]
        return self._first_answer("/cluster", pf.REST_PORT, exclude)["members"]

    def leader(self, exclude: tuple[str, ...] = ()) -> str | None:
        return next((m["name"] for m in self.members(exclude) if m["role"] == "leader"), None)

    def status(self, name: str) -> dict:
        """A member's own report on its PostgreSQL (GET /patroni): state, role, timeline and, on
        the primary, pg_stat_replication (`replication`: application_name, state, sync_state)."""
        return _get(f"http://{self.addresses[name]}:{pf.REST_PORT}/patroni", timeout=3.0)

    def healthy(self) -> str | None:
        """None when every member runs, one leads with a synchronous standby and the others
        replicate on its timeline; otherwise what is missing, in words. Read from the sources of
        truth, not from any member's cached view: the leader and /sync keys through etcd's
        quorum, the leader's cluster view and pg_stat_replication, each replica's own report."""
        try:
            leader = self.leader_key()["value"]
        except (ConnectionError, KeyError) as error:
            return f"no leader key: {error}"
        try:
            members = self.members(only=leader)
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            return f"the leader {leader} does not answer /cluster: {error}"
        problem = view_problem(members, len(self.addresses), leader)
        if problem is not None:
            return problem
        try:
            sync = json.loads(self._key("sync").get("value") or "{}")
        except (ConnectionError, ValueError) as error:
            return f"no /sync key: {error}"
        try:
            statuses = {name: self.status(name) for name in self.addresses}
        except (OSError, urllib.error.URLError, ValueError) as error:
            return f"a member does not answer /patroni: {error}"
        return live_problem(leader, sync, statuses)

    def wait_healthy(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (problem := self.healthy()) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the Patroni cluster is not healthy after {seconds:.0f} s: {problem}")
            time.sleep(0.5)

    # ---- etcd (v2 keys, where Patroni 3.0 keeps its state)

    def _key(self, key: str, exclude: tuple[str, ...] = ()) -> dict:
        # quorum=true: read through etcd's leader, never a lagging member's copy
        return self._first_answer(f"/v2/keys{pf.NAMESPACE}{pf.SCOPE}/{key}?recursive=true&quorum=true",
                                  pf.ETCD_CLIENT_PORT, exclude)["node"]

    def leader_key(self, exclude: tuple[str, ...] = ()) -> dict:
        """The leader key: value (a member name), ttl (seconds left), modifiedIndex."""
        return self._key("leader", exclude)

    def set_timing(self, timing: dict, seconds: float = 90) -> dict:
        """Patroni's dynamic configuration to `timing` (PATCH /config on the leader), then wait
        until the leader renewed its key and every member its own since the change: from then on
        every member runs with it. Returns the leader key as then seen (its ttl shows the timing)."""
        problems = pf.timing_problems(timing)
        if problems:
            raise ValueError(f"Patroni would refuse {timing}: {'; '.join(problems)}")
        leader = self.leader()
        request = urllib.request.Request(f"http://{self.addresses[leader]}:{pf.REST_PORT}/config", method="PATCH",
                                         data=json.dumps(timing).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            applied = json.loads(response.read())
        if any(applied.get(k) != v for k, v in timing.items()):
            raise AssertionError(f"{leader}: Patroni answered the PATCH with {applied}")
        changed = self._key("config")["modifiedIndex"]
        deadline = time.monotonic() + seconds
        while True:
            members = self._key("members").get("nodes", [])
            leader_key = self.leader_key()
            if leader_key["modifiedIndex"] > changed and len(members) == len(self.addresses) \
                    and all(m["modifiedIndex"] > changed for m in members):
                return leader_key
            if time.monotonic() > deadline:
                raise AssertionError(f"the members did not renew their keys within {seconds:.0f} s of the timing change")
            time.sleep(0.5)


def view_problem(members: list[dict], expected: int, leader: str | None = None) -> str | None:
    """What a cluster view (GET /cluster's members) lacks for a healthy cluster led by `leader`
    (any leader when None); None when nothing."""
    by_role: dict[str, list[dict]] = {}
    for m in members:
        by_role.setdefault(m["role"], []).append(m)
    if len(members) != expected:
        return f"{len(members)} of {expected} members registered"
    leaders = [m["name"] for m in by_role.get("leader", [])]
    if len(leaders) != 1 or leader is not None and leaders != [leader]:
        return f"leaders: {leaders}" + (f" (the leader key names {leader})" if leader is not None else "")
    if not by_role.get("sync_standby"):
        return "no synchronous standby yet"
    not_running = [m["name"] for m in members if m["state"] != "running"]
    if not_running:
        return f"not running: {not_running}"
    timeline = by_role["leader"][0].get("timeline")
    # Patroni reports the lag of a member it cannot tell as "unknown": not caught up either.
    behind = [m["name"] for m in members if m.get("timeline", timeline) != timeline
              or not isinstance(m.get("lag") or 0, int) or (m.get("lag") or 0) > 16 << 20]
    return f"not caught up: {behind}" if behind else None


def live_problem(leader: str, sync: dict, statuses: dict[str, dict]) -> str | None:
    """What the live state lacks: the /sync key written by this leader and naming a standby,
    the leader's PostgreSQL a primary streaming to every other member with that standby in
    sync, every other member's PostgreSQL a running replica on the leader's timeline."""
    if sync.get("leader") != leader or not sync.get("sync_standby"):
        return f"the /sync key is {sync or 'empty'}, not a synchronous standby of {leader}"
    standbys = [s.strip() for s in sync["sync_standby"].split(",") if s.strip()]
    own = statuses[leader]
    if own.get("state") != "running" or own.get("role") not in ("master", "primary"):
        return f"{leader} leads but reports {own.get('state')} {own.get('role')}"
    streaming = {r.get("application_name"): r for r in own.get("replication") or [] if r.get("state") == "streaming"}
    others = [name for name in statuses if name != leader]
    missing = [name for name in others if name not in streaming]
    if missing:
        return f"not streaming from {leader}: {missing}"
    not_sync = [name for name in standbys if streaming[name].get("sync_state") != "sync"] \
        if all(name in streaming for name in standbys) else standbys
    if not_sync:
        return f"{not_sync} named in /sync but not synchronous on {leader}"
    wrong = [f"{name}: {status.get('state')} {status.get('role')} timeline {status.get('timeline')}"
             for name, status in statuses.items() if name != leader
             and (status.get("state") != "running" or status.get("role") != "replica"
                  or status.get("timeline") != own.get("timeline"))]
    return f"not replicas on {leader}'s timeline {own.get('timeline')}: {wrong}" if wrong else None
