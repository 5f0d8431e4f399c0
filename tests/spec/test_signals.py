"""standby.signal on each standby, none on the master."""
from __future__ import annotations

REGISTRY_KIND = "signals"


def test_signal(cluster, entry_of):
    name, entry = entry_of
    exists = cluster.host(name).file(entry.path).exists
    assert exists == entry.present, f"{name}: {entry.path} {'missing' if entry.present else 'present'}"
