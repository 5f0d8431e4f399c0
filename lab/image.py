"""The base image (a Debian 12 root file system) and the lab's local apt repository.

Both are built once and cached under a key of what goes into them; hosts are overlayfs copies
of the base. The base is what a freshly installed Debian server has: no PostgreSQL, heartbeat or
rsync (the deploy installs those, from the repository, as on real servers); only its dpkg is
set for speed (DPKG_LAB_CONFIG).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from .paths import CACHE_DIR
from .shell import LabError, file_lock, log, run

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SOURCES = (
    f"deb {MIRROR} {SUITE} main\n"
    f"deb {MIRROR} {SUITE}-updates main\n"
    f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
)
# A fresh server: init, ssh, sudo, python3 (pyinfra facts), network and process tools, cron.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "sudo", "python3",
    "iproute2", "iputils-ping", "procps", "cron", "less", "ca-certificates", "gnupg", "curl",
)
# What the deploy installs, and what bench/peers installs (Patroni, etcd, vip-manager: the peers
# measured on the same hosts); the lab serves exactly these (and their dependencies). Sorted.
REPO_PACKAGES = ("etcd-server", "heartbeat", "patroni", "pgbackrest", "postgresql-15", "rsync", "vip-manager")
# The cluster's packages (deploys/packages.py installs them; every role's set is a part of this
# one), pre-installed as a cached layer for labs that skip the deploy's package step (`lab up
# --with-packages`, the demo). Sorted.
PROVISIONED_PACKAGES = ("heartbeat", "pgbackrest", "postgresql-15", "python3", "rsync")
PROVISIONED_VERSION = "1"  # bump when _build_provisioned changes
IMAGE_VERSION = "4"  # bump when the build steps below change
# dpkg on lab hosts: no fsync per file (a lab host's "crash" kills its processes, not the kernel
# that holds its page cache) and no documentation, manual pages or translations: the deploy's
# package step is most of a first deploy's time, and nothing here reads those.
DPKG_LAB_CONFIG = """force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def base_key() -> str:
    return _key(IMAGE_VERSION, SUITE, BASE_PACKAGES)


def repo_key() -> str:
    return _key(IMAGE_VERSION, base_key(), REPO_PACKAGES)


def provisioned_key() -> str:
    return _key(PROVISIONED_VERSION, repo_key(), PROVISIONED_PACKAGES)


def _cache_lock() -> AbstractContextManager[None]:
    return file_lock(CACHE_DIR / ".lock")


@contextmanager
def _mounted_chroot(root: Path):
    """proc, sys and dev for apt's maintainer scripts; always unmounted."""
    mounts = [("proc", root / "proc", ["-t", "proc", "proc"]),
              ("sys", root / "sys", ["-t", "sysfs", "sysfs"]),
              ("dev", root / "dev", ["--rbind", "/dev"])]
    done = []
    try:
        for _name, target, args in mounts:
            run(["mount", *args, str(target)])
            if args[0] == "--rbind":
                run(["mount", "--make-rslave", str(target)])
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            run(["umount", "-R", "-l", str(target)], check=False, quiet=True)


def _chroot_apt(root: Path, *args: str) -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    run(["chroot", str(root), "apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", *args], env=env)


def _configure_base(root: Path) -> None:
    (root / "etc/apt/sources.list").write_text(SOURCES)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no daemons start inside the build chroot
    policy.chmod(0o755)
    (root / "etc/dpkg/dpkg.cfg.d/pgcascade-lab").write_text(DPKG_LAB_CONFIG)
    with _mounted_chroot(root):
        _chroot_apt(root, "update")
        _chroot_apt(root, "dist-upgrade")
        _chroot_apt(root, "install", "--no-install-recommends", *BASE_PACKAGES)
        _chroot_apt(root, "clean")
    policy.unlink()
    # Lab hosts reach no mirror: the deploy's apt-repository step adds the lab's repository.
    (root / "etc/apt/sources.list").write_text("# lab host: no route off the box; see inventories/lab.py\n")
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/machine-id").write_text("")  # each host gets its own at create time
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # each host gets its own ed25519 key at create time
    (root / "etc/ssh/sshd_config.d/lab.conf").write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nHostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n"
    )
    # A container has no consoles to serve; these units would only fail or wait.
    for unit in ("getty@tty1.service", "systemd-timesyncd.service"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")


def _build_base(target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        run(["rm", "-rf", "--one-file-system", str(tmp)])
    started = time.monotonic()
    log(f"building the base image {target.name} (debootstrap {SUITE}, about 1-2 minutes)")
    run(["debootstrap", "--variant=minbase", SUITE, str(tmp), MIRROR])
    _configure_base(tmp)
    tmp.rename(target)
    log(f"base image built in {time.monotonic() - started:.0f} s")


def _tarball(base: Path) -> Path:
    return base.with_name(base.name + ".tar.zst")


def ensure_base() -> Path:
    """The base image's directory, built or restored from its tarball when missing."""
    base = CACHE_DIR / f"base-{base_key()}"
    with _cache_lock():
        if (base / "etc/os-release").exists():
            return base
        tarball = _tarball(base)
        if tarball.exists():
            tmp = base.with_name(base.name + ".tmp")
            run(["rm", "-rf", "--one-file-system", str(tmp)])
            tmp.mkdir()
            run(["tar", "--numeric-owner", "--xattrs", "-I", "zstd -T0", "-xf", str(tarball), "-C", str(tmp)])
            tmp.rename(base)
            return base
        _build_base(base)
        run(["tar", "--numeric-owner", "--xattrs", "-I", "zstd -T0 -3", "-cf", str(tarball) + ".part", "-C", str(base), "."])
        os.rename(str(tarball) + ".part", tarball)
        return base


def ensure_repo(base: Path) -> Path:
    """A flat apt repository of REPO_PACKAGES and the dependencies the base lacks."""
    repo = CACHE_DIR / f"repo-{repo_key()}"
    with _cache_lock():
        if (repo / "Release").exists():
            return repo
        log("building the lab's apt repository")
        work = CACHE_DIR / "repo-build"
        run(["rm", "-rf", "--one-file-system", str(work)])
        for sub in ("upper", "work", "root"):
            (work / sub).mkdir(parents=True)
        root = work / "root"
        # A throw-away overlay of the exact base, so apt downloads what a host would install.
        run(["mount", "-t", "overlay", "lab-repo", "-o",
             f"lowerdir={base},upperdir={work/'upper'},workdir={work/'work'}", str(root)])
        try:
            (root / "etc/apt/sources.list").write_text(SOURCES)
            shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
            with _mounted_chroot(root):
                _chroot_apt(root, "update")
                _chroot_apt(root, "install", "--download-only", "--no-install-recommends", *REPO_PACKAGES)
            tmp = repo.with_name(repo.name + ".tmp")
            run(["rm", "-rf", str(tmp)])
            tmp.mkdir()
            debs = list((root / "var/cache/apt/archives").glob("*.deb"))
            if not debs:
                raise LabError("the repository build downloaded no packages")
            for deb in debs:
                shutil.copy(deb, tmp / deb.name)
        finally:
            run(["umount", str(root)], check=False, quiet=True)
            run(["rm", "-rf", "--one-file-system", str(work)], check=False)
        packages = run(["dpkg-scanpackages", "--multiversion", "."], cwd=tmp).stdout
        (tmp / "Packages").write_text(packages)
        release = run(["apt-ftparchive", "release", "."], cwd=tmp).stdout
        (tmp / "Release").write_text(release)
        tmp.rename(repo)
        log(f"repository: {len(debs)} packages")
        return repo


def ensure_provisioned(base: Path, repo: Path) -> Path:
    """A layer over the base holding PROVISIONED_PACKAGES installed from the lab's repository,
    as the deploy would install them, minus what must differ per host or per role: no cluster
    (the deploy creates each host's, pg_createcluster, with its own system identifier), no
    snakeoil key (machines.create makes each host its own), heartbeat and logd not enabled (the
    deploy enables them on the VIP holders only). Built once, cached by its key."""
    layer = CACHE_DIR / f"provisioned-{provisioned_key()}"
    with _cache_lock():
        if (layer / "usr/lib/postgresql").is_dir():
            return layer
        started = time.monotonic()
        log(f"building the pre-installed packages layer {layer.name} ({', '.join(PROVISIONED_PACKAGES)})")
        _build_provisioned(base, repo, layer)
        log(f"packages layer built in {time.monotonic() - started:.0f} s")
        return layer


def _build_provisioned(base: Path, repo: Path, layer: Path) -> None:
    work = CACHE_DIR / "provisioned-build"
    run(["rm", "-rf", "--one-file-system", str(work)])
    for sub in ("upper", "work", "root"):
        (work / sub).mkdir(parents=True)
    root = work / "root"
    mounted_repo = root / "srv/pgcascade-lab-repo"
    run(["mount", "-t", "overlay", "lab-provisioned", "-o",
         f"lowerdir={base},upperdir={work/'upper'},workdir={work/'work'}", str(root)])
    try:
        mounted_repo.mkdir(parents=True)
        run(["mount", "--bind", "-o", "ro", str(repo), str(mounted_repo)])
        sources = root / "etc/apt/sources.list.d/pgcascade-lab-build.list"
        sources.write_text("deb [trusted=yes] file:/srv/pgcascade-lab-repo ./\n")
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no daemons start inside the build chroot
        policy.chmod(0o755)
        with _mounted_chroot(root):
            _chroot_apt(root, "update")
            _chroot_apt(root, "install", "--no-install-recommends", *PROVISIONED_PACKAGES)
            _chroot_apt(root, "clean")
            for cluster in sorted((root / "etc/postgresql").glob("*/*")):
                run(["chroot", str(root), "pg_dropcluster", cluster.parent.name, cluster.name])
            run(["chroot", str(root), "systemctl", "disable", "heartbeat.service", "logd.service"])
        run(["umount", str(mounted_repo)])
        mounted_repo.rmdir()
        for leftover in (policy, sources, root / "etc/ssl/private/ssl-cert-snakeoil.key",
                         root / "etc/ssl/certs/ssl-cert-snakeoil.pem"):
            leftover.unlink(missing_ok=True)
        for link in (root / "etc/ssl/certs").iterdir():  # the hash link of the deleted certificate
            if link.is_symlink() and link.readlink().name == "ssl-cert-snakeoil.pem":
                link.unlink()
        for lists in (root / "var/lib/apt/lists").glob("*_*"):
            lists.unlink()
    finally:
        run(["umount", str(mounted_repo)], check=False, quiet=True)
        run(["umount", str(root)], check=False, quiet=True)
    tmp = layer.with_name(layer.name + ".tmp")
    run(["rm", "-rf", "--one-file-system", str(tmp)])
    (work / "upper").rename(tmp)
    tmp.rename(layer)
    run(["rm", "-rf", "--one-file-system", str(work)], check=False)
