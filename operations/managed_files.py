"""A concern's managed files and directories (planner.registry entries) in one operation: one ssh
round trip reads them all (PathStates), and only what differs is changed."""
from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from io import BytesIO

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.command import FileUploadCommand

from facts.managed import PathStates
from operations.run_snapshot import read_fact
from planner.registry import DirectoryEntry, FileEntry


def _mode(text) -> str:
    return str(text or "").lstrip("0") or "0"


def _attributes(entry, observed: dict) -> list[StringCommand]:
    """chown/chmod (one command) when the owner, group or mode differ (no content touched)."""
    parts = []
    if (observed.get("owner"), observed.get("group")) != (entry.owner, entry.group):
        parts.append(["chown", f"{entry.owner}:{entry.group}", entry.path])
    if _mode(observed.get("mode")) != _mode(entry.mode):
        parts.append(["chmod", entry.mode, entry.path])
    return [_and(*parts)] if parts else []


def _and(*commands: list[str]) -> StringCommand:
    """Commands joined with && (one round trip to the host instead of one each)."""
    bits: list[str] = []
    for command in commands:
        bits += (["&&"] if bits else []) + command
    return StringCommand(*bits)


def directory_commands(entry: DirectoryEntry, observed: dict | None) -> tuple[list, str | None]:
    if not entry.present:
        return ([StringCommand("rm", "-rf", entry.path)], f"remove {entry.path}") if observed else ([], None)
    if observed is None:
        return [StringCommand("install", "-d", "-m", entry.mode, "-o", entry.owner, "-g", entry.group,
                              entry.path)], f"create {entry.path}"
    commands = _attributes(entry, observed)
    return commands, f"chmod/chown {entry.path}" if commands else None


def file_commands(entry: FileEntry, observed: dict | None) -> tuple[list, str | None]:
    if not entry.present:
        return ([StringCommand("rm", "-f", entry.path)], f"remove {entry.path}") if observed else ([], None)
    if entry.content is None:  # made on the host (a key) or not known here: its mode and owner only
        commands = _attributes(entry, observed) if observed else []
        return commands, f"chmod/chown {entry.path}" if commands else None
    data = entry.content.encode()
    if observed is None:
        # Created with its mode first: a secret never sits in a file others can read.
        return [_and(["mkdir", "-p", posixpath.dirname(entry.path)],
                     ["install", "-m", entry.mode, "-o", entry.owner, "-g", entry.group, "/dev/null", entry.path]),
                FileUploadCommand(BytesIO(data), entry.path),
                *_attributes(entry, {"mode": "0", "owner": "", "group": ""})], f"install {entry.path}"
    if observed.get("sha256") != hashlib.sha256(data).hexdigest():
        first = _attributes(entry, observed) if entry.secret else []
        return [*first, FileUploadCommand(BytesIO(data), entry.path),
                *_attributes(entry, {"mode": "0", "owner": "", "group": ""})], f"rewrite {entry.path}"
    commands = _attributes(entry, observed)
    return commands, f"chmod/chown {entry.path}" if commands else None


@operation()
def ensure_managed_files(files: list[FileEntry], directories: list[DirectoryEntry] | None = None):
    """
    These directories, then files: present with their content, mode and owner, or absent. The
    content is never shown (some hold secrets).

    + files: the registry's file entries
    + directories: the registry's directory entries
    """
    directories = list(directories or [])
    if not files and not directories:
        host.noop("nothing managed here")
        return
    state = read_fact(host, PathStates, paths=[d.path for d in directories] + [f.path for f in files])
    yield from apply_entries([*directories, *files], state,
                             f"{len(files)} file(s), {len(directories)} director(ies) as managed")


def apply_entries(entries: Sequence[FileEntry | DirectoryEntry], observed: dict, as_wanted: str):
    """Each entry's commands, in order; what changed is logged, else `as_wanted` (a no-op)."""
    done = []
    for entry in entries:
        if isinstance(entry, DirectoryEntry):
            commands, what = directory_commands(entry, observed.get(entry.path))
        else:
            commands, what = file_commands(entry, observed.get(entry.path))
        yield from commands
        done += [what] if what else []
    if done:
        host.log("; ".join(done))
    else:
        host.noop(as_wanted)
