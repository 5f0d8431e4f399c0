"""Packages: install only what is missing (an apt-get update only when something is)."""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.deb import DebPackages

from operations.run_snapshot import read_fact

APT = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold"


@operation()
def ensure_apt_packages(packages: list[str]):
    """
    Install the packages that are missing, without their Recommends.

    + packages: Debian package names
    """
    installed = read_fact(host, DebPackages)
    missing = [p for p in packages if p not in installed]
    if not missing:
        host.noop(f"installed: {', '.join(packages)}")
        return
    yield f"{APT} update"
    yield StringCommand(APT, "install", "--no-install-recommends", *missing)
