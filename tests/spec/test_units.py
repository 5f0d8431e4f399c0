"""Every managed systemd unit enabled and running (or neither)."""
from __future__ import annotations

REGISTRY_KIND = "units"


def test_unit(cluster, entry_of):
    name, entry = entry_of
    service = cluster.host(name).service(entry.unit)
    if entry.present:
        assert service.is_enabled, f"{name}: {entry.unit} is not enabled"
        assert service.is_running, f"{name}: {entry.unit} is not running"
    else:  # usually not installed at all: ask systemctl (testinfra refuses an unknown unit)
        host = cluster.host(name)
        enabled = host.run("systemctl is-enabled %s", entry.unit).stdout.strip()
        active = host.run("systemctl is-active %s", entry.unit).stdout.strip()
        assert active != "active", f"{name}: {entry.unit} runs but should not"
        assert not enabled.startswith("enabled"), f"{name}: {entry.unit} is enabled but should not be"
