"""A lab: its bridge, its hosts, its apt repository server, its keys; up, down, status, gc."""
from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from . import image, machines, network
from .paths import STATE_ROOT, lab_dir, lab_file
from .shell import LabError, file_lock, log, ok, run

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
SNAP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
REPO_PORT = 8080


def check_name(lab: str) -> None:
    if not NAME_RE.match(lab):
        raise LabError(f"lab name {lab!r}: use 1-6 lowercase letters or digits, starting with a letter")


def host_names(count: int) -> list[str]:
    if not 1 <= count <= 40:
        raise LabError(f"--hosts {count}: a lab has 1 to 40 hosts")
    return [f"pg{i}" for i in range(1, count + 1)]


def load(lab: str) -> dict:
    try:
        return json.loads(lab_file(lab).read_text())
    except FileNotFoundError:
        raise LabError(f"lab {lab!r} is not up (no {lab_file(lab)}): run `python -m lab up --name {lab}`") from None


def save(lab: str, desc: dict) -> None:
    tmp = lab_file(lab).with_suffix(".tmp")
    tmp.write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n")
    tmp.rename(lab_file(lab))


def host_entry(desc: dict, host: str) -> dict:
    for entry in desc["hosts"]:
        if entry["name"] == host:
            return entry
    names = ", ".join(h["name"] for h in desc["hosts"])
    raise LabError(f"lab {desc['name']!r} has no host {host!r} (it has: {names})")


RESERVED_SUBNET = "subnet.reserved"  # written under the lock as soon as a lab has chosen its subnet


def taken_subnets(lab: str) -> dict[str, str]:
    """{other lab: its subnet}: labs that are up, and labs being set up (their reservation)."""
    taken = {}
    for path in [*STATE_ROOT.glob("*/lab.json"), *STATE_ROOT.glob(f"*/{RESERVED_SUBNET}")]:
        if path.parent.name != lab and path.parent.name not in taken:
            try:
                taken[path.parent.name] = (json.loads(path.read_text())["subnet"] if path.suffix == ".json"
                                           else path.read_text().strip())
            except (OSError, ValueError, KeyError):  # removed or being written meanwhile
                continue
    return taken


def subnet_lock() -> AbstractContextManager[None]:
    """Two labs starting at once must not choose the same subnet."""
    return file_lock(STATE_ROOT / ".subnet.lock")


def _ensure_keys(ldir: Path) -> str:
    key = ldir / "id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"pgcascade-lab-{ldir.name}", "-f", str(key)])
    return (ldir / "id_ed25519.pub").read_text()


def _ensure_secrets(ldir: Path) -> Path:
    """Generated once per lab, mode 0600: the lab's stand-in for a DBA's secrets file."""
    path = ldir / "secrets.env"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"PGCASCADE_REPLICATION_PASSWORD={secrets.token_urlsafe(24)}\n")
            out.write(f"PGCASCADE_HEARTBEAT_KEY={secrets.token_hex(32)}\n")
    if "PGCASCADE_BACKUP_CIPHER_PASS=" not in path.read_text():  # labs made before backups existed
        with open(path, "a") as out:
            out.write(f"PGCASCADE_BACKUP_CIPHER_PASS={secrets.token_urlsafe(32)}\n")
    return path


def serve_repo(lab: str, repo: Path, bridge_ip: str) -> None:
    pid_file = lab_dir(lab) / "repo-http.pid"
    if pid_file.exists() and machines.alive(int(pid_file.read_text())):
        return
    log_file = open(lab_dir(lab) / "repo-http.log", "ab")
    proc = subprocess.Popen(
        ["python3", "-m", "http.server", str(REPO_PORT), "--bind", bridge_ip, "--directory", str(repo)],
        stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
    )
    pid_file.write_text(str(proc.pid))


def _stop_repo(lab: str) -> None:
    pid_file = lab_dir(lab) / "repo-http.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if machines.alive(pid):
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink()


def up(lab: str, count: int, subnet: str | None = None, backup: bool = False, with_packages: bool = False) -> dict:
    """Idempotent: creates what is missing, boots what is not running, in parallel.

    backup: the last host is the backup repository host (inventories/lab.py puts it in the
    `backup` group); kept by later `up`s of the same lab.
    with_packages: the hosts' disks hold the cluster's packages already (image.ensure_provisioned):
    the deploy's package step finds nothing to do; kept by later `up`s of the same lab.
    """
    check_name(lab)
    started = time.monotonic()
    network.check_no_forwarding()
    ldir = lab_dir(lab)
    existing = json.loads(lab_file(lab).read_text()) if lab_file(lab).exists() else None
    if existing and subnet and subnet not in ("last", existing["subnet"]):
        raise LabError(f"lab {lab!r} is up on {existing['subnet']}: `down` it before changing --subnet")
    if existing and with_packages and not existing.get("with_packages"):
        raise LabError(f"lab {lab!r} is up with bare hosts: `down` it before asking for --with-packages")
    if existing and existing.get("snapshot"):
        raise LabError(f"lab {lab!r} boots from snapshot {existing['snapshot']!r}: "
                       f"`python -m lab up --name {lab} --from {existing['snapshot']}` to start it again")
    from .snapshots import subnets_in_use  # snapshots builds on this module
    with subnet_lock():
        # A lab chosen a subnet automatically keeps off the snapshots' (a lab booted from one needs it).
        taken = [*taken_subnets(lab).values(), *subnets_in_use()]
        last = subnet == "last"
        net = (ipaddress.IPv4Network(existing["subnet"]) if existing
               else network.choose_subnet(lab, None if last else subnet, taken, last=last))
        ldir.mkdir(parents=True, exist_ok=True)
        (ldir / RESERVED_SUBNET).write_text(f"{net}\n")
    addressing = network.Addressing(net)
    base = image.ensure_base()
    repo = image.ensure_repo(base)
    with_packages = with_packages or bool((existing or {}).get("with_packages"))
    layers = [image.ensure_provisioned(base, repo), base] if with_packages else [base]
    ldir.mkdir(parents=True, exist_ok=True)
    pubkey = _ensure_keys(ldir)
    _ensure_secrets(ldir)
    network.ensure_bridge(lab, addressing)
    serve_repo(lab, repo, addressing.bridge_ip)

    known = {h["name"]: h for h in (existing or {}).get("hosts", [])}
    hosts = []
    for index, name in enumerate(host_names(max(count, len(known))), start=1):
        entry = known.get(name) or {"name": name, "ip": addressing.host_ip(index)}
        if "host_key" not in entry:
            entry["host_key"] = machines.create(lab, name, entry["ip"], layers, pubkey)
        hosts.append(entry)
    (ldir / "known_hosts").write_text("".join(f"{h['ip']} {h['host_key']}\n" for h in hosts))
    desc = describe(lab, net, addressing, hosts)
    backup_host = (existing or {}).get("backup_host") or (hosts[-1]["name"] if backup else None)
    if backup_host:
        if len(hosts) < 2:
            raise LabError("--backup: the backup repository host comes on top of the cluster's hosts (--hosts 2 or more)")
        desc["backup_host"] = backup_host
    if with_packages:
        desc["with_packages"] = True
    save(lab, desc)
    boot_all(lab, hosts, net.prefixlen)
    log(f"lab {lab!r} up: {len(hosts)} hosts on {net} in {time.monotonic() - started:.1f} s")
    return desc


def describe(lab: str, net: ipaddress.IPv4Network, addressing: network.Addressing, hosts: list[dict]) -> dict:
    """The lab's description: what inventories/lab.py and the tests read."""
    ldir = lab_dir(lab)
    return {
        "name": lab, "subnet": str(net), "bridge": network.bridge_name(lab), "bridge_ip": addressing.bridge_ip,
        "vip": addressing.vip, "prefix": net.prefixlen, "interface": "eth0",
        "repo_url": f"http://{addressing.bridge_ip}:{REPO_PORT}", "ssh_key": str(ldir / "id_ed25519"),
        "known_hosts": str(ldir / "known_hosts"), "secrets_file": str(ldir / "secrets.env"), "hosts": hosts,
    }


def boot_all(lab: str, hosts: list[dict], prefix: int) -> None:
    """Boot every host at once; returns when each one's sshd answers."""
    def start(entry: dict) -> None:
        machines.boot(lab, entry["name"], entry["ip"], prefix)
        machines.wait_ssh(entry["ip"], time.monotonic() + 60, entry["name"])

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(start, hosts))


def down(lab: str) -> None:
    """Nothing of the lab is left: hosts, bridge, repository server, cgroups, state."""
    check_name(lab)
    ldir = lab_dir(lab)
    hosts_dir = ldir / "hosts"
    names = [p.name for p in hosts_dir.iterdir()] if hosts_dir.exists() else []
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        list(pool.map(lambda name: machines.destroy(lab, name), names))
    _stop_repo(lab)
    network.delete_bridge(lab)
    machines.remove_cgroups(lab)
    run(["rm", "-rf", "--one-file-system", str(ldir)])
    _clean_nspawn_leftovers()


def _clean_nspawn_leftovers() -> None:
    """nspawn leaves empty lock and propagate directories behind in /run/systemd/nspawn: removed
    once no nspawn runs."""
    if ok(["pgrep", "-x", "systemd-nspawn"]):
        return
    for sub in ("locks", "propagate"):
        run(["rm", "-rf", f"/run/systemd/nspawn/{sub}"], check=False)


def host_state(lab: str, entry: dict) -> str:
    name = entry["name"]
    if not machines.leader(lab, name):
        return "crashed" if not network.netns_exists(lab, name) else "stopped"
    if machines.is_paused(lab, name):
        return "paused"
    if network.is_partitioned(lab, name):
        return "partitioned"
    return "running"


def status(lab: str) -> list[tuple[str, str, str]]:
    desc = load(lab)
    return [(h["name"], h["ip"], host_state(lab, h)) for h in desc["hosts"]]


def restart(lab: str, host: str) -> None:
    """Boot again on the same disk (an orderly poweroff first if it is running)."""
    desc = load(lab)
    entry = host_entry(desc, host)
    machines.shutdown(lab, host)
    if network.netns_exists(lab, host) and network.is_partitioned(lab, host):
        network.heal(lab, host)
    machines.boot(lab, host, entry["ip"], desc["prefix"])
    machines.wait_ssh(entry["ip"], time.monotonic() + 60, host)


def all_labs() -> list[str]:
    return sorted(p.name for p in STATE_ROOT.iterdir() if p.is_dir()) if STATE_ROOT.exists() else []


def gc() -> list[str]:
    """Remove every lab and any leftover of one (netns, links, mounts, processes, cgroups)."""
    removed = []
    for lab in all_labs():
        if NAME_RE.match(lab):
            down(lab)
            removed.append(f"lab {lab}")
    for ns in Path("/run/netns").glob("pgl-*") if Path("/run/netns").exists() else []:
        run(["ip", "netns", "del", ns.name], check=False)
        removed.append(f"netns {ns.name}")
    for table in network.leftover_cut_tables():
        run(["nft", "delete", "table", "bridge", table], check=False)
        removed.append(f"nft table bridge {table}")
    for link in json.loads(run(["ip", "-j", "link"]).stdout):
        if link["ifname"].startswith("pgl-"):
            run(["ip", "link", "del", link["ifname"]], check=False)
            removed.append(f"link {link['ifname']}")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(str(STATE_ROOT) + "/"):
            run(["umount", "-l", target], check=False)
            removed.append(f"mount {target}")
    for pid in run(["pgrep", "-f", f"systemd-nspawn .*-D {STATE_ROOT}/"], check=False).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
        removed.append(f"process {pid}")
    for tree in machines.CGROUP_TREES:
        if (tree / "pgl").exists():
            for path in sorted((p for p in (tree / "pgl").rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                path.rmdir()
            (tree / "pgl").rmdir()
    _clean_nspawn_leftovers()
    return removed
