"""Packages: the apt repository (optional), PostgreSQL, python3, rsync, heartbeat, pgBackRest;
/etc/hosts entries. One operation on every host, the backup repository host included, so they
all install at once."""
from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.context import Context
from operations.managed_files import ensure_managed_files
from operations.packages import ensure_apt_packages
from operations.text_block import ensure_block
from planner.registry import FileEntry
from planner.settings import hosts_entries

KEYRINGS = "/etc/apt/keyrings"
HOSTS_MARKER = "# {mark} pgcascade cluster hosts"


def repository_list_entry(repo: dict) -> FileEntry:
    """The apt sources file of the repository."""
    return FileEntry(f"/etc/apt/sources.list.d/{repo.get('filename', 'pgcascade')}.list", content=repo["line"] + "\n")


def _repository(repo: dict) -> None:
    name = repo.get("filename", "pgcascade")
    if repo.get("key_path"):  # a key file on the controller
        files.put(name=f"apt repository key {name}", src=repo["key_path"], dest=f"{KEYRINGS}/{name}.asc",
                  mode="644")
    elif repo.get("key_url"):
        files.directory(name="apt keyrings directory", path=KEYRINGS, mode="755")
        files.download(name=f"apt repository key {name}", src=repo["key_url"], dest=f"{KEYRINGS}/{name}.asc",
                       mode="644")
    ensure_managed_files(name=f"apt repository {name}", files=[repository_list_entry(repo)])


def package_list(ctx: Context) -> list[str]:
    if ctx.node is None:  # the backup repository host
        return ["pgbackrest"]
    # python3: the on-host decision rules (hostrules) run on every PostgreSQL host.
    packages = [f"postgresql-{ctx.cluster.version}", "python3", "rsync"]
    if ctx.node in ctx.topology.vip_holders and ctx.cluster.vip:
        packages.append("heartbeat")
    if ctx.cluster.backup is not None:
        packages.append("pgbackrest")
    return packages


@deploy("Packages")
def install_packages(ctx: Context) -> None:
    """On the PostgreSQL hosts and the backup repository host (not on application hosts)."""
    if ctx.node is None and not ctx.is_backup_host:
        return
    if ctx.cluster.apt_repository:
        _repository(ctx.cluster.apt_repository)
    ensure_apt_packages(name="PostgreSQL, python3, rsync, heartbeat and pgBackRest packages",
                        packages=package_list(ctx))
    if ctx.node is None:
        return
    entries = "\n".join(f"{address}\t{name}" for address, name in hosts_entries(ctx.topology))
    ensure_block(name="/etc/hosts entries for the cluster hosts", path="/etc/hosts", content=entries,
                 marker=HOSTS_MARKER)
