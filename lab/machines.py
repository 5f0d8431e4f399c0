"""Lab hosts: an overlayfs copy of the base, booted with systemd-nspawn (real systemd as PID 1)
in its own network namespace, reached over SSH like a real server. Faults act on the real thing.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from . import network
from .paths import host_dir
from .shell import LabError, log, ok, run

CGROUP_TREES = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))


def _root(lab: str, host: str) -> Path:
    return host_dir(lab, host) / "root"


def _cgroup(tree: Path, lab: str, host: str) -> Path:
    return tree / "pgl" / lab / host


def _pid_file(lab: str, host: str, what: str) -> Path:
    return host_dir(lab, host) / f"{what}.pid"


def _read_pid(lab: str, host: str, what: str) -> int | None:
    try:
        pid = int(_pid_file(lab, host, what).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Running and not a zombie (this machine's PID 1 reaps orphans late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, possibly while we read
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def is_mounted(path: Path) -> bool:
    return ok(["mountpoint", "-q", str(path)])


# ---- disk ------------------------------------------------------------------------------------

def create(lab: str, host: str, ip: str, layers: list[Path], authorized_key: str) -> str:
    """Make the host's disk (read-only layers, first on top, under its own upper dir); returns
    its ssh host public key (for the lab's known_hosts)."""
    hdir = host_dir(lab, host)
    for sub in ("upper", "work", "root"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    (hdir / "lower").write_text(":".join(str(layer) for layer in layers))
    mount_disk(lab, host)
    root = _root(lab, host)
    (root / "etc/hostname").write_text(f"{host}\n")
    (root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n{ip}\t{host}\n")
    if not (root / "etc/machine-id").read_text().strip():
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    key = root / "etc/ssh/ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host}", "-f", str(key)])
    _ensure_snakeoil(root, host)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(authorized_key)
    (ssh_dir / "authorized_keys").chmod(0o600)
    return " ".join((root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])


def _ensure_snakeoil(root: Path, host: str) -> None:
    """A host whose disk came with ssl-cert installed (the pre-installed packages layer) gets its
    own snakeoil key and certificate, as ssl-cert's installation makes on a real server (a
    shared layer must not carry one key for every host); PostgreSQL's ssl uses them."""
    key = root / "etc/ssl/private/ssl-cert-snakeoil.key"
    if not (root / "usr/sbin/make-ssl-cert").exists() or key.exists():
        return
    run(["chroot", str(root), "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
         "-subj", f"/CN={host}", "-keyout", "/etc/ssl/private/ssl-cert-snakeoil.key",
         "-out", "/etc/ssl/certs/ssl-cert-snakeoil.pem"], quiet=True)
    run(["chroot", str(root), "chown", "root:ssl-cert", "/etc/ssl/private/ssl-cert-snakeoil.key"])
    key.chmod(0o640)


def create_from(lab: str, host: str, layers: list[Path]) -> None:
    """A host whose disk is read-only layers (a snapshot's upper dir over the base, first on top)
    under a fresh, empty upper dir: nothing is copied."""
    hdir = host_dir(lab, host)
    for sub in ("upper", "work", "root"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    (hdir / "lower").write_text(":".join(str(layer) for layer in layers))
    mount_disk(lab, host)


def mount_disk(lab: str, host: str) -> None:
    hdir = host_dir(lab, host)
    root = _root(lab, host)
    if is_mounted(root):
        return
    # "base" is the file's name in labs made before snapshots existed.
    lower = (hdir / "lower" if (hdir / "lower").exists() else hdir / "base").read_text().strip()
    for layer in lower.split(":"):
        if not Path(layer).is_dir():
            raise LabError(f"{host}: its disk layer {layer} is gone; `python -m lab down` and `up` again")
    run(["mount", "-t", "overlay", f"pgl-{lab}-{host}", "-o",
         f"lowerdir={lower},upperdir={hdir/'upper'},workdir={hdir/'work'}", str(root)])


# Every container's systemd takes inotify instances from the one budget of the machine's root
# user; at the default 128 a few labs exhaust it and a booting host's PID 1 exits with "Failed
# to allocate manager object: Too many open files".
INOTIFY_INSTANCES = 8192
NSPAWN_START_S = 60  # seconds nspawn may take to set a container up and fork its PID 1


def ensure_inotify_budget() -> None:
    limit = Path("/proc/sys/fs/inotify/max_user_instances")
    if int(limit.read_text()) < INOTIFY_INSTANCES:
        log(f"raising fs.inotify.max_user_instances to {INOTIFY_INSTANCES} (lab hosts run systemd)")
        limit.write_text(str(INOTIFY_INSTANCES))


# ---- power -----------------------------------------------------------------------------------

def boot(lab: str, host: str, ip: str, prefix: int) -> None:
    """Start the machine (returns at once; see wait_ssh)."""
    if leader(lab, host):
        return
    ensure_inotify_budget()
    mount_disk(lab, host)
    network.ensure_host_network(lab, host, ip, prefix)
    cgroups = []
    for tree in CGROUP_TREES:
        cg = _cgroup(tree, lab, host)
        cg.mkdir(parents=True, exist_ok=True)
        cgroups.append(str(cg / "cgroup.procs"))
    console = open(host_dir(lab, host) / "console.log", "ab")
    # Each nspawn moves into its own cgroup first: with --keep-unit it makes no scope of its own, so
    # all the containers would share this process's cgroup.
    proc = subprocess.Popen(
        ["sh", "-c", 'for f in ' + " ".join(cgroups) + '; do echo $$ >"$f"; done; exec "$@"', "nspawn",
         "systemd-nspawn", "-q", "-D", str(_root(lab, host)), "--boot", "--register=no", "--keep-unit",
         f"--network-namespace-path=/run/netns/{network.netns_name(lab, host)}",
         f"--machine=pgl-{lab}-{host}", f"--hostname={host}",
         "--capability=CAP_NET_ADMIN,CAP_IPC_LOCK", "--console=passive",
         "--resolv-conf=off", "--timezone=off", "--link-journal=no"],
        stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True,
    )
    _pid_file(lab, host, "nspawn").write_text(str(proc.pid))
    # nspawn sets the container up (mounts, cgroups) before it forks its PID 1: under a second on
    # a quiet machine, but more than 15 s was seen once while tests ran.
    try:
        pid = _find_leader(proc.pid, deadline=time.monotonic() + NSPAWN_START_S)
    except LabError:
        # Whatever it started goes with it: a container nobody knows the PID 1 of would keep its
        # root file system mounted and its addresses taken.
        kill_cgroup(lab, host)
        raise
    _pid_file(lab, host, "leader").write_text(str(pid))


def _find_leader(nspawn_pid: int, deadline: float) -> int:
    """The container's PID 1: nspawn's child in another pid namespace."""
    own_ns = os.readlink(f"/proc/{nspawn_pid}/ns/pid")
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
        except FileNotFoundError:
            raise LabError("systemd-nspawn exited at once: see the host's console.log") from None
        for child in children:
            try:
                if os.readlink(f"/proc/{child}/ns/pid") != own_ns:
                    return int(child)
            except FileNotFoundError:
                continue
        time.sleep(0.02)
    raise LabError(f"systemd-nspawn started no container within {NSPAWN_START_S} s")


def kill_cgroup(lab: str, host: str) -> None:
    """SIGKILL every process of the host's cgroup (nspawn and its container), for at most 10 s."""
    group = _cgroup(CGROUP_TREES[1], lab, host)
    try:
        (group / "cgroup.kill").write_text("1")
    except OSError:
        return
    deadline = time.monotonic() + 10
    while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)


def leader(lab: str, host: str) -> int | None:
    return _read_pid(lab, host, "leader")


def wait_ssh(ip: str, deadline: float, host: str) -> None:
    """Ready means sshd answers with its banner."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, 22), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise LabError(f"{host}: ssh did not answer on {ip}:22 in time")


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def kill(lab: str, host: str) -> None:
    """Power cut: SIGKILL the container's PID 1, which kills its whole pid namespace."""
    thaw(lab, host)
    pid = leader(lab, host)
    if pid:
        os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 10):
            raise LabError(f"{host}: its PID 1 ({pid}) survived SIGKILL")
    nspawn = _read_pid(lab, host, "nspawn")
    if nspawn:
        _wait_gone(nspawn, 5)


def shutdown(lab: str, host: str, seconds: float = 20) -> None:
    """Orderly poweroff (SIGTERM to nspawn), then the power cut if it takes too long."""
    thaw(lab, host)
    nspawn = _read_pid(lab, host, "nspawn")
    if nspawn and leader(lab, host):
        os.kill(nspawn, signal.SIGTERM)
        if _wait_gone(nspawn, seconds):
            return
        log(f"{host}: no orderly poweroff within {seconds:.0f} s: killing it")
    kill(lab, host)


def crash(lab: str, host: str) -> None:
    """The machine dies: every process at once, and its addresses (the VIP too) with it."""
    kill(lab, host)
    network.delete_host_network(lab, host)


# ---- hangs -----------------------------------------------------------------------------------

def _freeze_file(lab: str, host: str) -> Path:
    return _cgroup(CGROUP_TREES[1], lab, host) / "cgroup.freeze"


def pause(lab: str, host: str) -> None:
    """A hung machine: every process stopped at once (the cgroup v2 freezer), as SIGSTOP would."""
    if not leader(lab, host):
        raise LabError(f"{host} is not running")
    _freeze_file(lab, host).write_text("1")
    events = _freeze_file(lab, host).with_name("cgroup.events")
    deadline = time.monotonic() + 5
    while "frozen 1" not in events.read_text():
        if time.monotonic() > deadline:
            raise LabError(f"{host}: the freezer did not settle in 5 s")
        time.sleep(0.02)


def thaw(lab: str, host: str) -> None:
    freeze = _freeze_file(lab, host)
    if freeze.exists() and freeze.read_text().strip() == "1":
        freeze.write_text("0")


def is_paused(lab: str, host: str) -> bool:
    freeze = _freeze_file(lab, host)
    return freeze.exists() and freeze.read_text().strip() == "1"


# ---- removal ---------------------------------------------------------------------------------

def destroy(lab: str, host: str) -> None:
    """Nothing of the host is left: processes, netns, veth, mount, cgroups, disk."""
    kill(lab, host)
    network.delete_host_network(lab, host)
    root = _root(lab, host)
    if is_mounted(root):
        run(["umount", str(root)])
    remove_cgroups(lab, host)
    run(["rm", "-rf", "--one-file-system", str(host_dir(lab, host))])


def remove_cgroups(lab: str, host: str | None = None) -> None:
    """rmdir depth-first (cgroup directories can only be removed empty, leaves first)."""
    for tree in CGROUP_TREES:
        top = tree / "pgl" / lab / host if host else tree / "pgl" / lab
        if not top.exists():
            continue
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            path.rmdir()
        top.rmdir()
