"""The facts deploy.py's steps read on each host, with the arguments they read them with, so that
the run reads them in one command per host (operations.run_snapshot). A fact missing here, or
read with other arguments, is still read: live, in its own round trip (bench/deploy.py counts
those of a no-op rerun)."""
from __future__ import annotations

from collections.abc import Callable

from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Block, File, FileContents
from pyinfra.facts.server import Command
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from deploys.hostrules_package import package_contents
from deploys.packages import HOSTS_MARKER, repository_list_entry
from facts.config_state import PgConfigState
from facts.managed import HeartbeatConfigState, ManagedState, PathStates
from facts.pg_state import PgState
from operations.managed_state import HEARTBEAT_REREAD_STAMP
from operations.postgres import AS_POSTGRES
from operations.run_snapshot import Declared, declare_run_facts
from operations.ssh_trust import HOST_KEY, public_key_path
from operations.syncset import record_command
from planner import registry, settings
from planner.model import Topology
from planner.paths import CASCADE_HOLD_PATH


def heartbeat_files(reg: registry.HostRegistry, on_change: str) -> list[str]:
    """The heartbeat files of one follow-up group (deploys.heartbeat and deploys.pending read them)."""
    return [f.path for f in reg.files_of(registry.HEARTBEAT) if f.on_change == on_change]


def declare(topology: Topology, secrets: dict) -> Callable[[str], Declared]:
    """{host name -> its facts}: what deploy.py's steps will ask each PostgreSQL host."""
    c = topology.cluster
    vip = c.vip.address if c.vip else ""
    repository_paths = [repository_list_entry(c.apt_repository).path] if c.apt_repository else []

    def host_facts(name: str) -> Declared:
        if name not in {n.name for n in topology.nodes}:
            return []
        reg = registry.entries(topology, name, secrets, hostrules=package_contents())
        pg = {"version": c.version, "cluster": c.name, "port": c.port, **AS_POSTGRES}
        facts: Declared = [
            (PgState, pg),
            (ManagedState, {"paths": reg.paths(), "units": [u.unit for u in reg.units],
                            "setting_names": list(registry.managed_setting_names(topology)), "port": c.port,
                            "role": c.replication_user, "home": settings.POSTGRES_HOME, "vip": vip, "_sudo": True}),
            (PathStates, {"paths": sorted({*reg.paths(), *repository_paths})}),
            (Block, {"path": "/etc/hosts", "marker": HOSTS_MARKER}),
            (SystemdStatus, {"services": [u.unit for u in reg.units]}),
            (SystemdEnabled, {"services": [u.unit for u in reg.units]}),
            (FileContents, {"path": public_key_path(settings.POSTGRES_HOME)}),
            (FileContents, {"path": HOST_KEY}),
            (DebPackages, {}),
            (PgConfigState, {"port": c.port, "files": settings.config_file_paths(c), **AS_POSTGRES}),
            (File, {"path": CASCADE_HOLD_PATH}),
            (File, {"path": f"{c.config_directory}/postgresql.conf"}),  # the cluster exists
            (Command, {"command": record_command(), **AS_POSTGRES}),
        ]
        reread = heartbeat_files(reg, registry.ON_CHANGE_HEARTBEAT)
        start = heartbeat_files(reg, registry.ON_CHANGE_HARESOURCES)
        if reread or start:
            heartbeat = {"stamp": HEARTBEAT_REREAD_STAMP,
                         "started_copy_dir": settings.HEARTBEAT_STARTED_COPY_DIRECTORY, "vip": vip}
            facts.append((HeartbeatConfigState, {"files": [*reread, *start], **heartbeat}))
        if name == topology.master.name:  # its replication role
            facts.append((PgState, {**pg, "roles": [c.replication_user]}))
        return facts

    return host_facts


def share_fact_reads(ctx) -> None:
    """This run reads the facts above once per host, shared until its first change."""
    declare_run_facts(declare(ctx.topology, ctx.secrets))
