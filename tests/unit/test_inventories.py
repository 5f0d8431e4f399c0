"""The example production inventory describes a valid cluster (checked without any host)."""
from __future__ import annotations

import runpy

from lab.client import ROOT
from planner.topology import build_topology


def test_prod_inventory_is_a_valid_seed_cascade():
    inventory = runpy.run_path(str(ROOT / "inventories/prod.py"))
    hosts = {name: {"groups": [group], "data": data}
             for group in ("master", "cascade", "downstream") for name, data in inventory[group]}
    topology = build_topology(hosts)
    assert [(n.name, n.role, n.upstream, n.tier) for n in topology.nodes] == [
        ("master-host", "master", None, 0),
        ("cascade-host", "cascade", "master-host", 1),
        ("downstream-host", "downstream", "cascade-host", 2),
    ]
    assert topology.cluster.vip.address == "192.168.1.15"
    assert "signed-by" in topology.cluster.apt_repository["line"]
