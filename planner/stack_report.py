"""The whole HA stack beyond the replication tree (pure): drift of every registry entry, heartbeat
and the VIP, the monitors, the archiver and the synchronous guarantee; as text and as the stable
JSON document of `tasks.status --json` (docs/status-json.md).

Inputs: the topology, each host's registry (planner.registry.entries), PgState and
ManagedState facts (None: not read).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hostrules import canfailover
from planner import registry
from planner.model import Node, Topology
from planner.pgstate import PgStateDict, timeline_or_zero
from planner.standby_plan import server_state

FORMAT = "pgcascade-status/1"
SYNCHRONOUS_STATES = ("sync", "quorum")


def live_of(fact: PgStateDict | None, managed: Mapping | None) -> registry.Live:
    """The host's live role, for a repair's disturbance."""
    # heartbeat's own rscstatus says "local" on both nodes of a v1 pair: the VIP says who holds.
    return registry.Live(primary=server_state(fact) == "primary", holds_resources=bool((managed or {}).get("vip")))


def drifts(topology: Topology, registries: Mapping[str, registry.HostRegistry],
           facts: Mapping[str, PgStateDict | None], managed: Mapping[str, Mapping | None]) -> list[registry.Drift]:
    """Every drifted entry on every host that could be read, in topology order."""
    public_keys = {name: (m or {}).get("public_key") for name, m in managed.items()}
    result = []
    for node in topology.nodes:
        state = managed.get(node.name)
        if state is None:
            continue
        peers = {p: public_keys.get(p) for p in public_keys if p != node.name}
        result += registry.diff_host(registries[node.name], state, live_of(facts.get(node.name), state),
                                     peer_public_keys=peers if all(peers.values()) else None)
    return result


def heartbeat_view(topology: Topology, managed: Mapping[str, Mapping | None]) -> dict:
    """heartbeat on each node (running, its resource state) and where the VIP is."""
    cluster = topology.cluster
    nodes: dict[str, dict[str, Any]] = {}
    for node in topology.vip_holders if cluster.vip else ():
        state = managed.get(node.name)
        if state is None:
            nodes[node.name] = {"running": None, "resources": None, "vip": None}
            continue
        hb = state.get("heartbeat")
        nodes[node.name] = {"running": hb is not None, "resources": (hb or {}).get("resources"),
                            "vip": bool(state.get("vip"))}
    holders = sorted(name for name, n in nodes.items() if n["vip"])
    return {"vip_address": cluster.vip.address if cluster.vip else None, "vip_holders": holders, "nodes": nodes}


def monitors_view(registries: Mapping[str, registry.HostRegistry],
                  managed: Mapping[str, Mapping | None]) -> dict:
    """The units a host must run besides PostgreSQL (heartbeat, ha-watch, the cascade monitor)."""
    result = {}
    for name, reg in registries.items():
        units = ((managed.get(name) or {}).get("units")) or {}
        wanted = [u.unit for u in reg.units if u.present and not u.unit.startswith("postgresql@")]
        result[name] = {u: units.get(u, {}).get("active") if managed.get(name) else None for u in wanted}
    return result


def archiving_view(topology: Topology, managed: Mapping[str, Mapping | None]) -> dict:
    """Per host: last archived vs the current WAL file, failures, and whether it is failing."""
    result: dict[str, dict[str, Any] | None] = {}
    for node in topology.nodes:
        postgres = (managed.get(node.name) or {}).get("postgres") or {}
        archiver = postgres.get("archiver")
        if not archiver:
            result[node.name] = None
            continue
        failed, last = archiver.get("last_failed_wal"), archiver.get("last_archived_wal")
        result[node.name] = {
            "last_archived_wal": last, "current_wal": postgres.get("current_wal"),
            "archived_count": archiver.get("archived_count"), "failed_count": archiver.get("failed_count"),
            "last_failed_wal": failed,
            "failing": bool(archiver.get("failed_count") and failed and (last is None or failed > last)),
        }
    return result


def live_primary(topology: Topology, facts: Mapping[str, PgStateDict | None]) -> Node | None:
    """The node that takes writes now: the inventory's master while it is a running primary, else
    the running primary on the newest timeline (after a failover); None when there is none."""
    if server_state(facts.get(topology.master.name)) == "primary":
        return topology.master
    running = [n for n in topology.nodes if server_state(facts.get(n.name)) == "primary"]
    return max(running, key=lambda n: timeline_or_zero(facts[n.name]), default=None)


def failed_over(topology: Topology, facts: Mapping[str, PgStateDict | None]) -> dict | None:
    """After a failover: who took over, and what the DBA runs to get the inventory's tree back."""
    now = live_primary(topology, facts)
    if now is None or now.name == topology.master.name:
        return None
    old = topology.master.name
    fact = facts[now.name]
    timeline = fact["timeline"] if fact else None
    return {"primary": now.name, "timeline": timeline,
            "line": (f"failed over: {now.name} is the primary (timeline {timeline}), "
                     f"not {old}: once {old} is back (its PostgreSQL stays stopped), run "
                     f"`pyinfra INVENTORY tasks/rejoin.py` to make it a standby of {now.name}, then "
                     f"`pyinfra INVENTORY tasks/switchover.py` to return to the inventory's roles")}


def synchronous_guarantee(topology: Topology, facts: Mapping[str, PgStateDict | None],
                          managed: Mapping[str, Mapping | None]) -> dict:
    """{"on": bool|None, "reason": str}: does a commit on the master wait for a standby now?"""
    cluster = topology.cluster
    if not cluster.synchronous:
        return {"on": False, "reason": "off in the inventory (pg_synchronous: False)"}
    master = live_primary(topology, facts)
    if master is None:
        return {"on": None, "reason": "unknown: no running primary"}
    fact = facts.get(master.name)
    postgres = (managed.get(master.name) or {}).get("postgres") or {}
    live = postgres.get("settings") or {}
    names = (live.get("synchronous_standby_names") or {}).get("setting")
    if names == "":
        return {"on": False, "reason": f"synchronous_standby_names is empty on {master.name}: commits do not "
                                       "wait for any standby"}
    sources = registry.setting_sources(postgres, "", "") if postgres else {}
    weak = [o for o in (sources.get("synchronous_commit") or {}).get("other_sources", [])
            if registry.weakens_synchronous_commit(o.get("setting"))]
    if weak:
        words = "; ".join(f"{o.get('setting')!r} {registry.source_words(o)}" for o in weak)
        return {"on": False, "reason": f"synchronous_commit weakened on {master.name}: {words}"}
    rows = [r for r in (fact["replication"] if fact else []) if r["sync_state"] in SYNCHRONOUS_STATES]
    if not rows:
        return {"on": False, "reason": "no synchronous standby connected: commits wait until one is back"}
    return {"on": True, "reason": f"{', '.join(str(r['application_name']) for r in rows)} synchronous "
                                  f"on {master.name}"}


# ha-watch writes its view every few seconds: an older one says nothing about now.
FAILOVER_VIEW_MAX_AGE = 30


def failover_view(topology: Topology, managed: Mapping[str, Mapping | None]) -> dict | None:
    """Can the cluster fail over now? Each heartbeat node's ha-watch view (hostrules.canfailover),
    one line from them; None without a VIP."""
    if topology.cluster.vip is None:
        return None
    names = [n.name for n in topology.vip_holders]
    views = {}
    for name in names:
        state = managed.get(name) or {}
        view = state.get("failover_view")
        fresh = view and state.get("now") and state["now"] - float(view.get("checked_at") or 0) <= FAILOVER_VIEW_MAX_AGE
        views[name] = view if fresh else None
    line = canfailover.status_line([views[n] for n in names], names)
    return {"can_fail_over": all(v and v.get("can_fail_over") for v in views.values()), "line": line,
            "nodes": views}


def stack_lines(view: Mapping) -> list[str]:
    """The text sections after the hosts' blocks."""
    lines = ["", "heartbeat:"]
    hb = view["heartbeat"]
    if not hb["nodes"]:
        lines.append("  no VIP in the inventory")
    for name, node in hb["nodes"].items():
        if node["running"] is None:
            lines.append(f"  {name}: unknown (not read)")
        else:
            state = f"running, resources {node['resources'] or 'unknown'}" if node["running"] else "NOT running"
            lines.append(f"  {name}: {state}{', holds the VIP' if node['vip'] else ''}")
    if hb["vip_address"]:
        lines.append(f"  VIP {hb['vip_address']}: on {', '.join(hb['vip_holders']) or 'no host'}")
    lines += ["", "services:"]
    for name, units in view["services"].items():
        if units:
            lines.append(f"  {name}: " + ", ".join(f"{u.removesuffix('.service')} {s or 'unknown'}"
                                                   for u, s in units.items()))
    lines += ["", "archiving:"]
    for name, a in view["archiving"].items():
        if a is None:
            lines.append(f"  {name}: unknown")
        else:
            lines.append(f"  {name}: last archived {a['last_archived_wal'] or 'none'}, current "
                         f"{a['current_wal'] or '- (standby)'}, {a['failed_count']} failed"
                         + (f" (failing since {a['last_failed_wal']})" if a["failing"] else ""))
    if view.get("failover"):
        lines += ["", view["failover"]["line"]]
    g = view["synchronous_guarantee"]
    state = {True: "on", False: "OFF", None: "unknown"}[g["on"]]
    lines += ["", f"synchronous guarantee: {state}: {g['reason']}", "", "drift:"]
    if not view["drift"]:
        lines.append("  none: every managed entry is as the deploy leaves it")
    for d in view["drift"]:
        lines.append(f"  {d['host']}: {d['key']}")
        lines.append(f"    expected {d['expected']}; found {d['found']}")
        lines.append(f"    repair: {d['repair']} (disturbs: {d['disturbance']}"
                     + ("; the deploy leaves it pending: tasks/rolling_restart.py" if
                        registry.needs_rolling_restart(d["disturbance"]) else "") + ")")
    return lines


def stack_view(topology: Topology, registries: Mapping[str, registry.HostRegistry],
               facts: Mapping[str, PgStateDict | None], managed: Mapping[str, Mapping | None]) -> dict:
    """The stack sections of the JSON document (and of the text)."""
    found = drifts(topology, registries, facts, managed)
    return {
        "heartbeat": heartbeat_view(topology, managed),
        "services": monitors_view(registries, managed),
        "archiving": archiving_view(topology, managed),
        "synchronous_guarantee": synchronous_guarantee(topology, facts, managed),
        "failed_over": failed_over(topology, facts),
        "drift": [d.as_dict() for d in found],
        # The master side's "can fail over" verdict (ha-watch's views); where the cascade's
        # archive backlog figures plug in (None until they are read).
        "failover": failover_view(topology, managed),
        "archive_backlog": None,
    }


def stack_problems(view: Mapping) -> list[str]:
    problems = [view["failed_over"]["line"]] if view.get("failed_over") else []
    for name, node in view["heartbeat"]["nodes"].items():
        if node["running"] is False:
            problems.append(f"{name}: heartbeat is not running (start it: systemctl start heartbeat)")
    if view["heartbeat"]["vip_address"] and len(view["heartbeat"]["vip_holders"]) > 1:
        problems.append(f"the VIP is on {', '.join(view['heartbeat']['vip_holders'])} at once")
    g = view["synchronous_guarantee"]
    if g["on"] is False and "inventory" not in g["reason"] and not g["reason"].startswith("no synchronous"):
        problems.append(f"synchronous guarantee off: {g['reason']}")
    if view.get("failover") and not view["failover"]["can_fail_over"]:
        problems.append(view["failover"]["line"])
    problems += [f"{d['host']}: drift of {d['key']}: found {d['found']} (repair: {d['repair']}, disturbs: "
                 f"{d['disturbance']})" for d in view["drift"]]
    return problems
