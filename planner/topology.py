"""Inventory data -> a validated Topology (pure: no pyinfra, no I/O).

Input: `{inventory_name: {"groups": [...], "data": {...}}}` as deploy.py builds it from the
pyinfra inventory. Every problem is collected before raising, so one run shows the whole list,
and each message names the host, the key and the fix.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from .backup import backup_repository
from .checks import SAFE_PATH
from .model import ROLES, AppHost, Cluster, HeartbeatTimings, Node, Role, Topology, Vip
from .paths import SUPPORTED_VERSIONS
from .problems import ProblemsError

# synchronous_standby_names takes bare names: keep them valid unquoted SQL identifiers.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_IDENTIFIER_LENGTH = 63  # NAMEDATALEN - 1
GUC_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z")
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # what pg_createcluster accepts
# IFNAMSIZ - 1; no ':' (an alias label such as eth0:1 is no interface: IPaddr2 adds the VIP to
# the interface itself, and the name also goes into ha.cf's ucast line and the failover scripts).
INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
HOST_KEYS = ("pg_upstream", "pg_application_name", "pg_address")
# Prefixes we own: an unknown key with one of them is almost certainly a typo.
OWN_PREFIXES = ("pg_", "vip_", "ha_")
VIP_KEYS = ("vip_address", "vip_prefix", "vip_interface")


class InventoryError(ProblemsError):
    """The inventory does not describe a valid cluster; `problems` lists every reason."""


# ---------------------------------------------------------------- value checks
# Each returns None when the value is fine, else "<what is wrong> (<fix>)" to follow the key.


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_version(value: Any) -> str | None:
    if _is_int(value) and value in SUPPORTED_VERSIONS:
        return None
    return f"is {value!r} (use a supported major version as an integer: 13..17)"


def _check_cluster_name(value: Any) -> str | None:
    if isinstance(value, str) and CLUSTER_NAME.match(value):
        return None
    return f"is {value!r} (use a Debian cluster name such as 'main': letters, digits, _ . -)"


def _check_port(value: Any) -> str | None:
    if _is_int(value) and 1 <= value <= 65535:
        return None
    return f"is {value!r} (use an integer port 1..65535)"


def _check_role_name(value: Any) -> str | None:
    if isinstance(value, str) and IDENTIFIER.match(value) and len(value) <= MAX_IDENTIFIER_LENGTH:
        return None
    return f"is {value!r} (use a lower-case role name matching [a-z_][a-z0-9_]*)"


def _check_absolute_path(value: Any) -> str | None:
    # The rule the files that carry it (archive-wal, restore_command) are rendered with.
    if isinstance(value, str) and SAFE_PATH.match(value):
        return None
    return f"is {value!r} (use an absolute path of letters, digits and ._/+-)"


def _check_optional_path(value: Any) -> str | None:
    if isinstance(value, str) and value and "\n" not in value:
        return None
    return f"is {value!r} (use the path of a KEY=VALUE file, or leave it unset)"


def _check_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"is {value!r} (use True or False)"


def _check_megabytes(value: Any) -> str | None:
    if _is_int(value) and value > 0:
        return None
    return f"is {value!r} (use a whole number of megabytes > 0)"


def _is_heartbeat_seconds(value: Any) -> bool:
    """heartbeat counts its timings in milliseconds: seconds as a number, to the millisecond, >= 0.1."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0.1
            and abs(value * 1000 - round(value * 1000)) < 1e-6)


def _check_heartbeat_seconds(value: Any) -> str | None:
    if _is_heartbeat_seconds(value):
        return None
    return f"is {value!r} (use seconds >= 0.1, to the millisecond, e.g. 3 or 2.5)"


def _setting_value_problem(name: Any, value: Any) -> str | None:
    if not isinstance(name, str) or not GUC_NAME.match(name):
        return f"has a bad setting name {name!r} (use a lower-case GUC name such as 'work_mem')"
    if isinstance(value, (dict, list, tuple, set)) or value is None:
        return f"sets {name} to {value!r} (use a string, a number or a boolean)"
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        return f"sets {name} to a value with a newline (use a single-line value)"
    return None


def _check_settings(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"is {value!r} (use a dict of GUC name -> value)"
    problems = [p for p in (_setting_value_problem(k, v) for k, v in value.items()) if p]
    return "; ".join(problems) if problems else None


def _check_app_hosts(value: Any) -> str | None:
    shape = '(use a list of {"address": "10.0.0.5/32", "database": "all", "user": "all"})'
    if not isinstance(value, (list, tuple)):
        return f"is {value!r} {shape}"
    for entry in value:
        if not isinstance(entry, Mapping) or set(entry) - {"address", "database", "user"}:
            return f"has an entry {entry!r} {shape}"
        for key in ("address", "database", "user"):
            field = entry.get(key, "all" if key != "address" else None)
            if not isinstance(field, str) or not field or re.search(r"\s", field):
                return f"has an entry with {key} {field!r} {shape}"
    return None


def _check_vip_address(value: Any) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return f"is {value!r} (use an IPv4 address: heartbeat's IPaddr2 manages IPv4)"
    return None


def _check_vip_prefix(value: Any) -> str | None:
    if _is_int(value) and 1 <= value <= 32:
        return None
    return f"is {value!r} (use the network prefix length as an integer 1..32, e.g. 24)"


def _check_interface(value: Any) -> str | None:
    if isinstance(value, str) and INTERFACE_NAME.match(value):
        return None
    return f"is {value!r} (use a network interface name such as 'eth0', not an alias label)"


def _check_apt_repository(value: Any) -> str | None:
    shape = '(use {"line": "deb ...", "key_url": optional, "key_path": optional, "filename": optional})'
    if not isinstance(value, Mapping) or set(value) - {"line", "key_url", "key_path", "filename"}:
        return f"is {value!r} {shape}"
    line = value.get("line")
    if not isinstance(line, str) or not line.startswith("deb ") or "\n" in line:
        return f"has line {line!r} {shape}"
    for key in ("key_url", "key_path"):
        if value.get(key) is not None and not isinstance(value.get(key), str):
            return f"has {key} {value.get(key)!r} {shape}"
    filename = value.get("filename")
    if filename is not None and not (isinstance(filename, str) and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", filename)):
        return f"has filename {filename!r} (a file name under /etc/apt/sources.list.d, without .list)"
    return None


_CLUSTER_DEFAULTS = Cluster()
_TIMING_DEFAULTS = HeartbeatTimings()
# key -> (default, check); defaults come from the model so there is one source of truth.
CLUSTER_KEYS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "pg_version": (_CLUSTER_DEFAULTS.version, _check_version),
    "pg_cluster": (_CLUSTER_DEFAULTS.name, _check_cluster_name),
    "pg_port": (_CLUSTER_DEFAULTS.port, _check_port),
    "pg_replication_user": (_CLUSTER_DEFAULTS.replication_user, _check_role_name),
    "pg_archive_dir": (_CLUSTER_DEFAULTS.archive_dir, _check_absolute_path),
    "pg_synchronous": (_CLUSTER_DEFAULTS.synchronous, _check_bool),
    "pg_settings": (MappingProxyType({}), _check_settings),
    "pg_app_hosts": ((), _check_app_hosts),
    "vip_address": (None, _check_vip_address),
    "vip_prefix": (None, _check_vip_prefix),
    "vip_interface": (None, _check_interface),
    "ha_keepalive": (_TIMING_DEFAULTS.keepalive, _check_heartbeat_seconds),
    "ha_warntime": (_TIMING_DEFAULTS.warntime, _check_heartbeat_seconds),
    "ha_deadtime": (_TIMING_DEFAULTS.deadtime, _check_heartbeat_seconds),
    "ha_initdead": (_TIMING_DEFAULTS.initdead, _check_heartbeat_seconds),
    "apt_repository": (None, _check_apt_repository),
    "secrets_file": (None, _check_optional_path),
    "pg_cascade_monitor": (_CLUSTER_DEFAULTS.cascade_monitor, _check_bool),
    "pg_archive_backlog_mb": (_CLUSTER_DEFAULTS.archive_backlog_mb, _check_megabytes),
}
KNOWN_KEYS = frozenset(CLUSTER_KEYS) | frozenset(HOST_KEYS)


# ---------------------------------------------------------------- helpers


def _names(names: list[str] | tuple[str, ...] | set[str]) -> str:
    return ", ".join(sorted(names))


def _value(data: Mapping, key: str, default: Any = None) -> Any:
    """A key's value; None counts as unset so inventories can write `key=None`."""
    value = data.get(key)
    return default if value is None else value


def _shown(value: Any) -> str:
    """A value as the inventory writes it (a default's read-only mapping shows as {})."""
    if isinstance(value, Mapping):
        return repr(dict(value))
    return repr(value)


def _same_value(a: Any, b: Any) -> bool:
    """Equal, and True is not 1: a boolean where a number is meant is a different value."""
    a, b = (tuple(v) if isinstance(v, list) else v for v in (a, b))  # [] as the default ()
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _role_groups(groups: Any) -> list[Role]:
    return [role for role in ROLES if role in (groups or ())]


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


# ---------------------------------------------------------------- the checks


def _check_unknown_keys(name: str, data: Mapping) -> list[str]:
    problems = []
    for key in sorted(k for k in data if isinstance(k, str) and k.startswith(OWN_PREFIXES)):
        if key in KNOWN_KEYS:
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
        hint = (
            f"did you mean {close[0]}?" if close else "remove it, or add it to planner/topology.py"
        )
        problems.append(f"{name}: {key} is not a pgcascade key ({hint})")
    return problems


def _check_roles(roles: Mapping[str, str], multi_role: Mapping[str, list[Role]]) -> list[str]:
    problems = [
        f"{name}: in groups {' and '.join(groups)} (a host has exactly one role: keep one group)"
        for name, groups in sorted(multi_role.items())
    ]
    masters = sorted(n for n, r in roles.items() if r == "master")
    if not roles:
        problems.append(
            "inventory: no PostgreSQL host (put hosts in the groups master, cascade, downstream)"
        )
    elif not masters:
        problems.append("inventory: no host in group master (put exactly one host in it)")
    elif len(masters) > 1:
        problems.append(
            f"{_names(masters)}: all in group master (keep exactly one master; "
            "the others belong in cascade or downstream)"
        )
    return problems


def _check_cluster_keys(pg_hosts: Mapping[str, Mapping], reference: str) -> list[str]:
    """Cluster-wide keys: the same effective value on every host, and a valid one."""
    problems = []
    for key, (default, check) in CLUSTER_KEYS.items():
        groups: list[tuple[Any, list[str]]] = []  # values need not be hashable
        for name in sorted(pg_hosts):
            value = _value(pg_hosts[name], key, default)
            for seen, holders in groups:
                if _same_value(seen, value):
                    holders.append(name)
                    break
            else:
                groups.append((value, [name]))
        reference_value = _value(pg_hosts[reference], key, default)
        for value, holders in groups:
            if not _same_value(value, reference_value):
                problems.append(
                    f"{_names(holders)}: {key} is {_shown(value)} but {_shown(reference_value)} on {reference} "
                    "(cluster-wide keys must be the same on every PostgreSQL host: set it once "
                    "for all of them)"
                )
            if value is not None and (problem := check(value)):
                problems.append(f"{_names(holders)}: {key} {problem}")
    return problems


def _check_host_keys(
    pg_hosts: Mapping[str, Mapping],
    roles: Mapping[str, str],
    inventory: set[str],
    multi_role: Mapping[str, list[Role]],
) -> list[str]:
    problems = []
    pg_names = sorted(pg_hosts)
    for name in pg_names:
        data, role = pg_hosts[name], roles[name]
        upstream = _value(data, "pg_upstream")
        others = _names([n for n in pg_names if n != name]) or "(none)"
        if role == "master":
            if upstream is not None:
                problems.append(
                    f"{name}: the master has pg_upstream {upstream!r} "
                    "(remove pg_upstream: the master replicates from nobody)"
                )
            continue
        if upstream is None:
            problems.append(
                f"{name}: pg_upstream is missing (set it to the inventory name of the host "
                f"{name} replicates from, one of: {others})"
            )
        elif not isinstance(upstream, str):
            problems.append(
                f"{name}: pg_upstream is {upstream!r} (use an inventory name: {others})"
            )
        elif upstream == name:
            problems.append(f"{name}: pg_upstream is itself (point it at one of: {others})")
        elif upstream not in inventory:
            problems.append(
                f"{name}: pg_upstream {upstream!r} is not in the inventory "
                f"(add it, or point pg_upstream at one of: {others})"
            )
        elif upstream not in pg_hosts:
            problems.append(
                f"{name}: pg_upstream {upstream!r} is not a PostgreSQL host (it is in none of the "
                f"groups {', '.join(ROLES)}; point pg_upstream at one of: {others})"
            )
        elif name in multi_role:
            pass  # its role is unclear: the group problem says what to fix first
        elif role == "cascade" and roles[upstream] != "master":
            master = _names([n for n, r in roles.items() if r == "master"]) or "the master"
            problems.append(
                f"{name}: pg_upstream is {upstream!r} (a {roles[upstream]}), but a cascade "
                f"replicates from the master (set pg_upstream to {master}, or move {name} "
                "to group downstream)"
            )
        elif role == "downstream" and roles[upstream] == "master":
            problems.append(
                f"{name}: pg_upstream is the master {upstream!r}, but a downstream replicates "
                f"from a cascade or another downstream (move {name} to group cascade, or point "
                "pg_upstream at a cascade)"
            )
        application_name = _value(data, "pg_application_name")
        if application_name is None:
            problems.append(
                f"{name}: pg_application_name is missing (add pg_application_name, e.g. "
                "'standby_1': it names the standby in primary_conninfo and "
                "synchronous_standby_names)"
            )
        elif (
            not isinstance(application_name, str)
            or not IDENTIFIER.match(application_name)
            or len(application_name) > MAX_IDENTIFIER_LENGTH
        ):
            problems.append(
                f"{name}: pg_application_name {application_name!r} is not a valid name "
                "(use [a-z_][a-z0-9_]*, at most 63 characters, e.g. 'standby_1')"
            )
    return problems


def _check_unique(pg_hosts: Mapping[str, Mapping], roles: Mapping[str, str]) -> list[str]:
    problems = []
    by_address: dict[str, list[str]] = {}
    for name, data in pg_hosts.items():
        address = _address(name, data)
        if not isinstance(address, str) or not address or re.search(r"\s", address):
            problems.append(f"{name}: pg_address is {address!r} (use a host name or an IP address)")
            continue
        by_address.setdefault(address, []).append(name)
    for address, holders in sorted(by_address.items()):
        if len(holders) > 1:
            problems.append(
                f"{_names(holders)}: the same address {address!r} (set pg_address, or "
                "ssh_hostname, so each host has its own)"
            )
    by_application_name: dict[str, list[str]] = {}
    for name, data in pg_hosts.items():
        application_name = _value(data, "pg_application_name")
        if roles[name] != "master" and isinstance(application_name, str):
            by_application_name.setdefault(application_name, []).append(name)
    for application_name, holders in sorted(by_application_name.items()):
        if len(holders) > 1:
            problems.append(
                f"{_names(holders)}: pg_application_name {application_name!r} is used by more "
                "than one standby (give each standby its own)"
            )
    by_folded_name: dict[str, list[str]] = {}
    for name in pg_hosts:
        by_folded_name.setdefault(name.lower(), []).append(name)
    for holders in by_folded_name.values():
        if len(holders) > 1:
            problems.append(
                f"{_names(holders)}: names differ only by case (host names are "
                "case-insensitive: rename one)"
            )
    return problems


def _address(name: str, data: Mapping) -> Any:
    return _value(data, "pg_address", _value(data, "ssh_hostname", name))


def _tiers(
    pg_hosts: Mapping[str, Mapping], roles: Mapping[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Tier of each host that reaches the master; cycles reported once each."""
    tiers: dict[str, int] = {}
    problems = []
    reported: set[frozenset[str]] = set()
    for start in sorted(pg_hosts):
        path: list[str] = []
        current: Any = start
        while True:
            if not isinstance(current, str) or current not in pg_hosts:
                base = None  # a missing or malformed upstream is reported elsewhere
                break
            if current in tiers:
                base = tiers[current]
                break
            if current in path:
                cycle = path[path.index(current):]
                # A host naming itself is reported as such by _check_host_keys.
                if len(cycle) > 1 and frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    loop = " -> ".join(cycle + [current])
                    problems.append(
                        f"{_names(cycle)}: pg_upstream forms a cycle {loop} (one of them must "
                        "replicate from a cascade or the master)"
                    )
                base = None
                break
            path.append(current)
            if roles[current] == "master":
                tiers[current] = 0
                path.pop()
                base = 0
                break
            current = _value(pg_hosts[current], "pg_upstream")
        if base is None:
            continue
        for offset, name in enumerate(reversed(path), start=1):
            tiers[name] = base + offset
    return tiers, problems


def _check_vip_subnet(pg_hosts: Mapping[str, Mapping], roles: Mapping[str, str], vip: Any,
                      prefix: Any) -> list[str]:
    """The heartbeat nodes (master, cascade) must be on the VIP's subnet: IPaddr2 adds the VIP
    with vip_prefix to their interface, and clients must reach it wherever it is. (Host names
    cannot be checked here.)"""
    if _check_vip_address(vip) or _check_vip_prefix(prefix):
        return []  # reported by the key checks
    network = ipaddress.IPv4Network(f"{vip}/{prefix}", strict=False)
    problems = []
    for name in sorted(n for n, r in roles.items() if r in ("master", "cascade")):
        address = _address(name, pg_hosts[name])
        try:
            ip = ipaddress.ip_address(address)
        except (ValueError, TypeError):
            continue
        if ip not in network:
            problems.append(
                f"{name}: its address {address} is outside the VIP's subnet {network} (vip_address "
                f"{vip} with vip_prefix {prefix}): heartbeat could not bring the VIP up next to it "
                "(fix vip_address or vip_prefix)"
            )
    return problems


def _check_vip(
    pg_hosts: Mapping[str, Mapping], roles: Mapping[str, str], reference: str
) -> list[str]:
    data = pg_hosts[reference]
    present = [key for key in VIP_KEYS if _value(data, key) is not None]
    if not present:
        return []
    missing = [key for key in VIP_KEYS if key not in present]
    if missing:
        return [
            f"{reference}: {', '.join(present)} set but {', '.join(missing)} not "
            "(set vip_address, vip_prefix and vip_interface together, or none for no VIP)"
        ]
    problems = []
    cascades = sorted(n for n, r in roles.items() if r == "cascade")
    if len(cascades) != 1:
        found = f"{len(cascades)} ({_names(cascades)})" if cascades else "none"
        problems.append(
            f"inventory: vip_address is set but the cascade hosts are {found} (heartbeat v1 runs "
            "on exactly two nodes, the master and one cascade: keep one cascade, or remove vip_*)"
        )
    vip = _value(data, "vip_address")
    problems += _check_vip_subnet(pg_hosts, roles, vip, _value(data, "vip_prefix"))
    for name in sorted(pg_hosts):
        if _address(name, pg_hosts[name]) == vip:
            problems.append(
                f"{name}: its address is the vip_address {vip!r} (the VIP must be an extra "
                "address that moves between hosts: choose a free one)"
            )
    return problems


def _check_heartbeat_timings(data: Mapping, reference: str) -> list[str]:
    timings = {
        key: _value(data, key, CLUSTER_KEYS[key][0])
        for key in ("ha_keepalive", "ha_warntime", "ha_deadtime", "ha_initdead")
    }
    if not all(_is_heartbeat_seconds(v) for v in timings.values()):
        return []  # reported by the value checks
    k, w, d, i = timings.values()
    if k <= w < d <= i:
        return []
    return [
        f"{reference}: heartbeat timings ha_keepalive={k}, ha_warntime={w}, ha_deadtime={d}, "
        f"ha_initdead={i} are out of order (heartbeat needs keepalive <= warntime < deadtime "
        "<= initdead)"
    ]


# ---------------------------------------------------------------- building


def _cluster(data: Mapping) -> Cluster:
    def get(key: str) -> Any:
        return _value(data, key, CLUSTER_KEYS[key][0])

    vip = None
    if get("vip_address") is not None:
        vip = Vip(
            address=get("vip_address"), prefix=get("vip_prefix"), interface=get("vip_interface")
        )
    return Cluster(
        version=get("pg_version"),
        name=get("pg_cluster"),
        port=get("pg_port"),
        replication_user=get("pg_replication_user"),
        archive_dir=get("pg_archive_dir"),
        synchronous=get("pg_synchronous"),
        settings=tuple(sorted((k, _setting_text(v)) for k, v in get("pg_settings").items())),
        app_hosts=tuple(
            AppHost(e["address"], e.get("database", "all"), e.get("user", "all"))
            for e in get("pg_app_hosts")
        ),
        vip=vip,
        heartbeat=HeartbeatTimings(
            keepalive=get("ha_keepalive"),
            warntime=get("ha_warntime"),
            deadtime=get("ha_deadtime"),
            initdead=get("ha_initdead"),
        ),
        apt_repository=dict(get("apt_repository")) if get("apt_repository") is not None else None,
        secrets_file=get("secrets_file"),
        cascade_monitor=get("pg_cascade_monitor"),
        archive_backlog_mb=get("pg_archive_backlog_mb"),
    )


def build_topology(hosts: Mapping[str, Mapping]) -> Topology:
    """The validated Topology; raises InventoryError listing every problem found."""
    roles: dict[str, Role] = {}
    multi_role: dict[str, list[Role]] = {}
    pg_hosts: dict[str, Mapping] = {}
    for name, entry in hosts.items():
        role_groups = _role_groups(entry.get("groups"))
        if not role_groups:
            continue  # application hosts and anything else are not part of the topology
        if len(role_groups) > 1:
            multi_role[name] = role_groups
        roles[name] = role_groups[0]
        pg_hosts[name] = entry.get("data") or {}

    problems = _check_roles(roles, multi_role)
    for name in sorted(pg_hosts):
        problems += _check_unknown_keys(name, pg_hosts[name])
    if pg_hosts:
        masters = sorted(n for n, r in roles.items() if r == "master")
        reference = masters[0] if masters else sorted(pg_hosts)[0]
        problems += _check_cluster_keys(pg_hosts, reference)
        problems += _check_vip(pg_hosts, roles, reference)
        problems += _check_heartbeat_timings(pg_hosts[reference], reference)
        problems += _check_host_keys(pg_hosts, roles, set(hosts), multi_role)
        problems += _check_unique(pg_hosts, roles)
        tiers, cycle_problems = _tiers(pg_hosts, roles)
        problems += cycle_problems
        cluster_name = _value(pg_hosts[reference], "pg_cluster", CLUSTER_KEYS["pg_cluster"][0])
        backup, backup_problems = backup_repository(hosts, pg_hosts[reference], cluster_name)
        problems += backup_problems
    if problems:
        raise InventoryError(problems)

    nodes = []
    for name, data in pg_hosts.items():
        standby = roles[name] != "master"
        nodes.append(
            Node(
                name=name,
                role=roles[name],
                address=_address(name, data),
                upstream=_value(data, "pg_upstream") if standby else None,
                application_name=_value(data, "pg_application_name") if standby else None,
                tier=tiers[name],
            )
        )
    nodes.sort(key=lambda n: (n.tier, n.name))
    return Topology(cluster=replace(_cluster(pg_hosts[reference]), backup=backup), nodes=tuple(nodes))
