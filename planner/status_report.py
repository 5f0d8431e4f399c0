"""The status tree: inventory + every host's PgState -> readable text and a list of problems.

Pure rendering, deterministic for identical input. Shows pg_stat_replication per host and the
receive/replay bytes behind the master, and compares it with what the inventory expects:
the master streams to its direct standbys (sync when the cluster is synchronous), a cascade
streams to its children (async), leaves have no clients, every standby is in recovery on the
master's timeline and receiving WAL.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from .model import Node, Topology
from .pgstate import PgStateDict
from .standby_plan import check_cluster_roles, describe, server_state

REPLICATION_COLUMNS = ("application_name", "client_addr", "state", "sync_priority", "sync_state")
SYNCHRONOUS_STATES = ("sync", "quorum")


def lsn_text(lsn: int | None) -> str:
    """Bytes from 0/0 in PostgreSQL's X/Y notation."""
    if lsn is None:
        return "unknown"
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> list[str]:
    """Left-aligned columns, `-` for None, no trailing spaces."""
    cells = [list(header)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths))).rstrip() for row in cells
    ]


def _tree(topology: Topology, facts_by_host: Mapping[str, PgStateDict | None]) -> list[str]:
    """The inventory's tree, each host with what it really is."""
    cluster = topology.cluster
    lines: list[str] = []

    def walk(node: Node, prefix: str, branch: str, child_prefix: str) -> None:
        state = describe(facts_by_host.get(node.name), cluster)
        lines.append(f"{prefix}{branch}{node.name} ({node.role}): {state}")
        children = topology.children(node.name)
        for index, child in enumerate(children):
            last = index == len(children) - 1
            branch, indent = ("`-- ", "    ") if last else ("|-- ", "|   ")
            walk(child, child_prefix, branch, child_prefix + indent)

    walk(topology.master, "", "", "")
    return lines


def _behind(master_current: int | None, lsn: int | None) -> str:
    if lsn is None:
        return "none"
    if master_current is None:
        return f"{lsn_text(lsn)}, behind the master: unknown"
    # Facts are read one host after another: a standby read later may look slightly ahead.
    return f"{lsn_text(lsn)}, {max(master_current - lsn, 0)} bytes behind the master"


def _upstream_line(topology: Topology, node: Node, fact: PgStateDict) -> str:
    if node.upstream is None:
        return "none (the master)"
    upstream = topology.upstream_of(node)
    expected = f"{upstream.name} ({upstream.address}:{topology.cluster.port})"
    receiver = fact["wal_receiver"]
    if not receiver:
        return f"{expected}, no WAL receiver"
    sender = f"{receiver['sender_host']}:{receiver['sender_port']}"
    timeline = receiver["received_tli"]
    return f"{expected}, {receiver['status']} from {sender} (timeline {timeline})"


def _host_block(
    topology: Topology,
    node: Node,
    fact: PgStateDict | None,
    master_current: int | None,
    unreachable_reason: str | None,
) -> list[str]:
    lines = [f"{node.name}  {node.role}  {node.address}"]
    state = server_state(fact)
    described = describe(fact, topology.cluster)
    if state == "unreachable" and unreachable_reason:
        described = unreachable_reason
    lines.append(f"  state:        {described}")
    if fact is None or state in ("absent", "unreadable"):
        return lines
    in_recovery = "yes" if state == "standby" else "no"
    if state == "standby" and not fact["running"]:
        in_recovery += " (stopped with standby.signal)"
    lines.append(f"  in recovery:  {in_recovery}")
    lines.append(f"  upstream:     {_upstream_line(topology, node, fact)}")
    lsn = fact["lsn"]
    if state == "primary":
        lines.append(f"  current:      {lsn_text(lsn['current'])}")
    elif not fact["running"]:  # a stopped server reports no LSN: not "nothing received"
        lines.append("  receive:      unknown (not running)")
        lines.append("  replay:       unknown (not running)")
    else:
        receive, replay = lsn["receive"], lsn["replay"]
        if receive is not None and replay is not None and receive < replay:
            # A (re)started WAL receiver reports the segment start it streams from until new WAL
            # arrives; what was replayed had been received.
            received = f"{_behind(master_current, replay)} (streaming restarted from {lsn_text(receive)})"
        else:
            received = _behind(master_current, receive)
        lines.append(f"  receive:      {received}")
        lines.append(f"  replay:       {_behind(master_current, replay)}")
    archiver = fact["archiver"]
    if archiver:
        last = archiver["last_archived_wal"] or "none"
        lines.append(
            f"  archiver:     {archiver['archived_count']} archived, "
            f"{archiver['failed_count']} failed, last {last}"
        )
    if fact["pending_restart"]:
        lines.append(f"  pending restart: {', '.join(sorted(fact['pending_restart']))}")
    rows = sorted(fact["replication"], key=lambda r: str(r["application_name"]))
    if rows:
        lines.append("  replication:")
        cells = [[r.get(column) for column in REPLICATION_COLUMNS] for r in rows]
        lines += table(REPLICATION_COLUMNS, cells, "    ")
    else:
        lines.append("  replication:  (0 rows)")
    return lines


def _availability_problems(
    topology: Topology, node: Node, fact: PgStateDict | None, unreachable_reason: str | None
) -> list[str]:
    cluster = topology.cluster
    if fact is None:
        if unreachable_reason:
            return [f"{node.name}: {unreachable_reason}"]
        return [f"{node.name}: unreachable (its state could not be read)"]
    if server_state(fact) in ("absent", "unreadable"):
        return [f"{node.name}: {describe(fact, cluster)} (run the deploy)"]
    if not fact["running"]:
        return [
            f"{node.name}: PostgreSQL {cluster.version}/{cluster.name} is not running "
            f"(start it: pg_ctlcluster {cluster.version} {cluster.name} start)"
        ]
    return []


def _replication_problems(topology: Topology, node: Node, fact: PgStateDict,
                          synchronous_off_reason: str | None = None) -> list[str]:
    """Compare this host's pg_stat_replication rows with its children in the inventory.
    synchronous_off_reason: why the master has no synchronous standby when it no longer asks for
    one (its synchronous_standby_names emptied): said instead of "commits wait"."""
    problems = []
    children = topology.children(node.name)
    rows = {r["application_name"]: r for r in fact["replication"]}
    for child in children:
        row = rows.get(child.application_name)
        if row is None:
            problems.append(
                f"{node.name}: {child.application_name} ({child.name}) is not connected "
                "(no row in pg_stat_replication)"
            )
        elif row["state"] != "streaming":
            problems.append(
                f"{node.name}: {child.application_name} ({child.name}) is in state "
                f"{row['state']!r}, not streaming"
            )
    connected = [rows[c.application_name] for c in children if c.application_name in rows]
    synchronous_wanted = node.role == "master" and topology.cluster.synchronous
    if synchronous_wanted and children and not any(
        r["sync_state"] in SYNCHRONOUS_STATES for r in connected
    ):
        names = ", ".join(str(c.application_name) for c in children)
        stand_ins = sorted(str(r["application_name"]) for r in fact["replication"]
                           if r not in connected and r["sync_state"] in SYNCHRONOUS_STATES)
        if stand_ins:  # a failed-over cascade's standby: commits do not wait
            consequence = (f"commits wait for {', '.join(stand_ins)} instead (a cascade failover; the deploy "
                           "puts the tree back once the cascade streams caught up)")
        else:
            consequence = synchronous_off_reason or "commits wait until one is back"
        problems.append(
            f"{node.name}: no synchronous standby (expected {names} with sync_state sync): "
            f"{consequence}"
        )
    if not synchronous_wanted:
        for row in connected:
            if row["sync_state"] != "async":
                problems.append(
                    f"{node.name}: {row['application_name']} is {row['sync_state']!r}, "
                    "expected async"
                )
    expected_names = {str(c.application_name) for c in children}
    for name, row in sorted(rows.items(), key=lambda item: str(item[0])):
        if name in expected_names or row["state"] == "backup":
            continue  # a running pg_basebackup is a clone in progress, not a problem
        expected = ", ".join(sorted(expected_names)) or "none"
        problems.append(
            f"{node.name}: unexpected replication client {name!r} from {row['client_addr']} "
            f"(the inventory expects: {expected})"
        )
    return problems


def _standby_problems(node: Node, fact: PgStateDict, master_timeline: int | None) -> list[str]:
    if server_state(fact) != "standby":
        return []  # a standby host that is a primary is reported by check_cluster_roles
    problems = []
    timeline = fact["timeline"]
    if master_timeline is not None and timeline is not None and timeline != master_timeline:
        problems.append(
            f"{node.name}: on timeline {timeline}, not the master's timeline {master_timeline}"
        )
    status = fact["wal_receiver"]["status"] if fact["wal_receiver"] else None
    if status != "streaming":
        problems.append(
            f"{node.name}: not receiving WAL from {node.upstream} "
            f"(WAL receiver: {status or 'none'})"
        )
    return problems


def _archiver_problems(node: Node, fact: PgStateDict) -> list[str]:
    archiver = fact["archiver"]
    if archiver is None:
        return []
    failed, archived = archiver["last_failed_wal"], archiver["last_archived_wal"]
    # WAL file names sort by timeline then position: a later failure means it is still failing.
    if archiver["failed_count"] and failed and (archived is None or failed > archived):
        return [
            f"{node.name}: WAL archiving is failing ({archiver['failed_count']} failures, last "
            f"{failed}): check archive_command and the ssh access to the standby"
        ]
    return []


def render_status(
    topology: Topology,
    facts_by_host: Mapping[str, PgStateDict | None],
    pristine_hosts: Collection[str] | None = None,
    unreachable_reasons: Mapping[str, str] | None = None,
    extra_lines: Sequence[str] = (),
    extra_problems: Sequence[str] = (),
    synchronous_off_reason: str | None = None,
) -> tuple[str, list[str]]:
    """(text, problems): the tree and a block per host, then what disagrees with the inventory.

    A host whose fact is None could not be read; `unreachable_reasons` may say what happened
    instead, by host name, in the DBA's words (e.g. ``down or unreachable (ssh: Could not
    connect (timed out))``): it is then that host's state and its problem. `extra_lines` come
    after the hosts' blocks and `extra_problems` after theirs (planner.stack_report).
    """
    unreachable_reasons = unreachable_reasons or {}
    cluster = topology.cluster
    master_fact = facts_by_host.get(topology.master.name)
    master_current: int | None = None
    master_timeline: int | None = None
    if master_fact is not None and server_state(master_fact) == "primary":
        master_current, master_timeline = master_fact["lsn"]["current"], master_fact["timeline"]

    lines = [
        f"cluster {cluster.version}/{cluster.name}, port {cluster.port}, "
        f"synchronous {'on' if cluster.synchronous else 'off'}",
        "",
        *_tree(topology, facts_by_host),
    ]
    problems = check_cluster_roles(topology, facts_by_host, pristine_hosts)
    for node in topology.nodes:
        fact = facts_by_host.get(node.name)
        reason = unreachable_reasons.get(node.name)
        lines += ["", *_host_block(topology, node, fact, master_current, reason)]
        availability = _availability_problems(topology, node, fact, reason)
        problems += availability
        if availability or fact is None:
            continue
        problems += _replication_problems(topology, node, fact, synchronous_off_reason)
        problems += _standby_problems(node, fact, master_timeline)
        problems += _archiver_problems(node, fact)

    lines += list(extra_lines)
    unique_problems = list(dict.fromkeys([*problems, *extra_problems]))
    lines.append("")
    if unique_problems:
        lines.append(f"{len(unique_problems)} problem(s):")
        lines += [f"  - {p}" for p in unique_problems]
    else:
        lines.append("no problems: the cluster matches the inventory")
    return "\n".join(lines) + "\n", unique_problems


def unreachable_reason(ssh_error: str) -> str:
    """Why a host could not be read, for the report. A host whose processes are frozen still
    accepts the TCP connection (its kernel answers) but never sends ssh's banner."""
    if "No existing session" in ssh_error or "banner" in ssh_error.lower():
        return (f"down or unreachable (ssh: {ssh_error}: the connection opened but ssh never answered: "
                "a frozen or overloaded host?)")
    return f"down or unreachable (ssh: {ssh_error})"
