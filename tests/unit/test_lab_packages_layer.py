"""The lab's pre-installed packages layer holds what the deploy installs on every role's host
(lab/image.py PROVISIONED_PACKAGES against deploys/packages.py's rule), so that a deploy on it
has nothing left to install; the backlog marker of archive-pgbackrest lives where postgres may
write on such a host."""
from __future__ import annotations

from dataclasses import replace

from deploys.context import Context
from deploys.packages import package_list
from lab.image import PROVISIONED_PACKAGES
from planner.backup import archive_pgbackrest_vars
from planner.model import BackupRepository
from planner.paths import POSTGRES_HOME
from tests.unit.topologies import three


def _with_backup():
    top = three(version=15)
    return replace(top, cluster=replace(top.cluster, backup=BackupRepository("pg4", "198.51.100.14")))


def test_the_layer_holds_every_roles_packages_and_nothing_else():
    top = _with_backup()
    contexts = [Context(top, {}, n, n.name) for n in top.nodes] + [Context(top, {}, None, "pg4")]
    wanted = {package for ctx in contexts for package in package_list(ctx)}
    assert wanted == set(PROVISIONED_PACKAGES)


def test_the_downstream_and_the_repository_host_install_less_than_the_layer():
    top = _with_backup()
    downstream = next(n for n in top.nodes if n.role == "downstream")
    assert "heartbeat" not in package_list(Context(top, {}, downstream, downstream.name))
    assert package_list(Context(top, {}, None, "pg4")) == ["pgbackrest"]


def test_the_backlog_marker_is_in_the_postgres_home_not_the_data_directorys_parent():
    top = _with_backup()
    marker = archive_pgbackrest_vars(top.cluster.backup, top.cluster)["backlog_marker"]
    assert marker.startswith(f"{POSTGRES_HOME}/.pgcascade-15-main-")
    assert not marker.startswith(top.cluster.data_directory.rsplit("/", 1)[0] + "/")
