"""The snapshot key: what a snapshot of a deployed lab depends on, and how a stale one is named."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab import client, deployed, snapshots
from planner.settings import PRIMARY_FLAG_PATH


def make_tree(root: Path) -> None:
    for rel in ("deploy.py", "config.py", "inventories/lab.py", "inventories/prod.py", "templates/ha.cf.j2",
                "planner/__init__.py", "planner/topology.py", "hostrules/__init__.py", "hostrules/promote.py",
                "lab/__init__.py", "tests/__init__.py", "tasks/__init__.py", "bench/__init__.py",
                "docs/architecture.md", "README.md", "planner/__pycache__/topology.cpython-311.pyc"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def test_deploy_paths_count_every_shipped_package_and_nothing_else(tmp_path):
    make_tree(tmp_path)
    found = {str(p.relative_to(tmp_path)) for p in snapshots.deploy_paths(tmp_path)}
    assert found == {"deploy.py", "config.py", "inventories/lab.py", "templates/ha.cf.j2", "planner/__init__.py",
                     "planner/topology.py", "hostrules/__init__.py", "hostrules/promote.py"}


def test_the_repository_s_deploy_paths_hold_the_deploy_and_not_the_tests():
    found = {p.relative_to(snapshots.REPO_ROOT).parts[0] for p in snapshots.deploy_paths()}
    assert {"deploy.py", "deploys", "operations", "facts", "planner", "templates"} <= found
    assert not found & {"tests", "lab", "bench", "tasks"}


def key(**changes) -> dict:
    base = {"format": "1", "base": "b1", "repo": "r1", "hosts": 3,
            "deploy": {"deploy.py": "h1", "templates/ha.cf.j2": "h2", "planner/topology.py": "h3"}}
    return {**base, **changes}


@pytest.mark.parametrize("now, expected", [
    (key(), []),
    (key(base="b2"), ["base image b1 -> b2"]),
    (key(repo="r2"), ["apt repository r1 -> r2"]),
    (key(hosts=5), ["host count 3 -> 5"]),
    (key(deploy={"deploy.py": "h1", "templates/ha.cf.j2": "X", "planner/topology.py": "h3"}),
     ["deploy files changed since the snapshot: templates/ha.cf.j2"]),
    (key(deploy={"deploy.py": "h1", "templates/ha.cf.j2": "h2", "planner/topology.py": "h3", "hostrules/a.py": "n"}),
     ["deploy files new since the snapshot: hostrules/a.py"]),
    (key(deploy={"deploy.py": "h1", "templates/ha.cf.j2": "h2"}),
     ["deploy files removed since the snapshot: planner/topology.py"]),
])
def test_stale_reasons_name_what_changed(now, expected):
    assert snapshots.stale_reasons(key(), now) == expected


def test_a_change_to_a_deploy_file_changes_the_key(tmp_path):
    make_tree(tmp_path)
    before = snapshots.deploy_hashes(tmp_path)
    (tmp_path / "hostrules/promote.py").write_text("changed")
    after = snapshots.deploy_hashes(tmp_path)
    assert [p for p in before if before[p] != after[p]] == ["hostrules/promote.py"]
    (tmp_path / "tests/test_x.py").write_text("a test")
    assert snapshots.deploy_hashes(tmp_path) == after


def test_parallel_prefixes_get_their_own_snapshot_and_builder_lab():
    assert deployed.snapshot_name(3) == "deployed3"
    assert deployed.snapshot_name(3, "s") == "deployed3-s"
    assert deployed.builder_name(3, "s") == "ssnap3"
    assert deployed.builder_name(5, "") == "snap5"


def test_the_lab_client_s_primary_flag_is_the_product_s():
    assert client.PRIMARY_FLAG_PATH == PRIMARY_FLAG_PATH


def test_a_lab_to_snapshot_takes_the_last_free_subnet_others_the_first(monkeypatch):
    from lab import network
    monkeypatch.setattr(network, "_routed_networks", lambda: [])
    assert str(network.choose_subnet("a", None, [])) == "198.51.100.128/27"
    assert str(network.choose_subnet("a", None, [], last=True)) == "203.0.113.224/27"
    assert str(network.choose_subnet("a", None, ["203.0.113.224/27"], last=True)) == "203.0.113.192/27"


def test_a_free_subnet_another_lab_routes_is_skipped(monkeypatch):
    import ipaddress

    from lab import network
    monkeypatch.setattr(network, "_routed_networks",
                        lambda: [(ipaddress.ip_network("198.51.100.128/27"), "pgl-other")])
    assert str(network.choose_subnet("a", None, [])) == "198.51.100.160/27"
