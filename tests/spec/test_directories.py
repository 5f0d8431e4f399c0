"""Every managed directory with its mode and owner (or absent, when the registry says so)."""
from __future__ import annotations

REGISTRY_KIND = "directories"


def test_directory(cluster, entry_of):
    name, entry = entry_of
    d = cluster.host(name).file(entry.path)
    if not entry.present:
        assert not d.exists, f"{name}: {entry.path} should be absent"
        return
    assert d.is_directory, f"{name}: {entry.path} is not a directory"
    assert (d.user, d.group) == (entry.owner, entry.group), f"{name}: {entry.path} is {d.user}:{d.group}"
    assert d.mode == int(entry.mode, 8), f"{name}: {entry.path} has mode {d.mode:04o}, not {entry.mode}"
