"""SSH trust for the postgres user between every pair of cluster hosts."""
from __future__ import annotations

from pyinfra.api import deploy

from deploys.context import Context
from operations.ssh_trust import ensure_ssh_keypair, ensure_ssh_trust
from planner.settings import POSTGRES_HOME


@deploy("SSH trust")
def configure_ssh_trust(ctx: Context) -> None:
    ensure_ssh_keypair(name="postgres ssh key (ed25519)", user="postgres", home=POSTGRES_HOME)
    peers = {n.name: n.address for n in ctx.topology.nodes if n.name != ctx.this_node.name}
    ensure_ssh_trust(name="postgres authorized_keys and pinned known_hosts", user="postgres",
                     home=POSTGRES_HOME, peers=peers)
