"""Files that hold secrets: created 0600 before any content is written, never shown in --diff."""
from __future__ import annotations

import hashlib
from io import BytesIO

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.facts.files import File, Sha256File


@operation()
def ensure_private_file(dest: str, content: str, user: str, group: str):
    """
    A file only its owner can read, with exactly this content.

    The file is created empty with mode 0600 first, so the content never sits in a
    world-readable file, not even for a moment (an upload keeps an existing file's mode).

    + dest: path on the host
    + content: the file's content (never printed)
    + user: owner
    + group: group
    """
    current = host.get_fact(File, path=dest)
    mode_ok = bool(current and current.get("mode") == 600 and current.get("user") == user
                   and current.get("group") == group)
    same = bool(current) and host.get_fact(Sha256File, path=dest) == hashlib.sha256(content.encode()).hexdigest()
    if mode_ok and same:
        host.noop(f"{dest} is up to date")
        return
    if not current:
        yield StringCommand("install", "-m", "0600", "-o", user, "-g", group, "/dev/null", dest)
    elif not mode_ok:
        yield StringCommand("chown", f"{user}:{group}", dest, "&&", "chmod", "0600", dest)
    if not same:
        yield FileUploadCommand(BytesIO(content.encode()), dest)
