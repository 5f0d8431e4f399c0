"""SSH trust for the postgres user between cluster hosts: ed25519 keys, authorized_keys and
pinned known_hosts (never StrictHostKeyChecking=no). Archive shipping and failover use it.

The peers' public keys are read from the peers themselves while the operation executes, after
every host has run ensure_ssh_keypair (pyinfra finishes an operation on all hosts before the
next one starts), so a first run on bare hosts distributes keys made moments earlier.
"""
from __future__ import annotations

from pyinfra import host, inventory, state
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import StateStage
from pyinfra.facts.files import FileContents

from facts.managed import PathStates
from operations.managed_files import apply_entries, directory_commands, file_commands
from operations.run_snapshot import read_fact
from planner.registry import DirectoryEntry, FileEntry

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
    directory = DirectoryEntry(f"{home}/.ssh", owner=user, group=user, mode="0700")
    key = FileEntry(_key_path(home), owner=user, group=user, mode="0600")
    public = FileEntry(public_key_path(home), owner=user, group=user, mode="0644")
    observed = read_fact(host, PathStates, paths=[directory.path, key.path, public.path])
    commands, _ = directory_commands(directory, observed.get(directory.path))
    yield from commands
    if observed.get(public.path):
        for entry in (key, public):  # their modes and owner (the content is the host's)
            commands, _ = file_commands(entry, observed.get(entry.path))
            yield from commands
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
    wanted = [FileEntry(f"{home}/.ssh/authorized_keys", owner=user, group=user, mode="0600", content=authorized),
              FileEntry(f"{home}/.ssh/known_hosts", owner=user, group=user, mode="0644", content=known)]
    observed = read_fact(host, PathStates, paths=[entry.path for entry in wanted])
    yield from apply_entries(wanted, observed, f"{len(names)} peer(s) trusted and pinned")
