"""Every managed PostgreSQL setting comes from the include file only (no ALTER SYSTEM, no other
file, no per-role or per-database value weakening synchronous_commit on the primary)."""
from __future__ import annotations

import json
import shlex

import pytest

from facts.managed import _SQL
from planner import registry

REGISTRY_KIND = "settings"
_SOURCES: dict[str, dict] = {}


def _postgres(cluster, name: str) -> dict:
    """The server's view (the ManagedState query), once per host."""
    if name not in _SOURCES:
        c = cluster.topology.cluster
        names = ",".join(registry.managed_setting_names(cluster.topology))
        sql = " ".join(_SQL.split())
        out = cluster.host(name).check_output(
            f"printf '%s\\n' {shlex.quote(sql)} | (cd / && runuser -u postgres -- psql -XAtq -p {c.port} "
            f"-d postgres -v names={shlex.quote(names)} -v role={shlex.quote(c.replication_user)} -f -)")
        _SOURCES[name] = json.loads(out)
    return _SOURCES[name]


def test_setting_source(cluster, entry_of):
    name, entry = entry_of
    reg = cluster.registries[name]
    postgres = _postgres(cluster, name)
    observed = registry.setting_sources(postgres, reg.extra["include_file"], reg.extra["main_config_file"])
    live = registry.Live(primary=not postgres["in_recovery"])
    problems = entry.check(observed.get(entry.name), live)
    assert not problems, f"{name}: {entry.name}: " + "; ".join(f"found {p[1]} (expected {p[0]})" for p in problems)


def test_synchronous_commit_not_weakened_on_the_primary(cluster):
    master = cluster.topology.master.name
    postgres = _postgres(cluster, master)
    if postgres["in_recovery"]:
        pytest.fail(f"{master}: the inventory's master is in recovery")
    sources = registry.setting_sources(postgres, "", "")
    weak = [o for o in sources.get("synchronous_commit", {}).get("other_sources", [])
            if registry.weakens_synchronous_commit(o.get("setting"))]
    assert not weak, f"{master}: synchronous_commit weakened: {weak}"
