"""Every managed file (and directory, and standby.signal): present with its content, mode and
owner, or absent when the registry says so."""
from __future__ import annotations

import hashlib

REGISTRY_KIND = "files"


def test_file(cluster, entry_of):
    name, entry = entry_of
    f = cluster.host(name).file(entry.path)
    if not entry.present:
        assert not f.exists, f"{name}: {entry.path} should be absent"
        return
    assert f.is_file, f"{name}: {entry.path} is missing"
    assert (f.user, f.group) == (entry.owner, entry.group), f"{name}: {entry.path} is {f.user}:{f.group}"
    assert f.mode == int(entry.mode, 8), f"{name}: {entry.path} has mode {f.mode:04o}, not {entry.mode}"
    if entry.content is not None:
        assert f.sha256sum == hashlib.sha256(entry.content.encode()).hexdigest(), \
            f"{name}: {entry.path} does not have the managed content"
