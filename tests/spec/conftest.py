"""The host-state spec's inventory: PGCASCADE_SPEC_INVENTORY (`make verify INVENTORY=...`).

Without it the spec is not collected (the suite runs it against a lab from tests/lab/test_spec.py).
Read-only: every check reads files, units, sockets or runs a SELECT.
"""
from __future__ import annotations

import os

import pytest

INVENTORY_ENV = "PGCASCADE_SPEC_INVENTORY"

if not os.environ.get(INVENTORY_ENV):
    collect_ignore_glob = ["test_*.py"]

_CLUSTER = None


def spec_cluster():
    """The inventory's hosts and registries (tests.spec.inventory.SpecCluster), loaded once.

    Imported here, not at the top: pyinfra_cli monkey-patches threading with gevent on import, which
    would break pytest-xdist's workers in a run that only collects this directory and skips it."""
    from tests.spec.inventory import load_spec_cluster

    global _CLUSTER  # one load per pytest run: the parametrization and the fixtures share it
    if _CLUSTER is None:
        _CLUSTER = load_spec_cluster(os.environ[INVENTORY_ENV])
    return _CLUSTER


def pytest_generate_tests(metafunc):
    """entry_of: (host, entry) for each entry of the module's REGISTRY_KIND on every host;
    host_name: every PostgreSQL host."""
    cluster = spec_cluster()
    if "entry_of" in metafunc.fixturenames:
        kind = metafunc.module.REGISTRY_KIND
        params = [(name, entry) for name, reg in cluster.registries.items() for entry in getattr(reg, kind)]
        metafunc.parametrize("entry_of", params, ids=[f"{name}:{entry.key}" for name, entry in params])
    if "host_name" in metafunc.fixturenames:
        metafunc.parametrize("host_name", list(cluster.registries))


@pytest.fixture(scope="session")
def cluster():
    return spec_cluster()
