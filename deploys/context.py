"""The validated cluster and its secrets, from the pyinfra inventory, before any host is touched.

deploy.py calls `load_context()` first: an invalid inventory or a missing secret stops the run at
prepare time with every problem listed, and no operation has run on any host.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pyinfra import host, inventory, state
from pyinfra.api.exceptions import PyinfraError

from planner.model import Cluster, Node, Topology
from planner.secrets import SecretsError, parse_secrets_file, required_secrets, resolve_secrets
from planner.topology import InventoryError, build_topology


class ClusterConfigError(PyinfraError):
    """Bad inventory, secrets or reachability: nothing was changed."""


@dataclass(frozen=True)
class Context:
    topology: Topology
    secrets: dict
    node: Node | None  # this host's node; None for an application host or the backup repository
    host_name: str = ""
    # {cascade: why}: failovers from a cascade that has not caught up, kept by this run
    # (planner.held_failover; set by deploys.held_failover.hold_failovers)
    held_failovers: dict = field(default_factory=dict)

    @property
    def cluster(self) -> Cluster:
        return self.topology.cluster

    @property
    def this_node(self) -> Node:
        """This host's node, for the steps that only PostgreSQL hosts run."""
        if self.node is None:
            raise ClusterConfigError("an application host has no PostgreSQL node: this step runs on PostgreSQL hosts only")
        return self.node

    @property
    def is_backup_host(self) -> bool:
        """This host is the pgBackRest repository host (inventory group backup)."""
        return self.cluster.backup is not None and self.host_name == self.cluster.backup.host

    @cached_property
    def registry(self):
        """Everything the deploy manages on this host (planner.registry), built once per context."""
        from deploys.hostrules_package import package_contents
        from planner import registry

        return registry.entries(self.topology, self.this_node.name, self.secrets, hostrules=package_contents(),
                                held=self.held_failovers)


def inventory_hosts(hosts: Iterable) -> dict:
    """pyinfra inventory hosts -> build_topology's input (also used by tasks/status.py)."""
    return {h.name: {"groups": list(h.groups), "data": h.data.dict()} for h in hosts}


def _secrets_file_values(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        return parse_secrets_file(Path(path).read_text(), source=path)
    except FileNotFoundError:
        return None


def _check_all_connected(topology: Topology, tolerated: Collection[str] = ()) -> None:
    """pyinfra drops hosts it cannot reach; a cluster deploy must not go on without one.

    tolerated: hosts allowed to be missing (the failed cascade, for tasks/failover_cascade.py).
    """
    connected = {h.name for h in state.activated_hosts}
    missing = [n.name for n in topology.nodes if n.name not in connected and n.name not in tolerated]
    if missing:
        raise ClusterConfigError(
            f"cannot reach {', '.join(missing)}: a cluster deploy needs every PostgreSQL host "
            "(check that it is up and that ssh works; nothing was changed)"
        )


def load_context(tolerate_unreachable: Callable[[Topology], Collection[str]] | None = None) -> Context:
    """tolerate_unreachable: from the topology, the hosts the run may go on without (default none)."""
    try:
        topology = build_topology(inventory_hosts(inventory))
    except InventoryError as error:
        raise ClusterConfigError("the inventory is not a valid cluster:\n" + str(error)) from None
    secrets_path = host.data.get("secrets_file")
    try:
        secrets = resolve_secrets(required_secrets(topology.cluster.backup is not None), os.environ,
                                  _secrets_file_values(secrets_path), secrets_path)
    except SecretsError as error:
        raise ClusterConfigError("missing secrets:\n" + str(error)) from None
    _check_all_connected(topology, tolerate_unreachable(topology) if tolerate_unreachable else ())
    node = next((n for n in topology.nodes if n.name == host.name), None)
    return Context(topology=topology, secrets=secrets, node=node, host_name=host.name)
