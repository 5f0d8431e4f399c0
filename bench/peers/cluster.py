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

    def members(self, exclude: tuple[str, ...] = ()) -> list[dict]:
        """Patroni's cluster view (GET /cluster), from the first member that answers."""
        return self._first_answer("/cluster", pf.REST_PORT, exclude)["members"]

    def leader(self, exclude: tuple[str, ...] = ()) -> str | None:
        return next((m["name"] for m in self.members(exclude) if m["role"] == "leader"), None)

    def healthy(self) -> str | None:
        """None when every member runs, one leads with a synchronous standby and the others
        replicate on its timeline; otherwise what is missing, in words."""
        try:
            members = self.members()
        except ConnectionError as error:
            return str(error)
        by_role: dict[str, list[dict]] = {}
        for m in members:
            by_role.setdefault(m["role"], []).append(m)
        if len(members) != len(self.addresses):
            return f"{len(members)} of {len(self.addresses)} members registered"
        if len(by_role.get("leader", [])) != 1:
            return f"leaders: {[m['name'] for m in by_role.get('leader', [])]}"
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
