"""Snapshots of a deployed lab: each host's disk (its overlay upper dir) saved once, booted again
in seconds as a lower layer of new hosts.

A snapshot holds what a lab needs to come back as it was: every host's upper dir (whiteouts and
extended attributes kept), the hosts' ssh host keys, the lab's ssh key and secrets file, and the
subnet (the hosts' configuration holds their addresses, so a lab booted from the snapshot uses
the same subnet). It is keyed by what it depends on: the base image, the repository, every file
the deploy ships or decides with, and the host count. A stale snapshot is refused, naming the
difference.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import image, labs, machines, network
from .paths import CACHE_DIR, host_dir, lab_dir, lab_file
from .shell import LabError, log, run

SNAPSHOT_ROOT = CACHE_DIR / "snapshots"
FORMAT_VERSION = "2"  # bump when the layout below changes
REPO_ROOT = Path(__file__).resolve().parents[1]
# What the deploy ships to the hosts or decides with. Every other top-level Python package is
# counted too (a new one is most likely shipped), except these, which never reach a host.
DEPLOY_FILES = ("deploy.py", "config.py", "inventories/lab.py")
NOT_DEPLOYED = frozenset({"lab", "tests", "bench", "tasks", "docs", "inventories", ".venv", ".git", ".ci"})
LAB_FILES = ("id_ed25519", "id_ed25519.pub", "secrets.env", "known_hosts")


def snapshot_dir(snap: str) -> Path:
    return SNAPSHOT_ROOT / snap


def _meta_file(snap: str) -> Path:
    return snapshot_dir(snap) / "snapshot.json"


def deploy_paths(root: Path = REPO_ROOT) -> list[Path]:
    """Every file the deploy ships or decides with, sorted."""
    found = [root / name for name in DEPLOY_FILES if (root / name).is_file()]
    for top in sorted(root.iterdir()):
        if not top.is_dir() or top.name in NOT_DEPLOYED or top.name.startswith("."):
            continue
        if top.name != "templates" and not (top / "__init__.py").exists():
            continue
        found.extend(p for p in top.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return sorted(found)


def deploy_hashes(root: Path = REPO_ROOT) -> dict[str, str]:
    """{relative path: sha256} of deploy_paths()."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in deploy_paths(root)}


def current_key(hosts: int) -> dict:
    """What a snapshot of `hosts` deployed hosts depends on, as it is now."""
    return {"format": FORMAT_VERSION, "base": image.base_key(), "repo": image.repo_key(), "hosts": hosts,
            "deploy": deploy_hashes()}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def stale_reasons(saved: dict, now: dict) -> list[str]:
    """What differs between a snapshot's key and the current one (empty: it is fresh)."""
    reasons = []
    for part, what in (("format", "snapshot format"), ("base", "base image"), ("repo", "apt repository"),
                       ("hosts", "host count")):
        if saved.get(part) != now.get(part):
            reasons.append(f"{what} {saved.get(part)} -> {now.get(part)}")
    old, new = saved.get("deploy", {}), now.get("deploy", {})
    changed = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    for label, paths in (("changed", changed), ("new", added), ("removed", removed)):
        if paths:
            shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
            reasons.append(f"deploy files {label} since the snapshot: {shown}")
    return reasons


def load(snap: str) -> dict:
    try:
        return json.loads(_meta_file(snap).read_text())
    except FileNotFoundError:
        raise LabError(f"no snapshot {snap!r} (no {_meta_file(snap)}): make it with "
                       f"`python -m lab snapshot {snap} --name LAB` from a deployed lab") from None


def all_snapshots() -> list[str]:
    if not SNAPSHOT_ROOT.exists():
        return []
    return sorted(p.parent.name for p in SNAPSHOT_ROOT.glob("*/snapshot.json"))


def check_fresh(snap: str, meta: dict | None = None) -> None:
    meta = meta or load(snap)
    reasons = stale_reasons(meta["key"], current_key(len(meta["hosts"])))
    if reasons:
        raise LabError(f"snapshot {snap!r} is stale: " + "; ".join(reasons) +
                       f". Make it again from a freshly deployed lab (`python -m lab snapshot {snap} --name LAB`)")


def users(snap: str) -> list[str]:
    """The labs whose hosts boot from the snapshot."""
    found = []
    for lab in labs.all_labs():
        try:
            desc = json.loads(lab_file(lab).read_text())
        except (FileNotFoundError, ValueError):
            continue
        if desc.get("snapshot") == snap:
            found.append(lab)
    return found


def subnets_in_use() -> dict[str, str]:
    """{subnet: snapshot} of every snapshot: labs chosen automatically keep off them."""
    taken = {}
    for snap in all_snapshots():
        try:
            taken[load(snap)["subnet"]] = snap
        except (LabError, KeyError, ValueError):
            continue
    return taken


# ---- making one ------------------------------------------------------------------------------

def _netns_holds(lab: str, host: str, address: str) -> bool:
    proc = run(["ip", "-n", network.netns_name(lab, host), "-4", "-o", "addr", "show"], check=False, quiet=True)
    return f" {address}/" in proc.stdout


def stop_order(lab: str, desc: dict) -> list[list[str]]:
    """Groups of hosts to power off one group after the other, so that nothing fails over: the
    hosts outside heartbeat first (a cascade's standbys would fail over if the cascade went
    before them), then the heartbeat nodes without the VIP, then the VIP's holder (it goes last:
    were it first, its peer would take the resources over)."""
    plain, peers, holders = [], [], []  # a VIP nobody holds: the heartbeat nodes go together
    for entry in desc["hosts"]:
        name = entry["name"]
        if not (host_dir(lab, name) / "root/etc/ha.d/ha.cf").exists():
            plain.append(name)
        elif _netns_holds(lab, name, desc["vip"]):
            holders.append(name)
        else:
            peers.append(name)
    return [group for group in (plain, peers, holders) if group]


def _controldata(lab: str, host: str) -> dict[str, dict]:
    """{data directory: {"state": pg_controldata's "Database cluster state", "system_identifier"}}
    of the host's PostgreSQL clusters, read from its disk (the host is off) with its own
    pg_controldata."""
    root = host_dir(lab, host) / "root"
    found = {}
    for control in sorted(root.glob("var/lib/postgresql/*/*/global/pg_control")):
        data = control.parents[1]
        version = data.parent.name
        binary = f"/usr/lib/postgresql/{version}/bin/pg_controldata"
        proc = run(["chroot", str(root), binary, "-D", "/" + str(data.relative_to(root))], check=False, quiet=True)
        fields = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
        found[str(data.relative_to(root))] = {
            "state": fields.get("Database cluster state", f" unreadable ({proc.stderr.strip()})").strip(),
            "system_identifier": fields.get("Database system identifier", "").strip() or None,
        }
    return found


def _check_clean_shutdown(lab: str, desc: dict) -> dict[str, dict]:
    """Every PostgreSQL cluster was shut down cleanly (a primary: "shut down"; a standby: "shut
    down in recovery"), so the snapshot boots without crash recovery; returns
    {host: _controldata(host)}."""
    unclean, found = [], {}
    for entry in desc["hosts"]:
        found[entry["name"]] = _controldata(lab, entry["name"])
        for data, control in found[entry["name"]].items():
            log(f"{entry['name']}: /{data}: {control['state']}, system identifier {control['system_identifier']}")
            if control["state"] not in ("shut down", "shut down in recovery"):
                unclean.append(f"{entry['name']}: /{data} is '{control['state']}'")
    if unclean:
        raise LabError(f"lab {lab!r}: PostgreSQL did not shut down cleanly ({'; '.join(unclean)}): no snapshot "
                       f"made; look at the host's journal (`python -m lab restart HOST`, then journalctl)")
    return found


def _copy_upper(lab: str, host: str, target: Path) -> None:
    # cp -a keeps owners, modes, times, hard links, whiteouts (0/0 character devices) and
    # extended attributes (trusted.overlay.opaque marks a directory that hides the base's).
    run(["cp", "-a", "--no-preserve=context", str(host_dir(lab, host) / "upper"), str(target)])


def snapshot(lab: str, snap: str, key: dict | None = None) -> dict:
    """Power the lab's hosts off in an order that causes no failover, and save their disks.
    key: what the hosts were deployed with (default: the files as they are now)."""
    labs.check_name(lab)
    check_name(snap)
    desc = labs.load(lab)
    if desc.get("snapshot"):
        raise LabError(f"lab {lab!r} boots from snapshot {desc['snapshot']!r}: its disks are layers over that "
                       f"snapshot's; snapshot a lab of bare hosts that got the deploy instead")
    if desc.get("with_packages"):
        raise LabError(f"lab {lab!r} runs on the pre-installed packages layer (--with-packages): a snapshot "
                       f"holds its hosts' disks over the bare base only; snapshot a lab of bare hosts")
    if users(snap):
        raise LabError(f"snapshot {snap!r} is in use by lab(s) {', '.join(users(snap))}: take them down first")
    states = {name: state for name, _ip, state in labs.status(lab)}
    bad = {name: state for name, state in states.items() if state not in ("running", "stopped")}
    if bad:
        raise LabError(f"lab {lab!r}: " + ", ".join(f"{n} is {s}" for n, s in bad.items()) +
                       ": a snapshot is of a whole, healthy lab (`python -m lab restart HOST` or heal first)")
    started = time.monotonic()
    for group in stop_order(lab, desc):
        log(f"snapshot {snap}: powering off {', '.join(group)}")
        with ThreadPoolExecutor(max_workers=len(group)) as pool:
            list(pool.map(lambda host: machines.shutdown(lab, host, seconds=60), group))
    clusters = _check_clean_shutdown(lab, desc)
    key = key or current_key(len(desc["hosts"]))
    final = snapshot_dir(snap)
    tmp = final.with_name(final.name + ".tmp")
    SNAPSHOT_ROOT.mkdir(parents=True, exist_ok=True)
    run(["rm", "-rf", "--one-file-system", str(tmp)])
    (tmp / "hosts").mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=len(desc["hosts"])) as pool:
        list(pool.map(lambda e: _copy_upper(lab, e["name"], tmp / "hosts" / e["name"]), desc["hosts"]))
    for name in LAB_FILES:
        shutil.copy2(lab_dir(lab) / name, tmp / name)
    (tmp / "secrets.env").chmod(0o600)
    (tmp / "id_ed25519").chmod(0o600)
    meta = {"name": snap, "made_from": lab, "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "subnet": desc["subnet"], "hosts": [{k: h[k] for k in ("name", "ip", "host_key")} for h in desc["hosts"]],
            "clusters": clusters, "key": key, "digest": key_digest(key),
            **({"backup_host": desc["backup_host"]} if desc.get("backup_host") else {})}
    (tmp / "snapshot.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if final.exists():
        run(["rm", "-rf", "--one-file-system", str(final)])
    tmp.rename(final)
    log(f"snapshot {snap!r} of lab {lab!r}: {len(desc['hosts'])} hosts on {desc['subnet']} "
        f"in {time.monotonic() - started:.1f} s (its hosts are now stopped)")
    return meta


def check_name(snap: str) -> None:
    if not labs.SNAP_NAME_RE.match(snap):
        raise LabError(f"snapshot name {snap!r}: use lowercase letters, digits and '-', starting with a letter")


def remove(snap: str) -> None:
    check_name(snap)
    if users(snap):
        raise LabError(f"snapshot {snap!r} is in use by lab(s) {', '.join(users(snap))}: take them down first")
    if snapshot_dir(snap).exists():
        run(["rm", "-rf", "--one-file-system", str(snapshot_dir(snap))])


# ---- booting one -----------------------------------------------------------------------------

def up_from(lab: str, snap: str, only: list[str] | None = None) -> dict:
    """A new lab whose hosts' disks are the snapshot's (a lower layer over the base) with a fresh,
    empty upper dir each; on the snapshot's subnet. only: boot these hosts, leave the others off
    (`python -m lab restart HOST` boots one later: machines that come back at different times)."""
    labs.check_name(lab)
    started = time.monotonic()
    network.check_no_forwarding()
    meta = load(snap)
    check_fresh(snap, meta)
    if lab_file(lab).exists():
        current = labs.load(lab)
        if current.get("snapshot") != snap:
            raise LabError(f"lab {lab!r} is already up (not from snapshot {snap!r}): "
                           f"`python -m lab down --name {lab}` first")
    ldir = lab_dir(lab)
    with labs.subnet_lock():
        for other, subnet in labs.taken_subnets(lab).items():
            if subnet == meta["subnet"]:
                raise LabError(f"snapshot {snap!r} needs subnet {meta['subnet']} (its hosts' configuration holds "
                               f"their addresses), and lab {other!r} uses it: `python -m lab down --name {other}` first")
        net = network.choose_subnet(lab, meta["subnet"], [])
        ldir.mkdir(parents=True, exist_ok=True)
        (ldir / labs.RESERVED_SUBNET).write_text(f"{net}\n")
    addressing = network.Addressing(net)
    base = image.ensure_base()
    repo = image.ensure_repo(base)
    sdir = snapshot_dir(snap)
    for name in LAB_FILES:
        if not (ldir / name).exists():
            shutil.copy2(sdir / name, ldir / name)
    network.ensure_bridge(lab, addressing)
    labs.serve_repo(lab, repo, addressing.bridge_ip)
    hosts = [dict(entry) for entry in meta["hosts"]]
    for entry in hosts:
        machines.create_from(lab, entry["name"], [sdir / "hosts" / entry["name"], base])
    desc = labs.describe(lab, net, addressing, hosts)
    desc["snapshot"] = snap
    if meta.get("backup_host"):
        desc["backup_host"] = meta["backup_host"]
    labs.save(lab, desc)
    unknown = sorted(set(only or ()) - {h["name"] for h in hosts})
    if unknown:
        raise LabError(f"snapshot {snap!r} has no host {', '.join(unknown)} (it has: {', '.join(h['name'] for h in hosts)})")
    labs.boot_all(lab, [h for h in hosts if only is None or h["name"] in only], net.prefixlen)
    log(f"lab {lab!r} up from snapshot {snap!r}: {len(hosts)} hosts on {net} in {time.monotonic() - started:.1f} s")
    return desc
