"""SSH trust for the postgres user between cluster hosts: ed25519 keys, authorized_keys and
pinned known_hosts (never StrictHostKeyChecking=no). Archive shipping and failover use it.

The peers' public keys are read from the peers themselves while the operation executes, after
every host has run ensure_ssh_keypair (pyinfra finishes an operation on all hosts before the
next one starts), so a first run on bare hosts distributes keys made moments earlier.
"""
from __future__ import annotations

from io import StringIO

from pyinfra import host, inventory, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import StateStage
from pyinfra.facts.files import FileContents
from pyinfra.operations import files

from operations.run_snapshot import read_fact

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


def _key_path(home: str) -> str:
    return f"{home}/.ssh/id_ed25519"


def public_key_path(home: str) -> str:
    return _key_path(home) + ".pub"


@operation()
def ensure_ssh_keypair(user: str, home: str):
    """
    The user's ed25519 keypair, made on the host (the private key never leaves it).

    + user: the key's owner (postgres)
    + home: the user's home directory
    """
    # The modes are checked at every run: archive-wal, may-promote and the cascade monitor use
    # this key, and ssh refuses a private key or a ~/.ssh others can read.
    yield from files.directory._inner(path=f"{home}/.ssh", user=user, group=user, mode="700")
    if read_fact(host, FileContents, path=public_key_path(home)):
        yield from files.file._inner(path=_key_path(home), user=user, group=user, mode="600")
        yield from files.file._inner(path=_key_path(home) + ".pub", user=user, group=user, mode="644")
        return
    yield StringCommand("runuser", "-u", user, "--", "ssh-keygen", "-q", "-t", "ed25519", "-N", "''",
                        "-C", f"{user}@{host.name}", "-f", _key_path(home))


def _peer_line(peer: str, path: str) -> str | None:
    """The first line of a file on another cluster host (its live content at execute time)."""
    lines = read_fact(inventory.get_host(peer), FileContents, path=path)
    return lines[0].strip() if lines else None


def _collect(peers: list[str], path: str, what: str) -> dict[str, str]:
    found = {peer: _peer_line(peer, path) for peer in peers}
    missing = [peer for peer, line in found.items() if not line]
    if missing and state.current_stage >= StateStage.Execute:
        raise OperationError(f"no {what} on {', '.join(missing)} ({path}): did an earlier step fail there?")
    return {peer: line for peer, line in found.items() if line}


@operation()
def ensure_ssh_trust(user: str, home: str, peers: dict[str, str]):
    """
    authorized_keys with the peers' keys of `user`, and known_hosts pinned to their host keys.

    + user: the user (postgres)
    + home: its home directory
    + peers: {inventory name: address} of the other cluster hosts
    """
    names = sorted(peers)
    keys = _collect(names, public_key_path(home), f"{user} ssh key")
    host_keys = _collect(names, HOST_KEY, "ssh host key")
    authorized = "".join(f"{keys[n]}\n" for n in names if n in keys)
    # Each peer by its address and its name: archive_command and failover use the address.
    known = "".join(f"{peers[n]},{n} {' '.join(host_keys[n].split()[:2])}\n" for n in names if n in host_keys)
    yield from files.put._inner(src=StringIO(authorized), dest=f"{home}/.ssh/authorized_keys",
                                user=user, group=user, mode="600")
    yield from files.put._inner(src=StringIO(known), dest=f"{home}/.ssh/known_hosts",
                                user=user, group=user, mode="644")
