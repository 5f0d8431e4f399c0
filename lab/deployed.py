"""A snapshot of a freshly deployed cluster, built once and rebuilt when what it depends on changed:
tests that need "a deployed cluster" boot it in seconds instead of deploying for ~100 s."""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

from . import labs, snapshots
from .client import LAB_INVENTORY, Lab, holds_resources, lab_cli, wait_until
from .paths import lab_file
from .shell import LabError, log


def snapshot_name(hosts: int, prefix: str = "") -> str:
    """One snapshot per host count and test-lab prefix (parallel checkouts each keep their own)."""
    return f"deployed{hosts}" + (f"-{prefix}" if prefix else "")


def builder_name(hosts: int, prefix: str = "") -> str:
    return f"{prefix}snap{hosts}"[:6]


@contextmanager
def _build_lock(snap: str):
    snapshots.SNAPSHOT_ROOT.mkdir(parents=True, exist_ok=True)
    with open(snapshots.SNAPSHOT_ROOT / f".{snap}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _usable(snap: str) -> str | None:
    """Why the snapshot cannot be booted as it is (None: it can)."""
    try:
        meta = snapshots.load(snap)
        snapshots.check_fresh(snap, meta)
    except LabError as error:
        return str(error)
    for other, subnet in labs.taken_subnets("").items():
        if subnet == meta["subnet"] and other not in snapshots.users(snap):
            return f"its subnet {subnet} is now used by lab {other!r}"
    return None


def ensure_deployed_snapshot(hosts: int = 3, prefix: str | None = None, deadline_s: float = 900) -> str:
    """The name of a fresh snapshot of `hosts` lab hosts right after deploy.py on
    inventories/lab.py; built when missing or stale (bare lab, deploy, healthy, clean stop,
    snapshot), under a file lock so that parallel users build it once."""
    prefix = os.environ.get("PGCASCADE_TEST_LAB_PREFIX", "") if prefix is None else prefix
    snap = snapshot_name(hosts, prefix)
    with _build_lock(snap):
        if lab_file(builder_name(hosts, prefix)).exists():  # a build was interrupted: its lab holds the subnet
            lab_cli(builder_name(hosts, prefix), "down", check=False)
        why = _usable(snap)
        if why is None:
            return snap
        if snapshots.users(snap):
            raise LabError(f"snapshot {snap!r} must be rebuilt ({why}) but labs boot from it: "
                           f"{', '.join(snapshots.users(snap))}; take them down")
        for _attempt in range(3):
            log(f"building snapshot {snap!r}: {why}")
            key = _build(snap, hosts, prefix, deadline_s)
            changed = snapshots.stale_reasons(key, snapshots.current_key(hosts))
            if not changed:
                return snap
            # The deploy may have shipped either version of those files: build again.
            why = f"{'; '.join(changed)} while it was built"
        raise LabError(f"snapshot {snap!r}: the deploy files kept changing while it was built ({why})")


BOOT_DEADLINE = 300  # seconds from a snapshot's boot to a healthy cluster (seen: 15 s idle, over 120 s at load 48)


def boot_deployed(name: str, hosts: int = 3, prefix: str | None = None) -> Lab:
    """A lab booted from the snapshot of a deployed cluster (built when missing or stale), once
    the cluster is back as the deploy left it: the master holds heartbeat's resources and the
    VIP, the standbys stream, tasks.status exits 0. The caller takes it down."""
    lab = Lab(name, hosts, snapshot=ensure_deployed_snapshot(hosts, prefix))
    try:
        master = lab.desc["hosts"][0]["name"]
        wait_until(lambda: holds_resources(lab, master), BOOT_DEADLINE,
                   f"heartbeat giving {master} the resources after the boot")
        lab.wait_healthy(BOOT_DEADLINE)
    except BaseException:
        lab.down()
        raise
    return lab


def _build(snap: str, hosts: int, prefix: str, deadline_s: float) -> dict:
    """Bare lab, deploy, healthy, snapshot, lab down; returns the key the deploy was read with."""
    started = time.monotonic()
    snapshots.remove(snap)  # its subnet is free again for the builder to choose
    name = builder_name(hosts, prefix)
    key = snapshots.current_key(hosts)  # what the deploy below ships, read before it starts
    try:
        builder = Lab(name, hosts, exact_name=True, subnet="last")
        proc = builder.pyinfra("-y", LAB_INVENTORY, "deploy.py", timeout=deadline_s)
        if proc.returncode != 0:
            raise LabError(f"snapshot {snap!r}: the deploy on lab {builder.name!r} failed:\n"
                           f"{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
        master = builder.desc["hosts"][0]["name"]
        wait_until(lambda: holds_resources(builder, master), 180, f"heartbeat giving {master} the resources")
        builder.wait_healthy(timeout=180)
        snapshots.snapshot(builder.name, snap, key=key)
    finally:
        lab_cli(name, "down", check=False)
    log(f"snapshot {snap!r} built in {time.monotonic() - started:.0f} s")
    return key
