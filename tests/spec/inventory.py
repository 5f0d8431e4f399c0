"""An inventory as the spec sees it: the topology, each host's registry and a testinfra host."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import testinfra
from pyinfra.api import Config, State
from pyinfra.context import ctx_config, ctx_state
from pyinfra_cli.inventory import make_inventory

from deploys.context import inventory_hosts
from deploys.hostrules_package import package_contents
from planner import registry
from planner.model import Topology
from planner.secrets import ALL_SECRETS, SecretsError, parse_secrets_file, resolve_secrets
from planner.topology import build_topology


@dataclass
class SpecCluster:
    topology: Topology
    registries: dict[str, registry.HostRegistry]
    ssh: dict[str, dict]  # inventory name -> its ssh data
    hosts: dict = field(default_factory=dict)

    def host(self, name: str):
        """The testinfra host (ssh, pinned host keys, sudo unless root), made once."""
        if name not in self.hosts:
            data = self.ssh[name]
            user = data.get("ssh_user") or "root"
            extra = ["-o BatchMode=yes", "-o StrictHostKeyChecking=yes"]
            if data.get("ssh_known_hosts_file"):
                extra.append(f"-o UserKnownHostsFile={data['ssh_known_hosts_file']}")
            port = f":{data['ssh_port']}" if data.get("ssh_port") else ""
            self.hosts[name] = testinfra.get_host(
                f"ssh://{user}@{data.get('ssh_hostname') or name}{port}", ssh_identity_file=data.get("ssh_key"),
                ssh_extra_args=" ".join(extra), sudo=user != "root", controlpersist=120,
                controlpath=f"/tmp/pgcascade-spec-{os.getpid()}-{name}")  # one ssh connection per host
        return self.hosts[name]


def _secrets(hosts: dict) -> dict | None:
    path = next((h["data"].get("secrets_file") for h in hosts.values() if h["data"].get("secrets_file")), None)
    try:
        values = parse_secrets_file(open(path).read(), source=path) if path and os.path.isfile(path) else None
        return resolve_secrets(list(ALL_SECRETS), os.environ, values, path)
    except (SecretsError, OSError):
        return None  # the secret files' content is then not compared (their modes still are)


def load_spec_cluster(path: str) -> SpecCluster:
    config, state = Config(), State(check_for_changes=False)
    state.cwd = os.getcwd()
    with ctx_config.use(config), ctx_state.use(state):
        inventory = make_inventory(path, cwd=os.getcwd())
    hosts = inventory_hosts(inventory)
    topology = build_topology(hosts)
    secrets = _secrets(hosts)
    names = [n.name for n in topology.nodes]
    return SpecCluster(topology=topology,
                       registries={n: registry.entries(topology, n, secrets, hostrules=package_contents())
                                   for n in names},
                       ssh={n: hosts[n]["data"] for n in names})
