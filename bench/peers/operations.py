"""The bench deploy's own operations (Patroni peer): packages installed without starting anything,
and shell polls with a deadline."""
from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.deb import DebPackages

APT = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold"
POLICY = "/usr/sbin/policy-rc.d"


@operation()
def ensure_packages_unstarted(packages: list[str], pg_version: int):
    """
    Install the missing packages with no daemon started by their maintainer scripts (a
    policy-rc.d that says no, removed afterwards), then drop the cluster postgresql-common
    creates: Patroni makes and runs its own.

    + packages: Debian package names
    + pg_version: the PostgreSQL major version whose default cluster goes
    """
    installed = host.get_fact(DebPackages)
    missing = [p for p in packages if p not in installed]
    if not missing:
        host.noop(f"installed: {', '.join(packages)}")
        return
    yield f"printf '#!/bin/sh\\nexit 101\\n' > {POLICY} && chmod 755 {POLICY}"
    yield f"{APT} update"
    yield StringCommand(APT, "install", "--no-install-recommends", *missing)
    yield f"rm -f {POLICY}"
    yield (f"if [ -d /etc/postgresql/{pg_version}/main ]; then pg_dropcluster --stop {pg_version} main; fi")


@operation()
def wait_for(check: str, seconds: int, what: str):
    """
    Poll a shell check every 0.5 s until it succeeds, or fail after `seconds`.

    + check: a shell command that succeeds once the state is reached
    + seconds: the deadline
    + what: the state, in words (for the failure message)
    """
    tries = seconds * 2
    yield (f"for i in $(seq {tries}); do if {check}; then exit 0; fi; sleep 0.5; done; "
           f"echo {shlex.quote(f'{host.name}: no {what} within {seconds} s')} >&2; exit 1")
