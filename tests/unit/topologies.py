"""Topologies the unit tests share: three hosts (master -> cascade -> downstream)."""
from __future__ import annotations

from planner.model import Cluster, Node, Topology, Vip

VIP = Vip("198.51.100.15", 24, "eth0")


def node(name, role, address, upstream=None, app=None, tier=0) -> Node:
    return Node(name, role, address, upstream, app, tier)


def three(**cluster_kwargs) -> Topology:
    """The README's cluster: master -> cascade -> downstream, with a VIP unless told otherwise."""
    cluster_kwargs.setdefault("vip", VIP)
    return Topology(
        Cluster(**cluster_kwargs),
        (
            node("pg1", "master", "198.51.100.11"),
            node("pg2", "cascade", "198.51.100.12", "pg1", "standby_1", 1),
            node("pg3", "downstream", "198.51.100.13", "pg2", "standby_2", 2),
        ),
    )
