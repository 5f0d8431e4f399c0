"""Validation of the values that reach a shell, a conf file and pg_hba.conf at once (addresses, the
archive directory, the replication user...): a bad value fails with a clear message instead of
rendering a broken file. The inventory itself is validated once, in planner/topology.py."""
from __future__ import annotations

import ipaddress
import re

from planner.model import Cluster, Node, Topology
from planner.paths import SUPPORTED_VERSIONS

# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------

# Names that are directives, not settings, in postgresql.conf.
_CONF_DIRECTIVES = frozenset({"include", "include_dir", "include_if_exists"})

_GUC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# A value both PostgreSQL's and postgresql-common's conf parsers take unquoted.
# (An integer with an optional unit, a decimal without unit, or a word: 10, 512MB, -1, 0.9, on.)
_BARE_VALUE = re.compile(r"^(-?[0-9]+[A-Za-z]*|-?[0-9]+\.[0-9]+|[A-Za-z][A-Za-z0-9_]*)$")
_SAFE_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]*$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")  # also planner.topology's rule for pg_archive_dir
_SAFE_PATH = SAFE_PATH
_SAFE_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAFE_HBA_WORD = re.compile(r"^[A-Za-z0-9_.+-]+$")
_SAFE_CONNINFO_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")
_SAFE_HA_KEY = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no space




def _node(topology: Topology, node_name: str) -> Node:
    try:
        return topology.node(node_name)
    except KeyError:
        known = ", ".join(n.name for n in topology.nodes)
        raise ValueError(
            f"{node_name}: not a PostgreSQL host of this topology (hosts: {known})"
        ) from None


def _check_cluster(cluster: Cluster) -> None:
    if cluster.version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"pg_version {cluster.version}: pgcascade supports PostgreSQL 13 to 17"
        )
    if not _SAFE_PATH.match(cluster.archive_dir):
        raise ValueError(
            f"pg_archive_dir {cluster.archive_dir!r}: use an absolute path of letters, digits"
            " and ._/+-"
        )
    if not _SAFE_ROLE.match(cluster.replication_user):
        raise ValueError(
            f"pg_replication_user {cluster.replication_user!r}: use a plain identifier"
            " (letters, digits, _)"
        )


def _check_address(address: str, what: str) -> str:
    if not _SAFE_ADDRESS.match(address):
        raise ValueError(
            f"{what}: address {address!r} is not an IP address or host name"
        )
    return address


def _application_name(node: Node) -> str:
    name = node.application_name or node.name
    if len(name) > 63 or not all(" " <= c <= "~" for c in name):
        raise ValueError(
            f"{node.name}: pg_application_name {name!r} must be at most 63 printable ASCII"
            " characters (PostgreSQL truncates or mangles anything else)"
        )
    return name


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _host_address_spec(address: str, what: str) -> str:
    """pg_hba.conf ADDRESS for one host: /32 or /128 for an IP, a host name as it is."""
    if "/" in address:
        raise ValueError(
            f"{what}: {address!r} is a network; pg_hba.conf entries here are per host,"
            " give the host's own address"
        )
    _check_address(address, what)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a host name: PostgreSQL checks it by reverse and forward lookup
    return f"{ip}/{ip.max_prefixlen}"


