"""Everything the deploy manages on a host, one entry per thing (pure: no pyinfra, no I/O).

Each entry says where the thing is, what it should be, how the deploy repairs it and what that
repair disturbs. Three readers use the same entries:

- the deploy (deploys/*) installs the files of each concern from `entries(...)`;
- `tasks.status` diffs them against the hosts' ManagedState facts (`diff_host`) and names every
  drifted entry with its repair and disturbance;
- the testinfra spec (tests/spec) asserts them on a live host.

Adding a managed file is one `FileEntry` in `_files` (its template and variables included).

Disturbances, least first. A deploy rerun repairs everything up to RESTART_STANDBY by itself;
RESTART_PRIMARY (a restart-only setting on the primary, haresources on the node holding the
resources) is never done implicitly: the run names it as pending and fails, and
tasks/rolling_restart.py applies it behind a switchover.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from planner import backup, settings
from planner.failover_cascade import prepared_cascades, watched_cascade, without_cascade
from planner.held_failover import include_topology
from planner.model import Topology
from planner.render import render
from planner.secrets import HEARTBEAT_KEY, REPLICATION_PASSWORD

NOTHING = "nothing"
RELOAD_POSTGRES = "reload PostgreSQL"
RELOAD_HEARTBEAT = "reload heartbeat"
RESTART_STANDBY = "restart a standby"
RESTART_PRIMARY = "restart the primary or move resources"
DISTURBANCES = (NOTHING, RELOAD_POSTGRES, RELOAD_HEARTBEAT, RESTART_STANDBY, RESTART_PRIMARY)


def worst(disturbances: Sequence[str]) -> str:
    """The largest of these disturbances (NOTHING for none)."""
    return max(disturbances, key=DISTURBANCES.index, default=NOTHING)


def needs_rolling_restart(disturbance: str) -> bool:
    """A deploy rerun never does this: it is pending until tasks/rolling_restart.py."""
    return disturbance == RESTART_PRIMARY


# What a changed file's content needs before it takes effect (FileEntry.on_change).
ON_CHANGE_NOTHING = "read at each use"
ON_CHANGE_POSTGRES = "PostgreSQL reads it on reload"
ON_CHANGE_HEARTBEAT = "heartbeat re-reads it on SIGHUP"
ON_CHANGE_HARESOURCES = "heartbeat reads it at start only"
ON_CHANGE_WATCH = "ha-watch reads it at start (restarted)"
ON_CHANGE_MONITOR = "the cascade monitor reads it at start (restarted)"
ON_CHANGE_UNIT = "systemd reads it on daemon-reload"
# The deploy installs each concern's files in groups of the same follow-up, always in this order.
ON_CHANGE_ORDER = (ON_CHANGE_NOTHING, ON_CHANGE_POSTGRES, ON_CHANGE_HEARTBEAT, ON_CHANGE_HARESOURCES,
                   ON_CHANGE_WATCH, ON_CHANGE_MONITOR, ON_CHANGE_UNIT)


@dataclass(frozen=True)
class Live:
    """What the host is now, for a repair's disturbance: the primary? holding heartbeat's resources?"""

    primary: bool = False
    holds_resources: bool = False


def _content_disturbance(on_change: str, live: Live) -> str:
    if on_change == ON_CHANGE_POSTGRES:
        return RELOAD_POSTGRES
    if on_change == ON_CHANGE_HEARTBEAT:
        return RELOAD_HEARTBEAT
    if on_change == ON_CHANGE_HARESOURCES:
        return RESTART_PRIMARY if live.holds_resources else RESTART_STANDBY
    return NOTHING


@dataclass(frozen=True)
class Drift:
    """One drifted entry on one host, in the DBA's words."""

    host: str
    key: str  # the entry's key: "file /etc/ha.d/authkeys", "setting synchronous_standby_names"
    category: str
    expected: str
    found: str
    repair: str
    disturbance: str

    def line(self) -> str:
        return (f"{self.host}: {self.key}: expected {self.expected}, found {self.found}; "
                f"repair: {self.repair} (disturbs: {self.disturbance})")

    def as_dict(self) -> dict:
        return {"host": self.host, "key": self.key, "category": self.category, "expected": self.expected,
                "found": self.found, "repair": self.repair, "disturbance": self.disturbance}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------ entries


@dataclass(frozen=True)
class FileEntry:
    """A file: its content (None: not known here, e.g. a secret without the secret, a private
    key), owner, group and mode; or absent (present=False)."""

    path: str
    owner: str = "root"
    group: str = "root"
    mode: str = "0644"
    content: str | None = None
    template: str | None = None
    concern: str = ""  # which deploy step installs it
    on_change: str = ON_CHANGE_NOTHING
    secret: bool = False  # never shown in a diff
    present: bool = True
    category = "file"

    @property
    def key(self) -> str:
        return f"file {self.path}"

    def check(self, observed: Mapping | None, live: Live,
              running_copy: Mapping | None = None) -> list[tuple[str, str, str, str]]:
        """[(expected, found, repair, disturbance)] for this file's observed stat (None: absent).
        running_copy: the copy the daemon made as it started (haresources): when it has the
        managed content, rewriting the file needs nothing."""
        if not self.present:
            if observed is None:
                return []
            return [("absent", "present", f"remove {self.path}", NOTHING)]
        if observed is None:
            return [(f"present ({self.mode} {self.owner}:{self.group})", "absent",
                     f"install {self.path}", _content_disturbance(self.on_change, live))]
        problems = []
        if self.content is not None and observed.get("sha256") != sha256(self.content):
            if running_copy and running_copy.get("sha256") == sha256(self.content):
                problems.append(("the managed content", "other content", f"rewrite {self.path} (the daemon "
                                 "already runs with the managed content)", NOTHING))
            else:
                problems.append(("the managed content", "other content", f"rewrite {self.path} "
                                 f"({self.on_change})", _content_disturbance(self.on_change, live)))
        wanted = f"{self.mode} {self.owner}:{self.group}"
        found = f"{observed.get('mode')} {observed.get('owner')}:{observed.get('group')}"
        if _mode(observed.get("mode")) != _mode(self.mode) or (observed.get("owner"), observed.get("group")) != (
                self.owner, self.group):
            problems.append((wanted, found, f"chmod/chown {self.path} (no reload)", NOTHING))
        return problems


def _mode(text) -> str:
    return str(text or "").lstrip("0") or "0"


@dataclass(frozen=True)
class DirectoryEntry:
    path: str
    owner: str = "root"
    group: str = "root"
    mode: str = "0755"
    concern: str = ""
    present: bool = True  # False: removed with everything in it
    category = "directory"

    @property
    def key(self) -> str:
        return f"directory {self.path}"

    def check(self, observed: Mapping | None, live: Live) -> list[tuple[str, str, str, str]]:
        wanted = f"{self.mode} {self.owner}:{self.group}"
        if not self.present:
            return [] if observed is None else [("absent", "present", f"remove {self.path}", NOTHING)]
        if observed is None or observed.get("type") != "directory":
            return [(f"a directory ({wanted})", "absent" if observed is None else "not a directory",
                     f"create {self.path}", NOTHING)]
        found = f"{observed.get('mode')} {observed.get('owner')}:{observed.get('group')}"
        if _mode(observed.get("mode")) != _mode(self.mode) or (observed.get("owner"), observed.get("group")) != (
                self.owner, self.group):
            return [(wanted, found, f"chmod/chown {self.path} (no reload)", NOTHING)]
        return []


@dataclass(frozen=True)
class UnitEntry:
    """A systemd unit enabled and running (or neither, present=False)."""

    unit: str
    present: bool = True
    concern: str = ""
    category = "unit"

    @property
    def key(self) -> str:
        return f"unit {self.unit}"

    def check(self, observed: Mapping | None, live: Live) -> list[tuple[str, str, str, str]]:
        observed = observed or {}
        # Debian's postgresql generator enables each cluster's unit at boot: enabled-runtime.
        enabled = observed.get("enabled") in ("enabled", "enabled-runtime")
        active = observed.get("active") == "active"
        if self.present and not (enabled and active):
            found = f"{observed.get('enabled') or 'unknown'}, {observed.get('active') or 'unknown'}"
            steps = [step for step, ok in (("enable", enabled), ("start", active)) if not ok]
            return [("enabled, active", found, f"{' and '.join(steps)} {self.unit}", NOTHING)]
        if not self.present and (enabled or active):
            return [("disabled, inactive", f"{observed.get('enabled')}, {observed.get('active')}",
                     f"stop and disable {self.unit}", NOTHING)]
        return []


@dataclass(frozen=True)
class SettingEntry:
    """A managed PostgreSQL setting: its value must come from our include file, or from nowhere
    (unset, in_file=False: a master's primary_conninfo). Checked against pg_settings and
    pg_file_settings (ManagedState's `settings`)."""

    name: str
    value: str
    include_file: str
    in_file: bool = True
    category = "setting"

    @property
    def key(self) -> str:
        return f"setting {self.name}"

    def check(self, observed: Mapping | None, live: Live) -> list[tuple[str, str, str, str]]:
        if not observed:
            return []  # PostgreSQL not running: its files decide (the file entries)
        restart_only = observed.get("context") == "postmaster"
        disturbance = (RESTART_PRIMARY if live.primary else RESTART_STANDBY) if restart_only else RELOAD_POSTGRES
        expected_source = f"{self.value!r} from {self.include_file}" if self.in_file else "unset"
        problems = []
        for other in observed.get("other_sources") or []:
            what = source_words(other)
            problems.append((expected_source, f"{other.get('setting')!r} {what}", source_repair(self.name, other),
                             disturbance))
        if not problems:
            source = observed.get("sourcefile")
            if observed.get("pending_restart"):
                problems.append((expected_source, f"{observed.get('setting')!r} in force until a restart"
                                 + (f" (read from {source})" if source else ""),
                                 "restart PostgreSQL (its files are right)", disturbance))
            elif self.in_file and source and source != self.include_file:
                problems.append((expected_source, f"{observed.get('setting')!r} from {source}",
                                 f"remove {self.name} from {source}", disturbance))
            elif not self.in_file and source:
                problems.append((expected_source, f"{observed.get('setting')!r} from {source}",
                                 f"remove {self.name} from {source}", disturbance))
        return problems


def source_words(other: Mapping) -> str:
    kind = other.get("kind")
    if kind == "alter_system":
        return "by ALTER SYSTEM (postgresql.auto.conf)"
    if kind == "file":
        return f"in {other.get('sourcefile')} line {other.get('sourceline')}"
    if kind == "role":
        return f"for role {other.get('role')}" + (f" in database {other['database']}" if other.get("database") else "")
    if kind == "database":
        return f"for database {other.get('database')}"
    return f"from {kind}"


def source_repair(name: str, other: Mapping) -> str:
    kind = other.get("kind")
    if kind == "alter_system":
        return f"ALTER SYSTEM RESET {name}"
    if kind == "file":
        return f"comment out {name} in {other.get('sourcefile')} line {other.get('sourceline')}"
    if kind == "role":
        return (f"ALTER ROLE {other.get('role')}"
                + (f" IN DATABASE {other['database']}" if other.get("database") else "") + f" RESET {name}")
    if kind == "database":
        return f"ALTER DATABASE {other.get('database')} RESET {name}"
    return f"remove {name} from {kind}"


@dataclass(frozen=True)
class SignalEntry:
    """standby.signal: present on a standby (else a restart would make it a second primary),
    absent on the master."""

    path: str
    present: bool
    category = "signal"

    @property
    def key(self) -> str:
        return f"signal {self.path}"

    def check(self, observed: Mapping | None, live: Live) -> list[tuple[str, str, str, str]]:
        if self.present and observed is None and live.primary:
            # A running primary the inventory calls a standby was promoted (a failover): its role
            # is reported, and recreating the file would demote it at its next restart.
            return []
        if self.present and observed is None:
            return [("present (a standby)", "absent", f"recreate {self.path} (read at start only)", NOTHING)]
        if not self.present and observed is not None:
            return [("absent (the master)", "present", f"remove {self.path} (read at start only)", NOTHING)]
        return []


@dataclass(frozen=True)
class AuthorizedKeysEntry:
    """The postgres user's authorized_keys: exactly the other cluster hosts' keys (their
    public keys, read from them: `peers`)."""

    path: str
    peers: tuple[str, ...]
    category = "authorized_keys"

    @property
    def key(self) -> str:
        return f"authorized_keys {self.path}"

    def check_keys(self, found: Sequence[str], peer_keys: Mapping[str, str | None]) -> list[tuple[str, str, str, str]]:
        wanted = {_key_body(k): peer for peer, k in peer_keys.items() if k}
        have = {_key_body(line) for line in found if line.strip() and not line.lstrip().startswith("#")}
        extra = sorted(have - set(wanted))
        missing = sorted(peer for body, peer in wanted.items() if body not in have)
        problems = []
        if extra:
            problems.append((f"only the keys of {', '.join(self.peers)}", f"{len(extra)} other key(s)",
                             f"rewrite {self.path} with the cluster's keys", NOTHING))
        if missing:
            problems.append((f"the keys of {', '.join(self.peers)}", f"no key of {', '.join(missing)}",
                             f"rewrite {self.path} with the cluster's keys", NOTHING))
        return problems


def _key_body(line: str) -> str:
    """`type base64` of a key line (options and comment left out)."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(words):
            return f"{word} {words[i + 1]}"
    return line.strip()


@dataclass(frozen=True)
class RoleEntry:
    """The replication role on the master: REPLICATION LOGIN, pg_read_all_stats, pg_rewind's
    functions (its password is checked by the deploy's SCRAM comparison)."""

    role: str
    category = "role"

    @property
    def key(self) -> str:
        return f"role {self.role}"

    def check(self, observed: Mapping | None, live: Live) -> list[tuple[str, str, str, str]]:
        if not live.primary:
            return []
        if not observed:
            return [("REPLICATION LOGIN", "no such role", f"CREATE ROLE {self.role} (the deploy)", NOTHING)]
        missing = [what for what, key in (("REPLICATION", "replication"), ("LOGIN", "login"),
                                          ("pg_read_all_stats", "reads_all_stats"),
                                          ("pg_rewind's functions", "can_rewind")) if not observed.get(key)]
        if missing:
            return [("REPLICATION LOGIN, pg_read_all_stats, pg_rewind's functions", f"without {', '.join(missing)}",
                     f"ALTER ROLE {self.role} / GRANT (the deploy)", NOTHING)]
        return []


@dataclass(frozen=True)
class HostRegistry:
    host: str
    files: tuple[FileEntry, ...] = ()
    directories: tuple[DirectoryEntry, ...] = ()
    units: tuple[UnitEntry, ...] = ()
    settings: tuple[SettingEntry, ...] = ()
    signals: tuple[SignalEntry, ...] = ()
    authorized_keys: tuple[AuthorizedKeysEntry, ...] = ()
    roles: tuple[RoleEntry, ...] = ()
    extra: dict = field(default_factory=dict)

    def files_of(self, concern: str) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.concern == concern)

    def directories_of(self, concern: str) -> tuple[DirectoryEntry, ...]:
        return tuple(d for d in self.directories if d.concern == concern)

    def paths(self) -> list[str]:
        """Every path whose stat the facts read (files, directories, signals, running copies)."""
        copies = {copy for f in self.files if (copy := running_copy_path(f))}
        return sorted({f.path for f in self.files} | {d.path for d in self.directories}
                      | {s.path for s in self.signals} | copies)


def running_copy_path(entry: FileEntry) -> str | None:
    """Where heartbeat's unit copies a file it reads at start only, as it starts."""
    if entry.on_change != ON_CHANGE_HARESOURCES:
        return None
    return f"{settings.HEARTBEAT_STARTED_COPY_DIRECTORY}/{entry.path.rsplit('/', 1)[-1]}"


# ------------------------------------------------------------------------------- the registry

# Concerns: the deploy step that installs a file.
POSTGRES = "postgres"
HEARTBEAT = "heartbeat"
CASCADE_FAILOVER = "cascade_failover"
SSH = "ssh"
HOSTRULES = "hostrules"

# pgcascade's synchronous guarantee: a commit waits for the synchronous standby's flush (on) or
# apply (remote_apply); anything below is weaker, wherever it is set.
SYNCHRONOUS_COMMIT_STRONG = ("on", "remote_apply")
# Settings a per-role or per-database value must not override on the master.
GUARDED_ROLE_SETTINGS = ("synchronous_commit", "synchronous_standby_names")


def package_digest(files: Mapping[str, str]) -> str:
    """One digest of the hostrules package's files ({name: text}): ha-watch's and the cascade
    monitor's scripts carry it, so a new rule restarts them (they import the rules at start)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def _pgconf_vars(topology: Topology, node: str, held: Mapping[str, str] | None) -> dict:
    """The include file's variables: the cluster's, or the failover variant's while a failover
    from a cascade that has not caught up is kept (planner.held_failover)."""
    include, variant = include_topology(topology, node, held or {})
    return settings.render_vars_pgconf(include, node, variant_without=variant)


def file_variables(topology: Topology, node: str, secrets: Mapping[str, str] | None,
                   hostrules: Mapping[str, str] | None,
                   held: Mapping[str, str] | None = None) -> dict[str, Callable[[], dict]]:
    """Per template: how to build its variables for `node` (called only for the files it gets;
    those needing the secrets or the hostrules package only when they are known). held: the
    cascade failovers this run keeps (planner.held_failover)."""

    def secret(name: str) -> str:
        if secrets is None:
            raise ValueError(f"{name} is needed to render this file")
        return secrets[name]

    def hostrules_digest() -> str:
        if hostrules is None:
            raise ValueError("the hostrules package is needed to render ha-watch's and the cascade monitor's scripts")
        return package_digest(hostrules)

    return {
        "pgcascade.conf.j2": lambda: _pgconf_vars(topology, node, held),
        "pg_hba.conf.j2": lambda: settings.render_vars_hba(topology, node),
        "pgpass.j2": lambda: settings.render_vars_pgpass(topology, node, secret(REPLICATION_PASSWORD)),
        "archive-wal.sh.j2": lambda: settings.archive_wal_vars(topology.cluster),
        "replication-status.sh.j2": lambda: settings.replication_status_vars(topology),
        "ha.cf.j2": lambda: settings.heartbeat_vars(topology, node),
        "haresources.j2": lambda: settings.heartbeat_vars(topology, node),
        "authkeys.j2": lambda: settings.authkeys_vars(secret(HEARTBEAT_KEY)),
        "hapostgres.j2": lambda: settings.ha_script_vars(topology),
        "may-promote.sh.j2": lambda: settings.ha_script_vars(topology),
        "boot-guard.sh.j2": lambda: settings.ha_script_vars(topology),
        "ha-watch.sh.j2": lambda: {**settings.ha_script_vars(topology), "hostrules_digest": hostrules_digest()},
        "ha-lib.sh.j2": lambda: settings.ha_lib_vars(topology, node),
        "postgresql-boot-guard.conf.j2": lambda: settings.boot_guard_dropin_vars(topology),
        "postgresql-restart.conf.j2": lambda: settings.postgres_restart_vars(topology),
        "pgcascade-postgres-restart.service.j2": lambda: settings.postgres_restart_vars(topology),
        "postgres-restart.sh.j2": lambda: settings.postgres_restart_vars(topology),
        "pgcascade-ha-watch.service.j2": settings.ha_watch_unit_vars,
        "heartbeat-restart.conf.j2": lambda: settings.heartbeat_dropin_vars(topology, node),
        "hostrules.json.j2": lambda: settings.hostrules_config_vars(topology, node),
        "pgcascade-vip.sh.j2": lambda: settings.vip_resource_vars(topology, node),
        "cascade-failed.sh.j2": lambda: settings.cascade_failed_vars(topology, node),
        "cascade-monitor.sh.j2": lambda: {**settings.cascade_monitor_vars(topology, node),
                                          "hostrules_digest": hostrules_digest()},
        "cascade-monitor.service.j2": lambda: settings.cascade_monitor_unit_vars(topology, node),
        "pgbackrest-cluster-host.conf.j2": lambda: backup.cluster_host_config_vars(topology.cluster.repository,
                                                                                   topology.cluster),
        "archive-pgbackrest.sh.j2": lambda: backup.archive_pgbackrest_vars(topology.cluster.repository,
                                                                           topology.cluster),
    }


def _template_file(vars_of: Mapping[str, Callable[[], dict]], secrets, template: str, dest: str, owner: str,
                   group: str, mode: str, concern: str, on_change: str = ON_CHANGE_NOTHING,
                   secret: bool = False, unknown: bool = False) -> FileEntry:
    """unknown: its content cannot be told here (a secret without the secrets, ha-watch without
    the hostrules package): its mode and owner are still managed."""
    content = None if (secret and secrets is None) or unknown else render(template, vars_of[template]())
    return FileEntry(path=dest, owner=owner, group=group, mode=mode, content=content, template=template,
                     concern=concern, on_change=on_change, secret=secret)


def _files(topology: Topology, node_name: str, secrets: Mapping[str, str] | None,
           hostrules: Mapping[str, str] | None, held: Mapping[str, str] | None = None) -> list[FileEntry]:
    node = topology.node(node_name)
    config = topology.cluster.config_directory
    v = file_variables(topology, node_name, secrets, hostrules, held)

    def tf(*args, **kwargs) -> FileEntry:
        return _template_file(v, secrets, *args, **kwargs)

    files = [
        tf("pgcascade.conf.j2", f"{config}/conf.d/{settings.INCLUDE_FILE_NAME}", "postgres", "postgres", "0644",
           POSTGRES, ON_CHANGE_POSTGRES),
        tf("pg_hba.conf.j2", f"{config}/pg_hba.conf", "postgres", "postgres", "0640", POSTGRES, ON_CHANGE_POSTGRES),
        tf("pgpass.j2", settings.PGPASS_PATH, "postgres", "postgres", "0600", POSTGRES, secret=True),
        tf("archive-wal.sh.j2", settings.ARCHIVE_WAL_PATH, "root", "root", "0755", POSTGRES),
        tf("replication-status.sh.j2", settings.REPLICATION_STATUS_PATH, "root", "root", "0755", POSTGRES),
        # The on-host decision rules (stdlib-only python3, the code the planner imports) and
        # where this host stands for them: read at each use.
        tf("hostrules.json.j2", settings.HOSTRULES_CONFIG_PATH, "root", "root", "0644", HOSTRULES),
        *(FileEntry(f"{settings.HOSTRULES_DIRECTORY}/{name}", "root", "root", "0644",
                    None if hostrules is None else hostrules[name], concern=HOSTRULES)
          for name in sorted(hostrules or ())),
        # The key itself is made on the host and never leaves it: its mode and owner only.
        FileEntry(f"{settings.POSTGRES_HOME}/.ssh/id_ed25519", "postgres", "postgres", "0600", concern=SSH,
                  secret=True),
        FileEntry(f"{settings.POSTGRES_HOME}/.ssh/id_ed25519.pub", "postgres", "postgres", "0644", concern=SSH),
        FileEntry(f"{settings.POSTGRES_HOME}/.ssh/authorized_keys", "postgres", "postgres", "0600", concern=SSH),
        FileEntry(settings.KNOWN_HOSTS_PATH, "postgres", "postgres", "0644", concern=SSH),
    ]
    heartbeat_node = node in topology.vip_holders and topology.cluster.vip is not None
    # A killed server is started again by systemd (the unit's OnFailure=), except where ha-watch
    # decides (heartbeat nodes).
    restart_dropin = settings.restart_dropin_path(topology.cluster)
    restart_unit = f"/etc/systemd/system/{settings.restart_unit_name(topology.cluster)}"
    if heartbeat_node:
        files += [FileEntry(restart_dropin, concern=POSTGRES, present=False, on_change=ON_CHANGE_UNIT),
                  FileEntry(restart_unit, concern=POSTGRES, present=False, on_change=ON_CHANGE_UNIT),
                  FileEntry(settings.POSTGRES_RESTART_PATH, concern=POSTGRES, present=False)]
    else:
        files += [tf("postgres-restart.sh.j2", settings.POSTGRES_RESTART_PATH, "root", "root", "0755", POSTGRES),
                  tf("pgcascade-postgres-restart.service.j2", restart_unit, "root", "root", "0644", POSTGRES,
                     ON_CHANGE_UNIT),
                  tf("postgresql-restart.conf.j2", restart_dropin, "root", "root", "0644", POSTGRES, ON_CHANGE_UNIT)]
    if topology.cluster.backup is not None:  # pgBackRest: where the repository is; the WAL push
        files += [
            tf("pgbackrest-cluster-host.conf.j2", backup.CONFIG_PATH, "postgres", "postgres", "0640", POSTGRES),
            tf("archive-pgbackrest.sh.j2", backup.ARCHIVE_PGBACKREST_PATH, "root", "root", "0755", POSTGRES),
        ]
    if heartbeat_node:
        files += [
            tf("ha.cf.j2", f"{settings.HA_DIRECTORY}/ha.cf", "root", "root", "0644", HEARTBEAT, ON_CHANGE_HEARTBEAT),
            tf("haresources.j2", f"{settings.HA_DIRECTORY}/haresources", "root", "root", "0644", HEARTBEAT,
               ON_CHANGE_HARESOURCES),
            tf("authkeys.j2", f"{settings.HA_DIRECTORY}/authkeys", "root", "root", "0600", HEARTBEAT,
               ON_CHANGE_HEARTBEAT, secret=True),
            tf("hapostgres.j2", settings.HAPOSTGRES_PATH, "root", "root", "0755", HEARTBEAT),
            tf("pgcascade-vip.sh.j2", settings.VIP_RESOURCE_PATH, "root", "root", "0755", HEARTBEAT),
            # The failover scripts: ha-lib is sourced by the others, never run.
            tf("ha-lib.sh.j2", settings.HA_LIB_PATH, "root", "root", "0644", HEARTBEAT, ON_CHANGE_WATCH),
            tf("may-promote.sh.j2", settings.MAY_PROMOTE_PATH, "root", "root", "0755", HEARTBEAT),
            tf("boot-guard.sh.j2", settings.BOOT_GUARD_PATH, "root", "root", "0755", HEARTBEAT),
            tf("ha-watch.sh.j2", settings.HA_WATCH_PATH, "root", "root", "0755", HEARTBEAT, ON_CHANGE_WATCH,
               unknown=hostrules is None),
            tf("postgresql-boot-guard.conf.j2", settings.boot_guard_dropin_path(topology.cluster), "root", "root",
               "0644", HEARTBEAT, ON_CHANGE_UNIT),
            tf("pgcascade-ha-watch.service.j2", settings.HA_WATCH_UNIT_PATH, "root", "root", "0644", HEARTBEAT,
               ON_CHANGE_WATCH),
            tf("heartbeat-restart.conf.j2", settings.HEARTBEAT_DROPIN_PATH, "root", "root", "0644", HEARTBEAT,
               ON_CHANGE_UNIT),
        ]
    cascades = prepared_cascades(topology, node_name)
    for cascade in cascades:
        variables = settings.render_vars_pgconf(without_cascade(topology, cascade), node_name,
                                                variant_without=cascade)
        files.append(FileEntry(settings.cascade_variant_path(cascade), "root", "root", "0644",
                               render("pgcascade.conf.j2", variables), "pgcascade.conf.j2", CASCADE_FAILOVER))
    if cascades:
        files.append(tf("cascade-failed.sh.j2", settings.CASCADE_FAILED_PATH, "root", "root", "0755",
                        CASCADE_FAILOVER))
    else:
        files.append(FileEntry(settings.CASCADE_FAILED_PATH, concern=CASCADE_FAILOVER, present=False))
    if watched_cascade(topology, node_name):
        files += [
            tf("cascade-monitor.sh.j2", settings.CASCADE_MONITOR_PATH, "root", "root", "0755", CASCADE_FAILOVER,
               ON_CHANGE_MONITOR, unknown=hostrules is None),
            tf("cascade-monitor.service.j2", settings.CASCADE_MONITOR_UNIT_PATH, "root", "root", "0644",
               CASCADE_FAILOVER, ON_CHANGE_MONITOR),
        ]
    else:
        files += [FileEntry(settings.CASCADE_MONITOR_PATH, concern=CASCADE_FAILOVER, present=False,
                            on_change=ON_CHANGE_MONITOR),
                  FileEntry(settings.CASCADE_MONITOR_UNIT_PATH, concern=CASCADE_FAILOVER, present=False,
                            on_change=ON_CHANGE_MONITOR)]
    return files


def _directories(topology: Topology, node_name: str) -> list[DirectoryEntry]:
    cluster = topology.cluster
    directories = [
        DirectoryEntry(cluster.archive_dir, "postgres", "postgres", "0700", POSTGRES),
        DirectoryEntry(settings.LIB_DIRECTORY, "root", "root", "0755", POSTGRES),
        DirectoryEntry(settings.HOSTRULES_DIRECTORY, "root", "root", "0755", HOSTRULES),
        DirectoryEntry(f"{settings.POSTGRES_HOME}/.ssh", "postgres", "postgres", "0700", SSH),
    ]
    cascades = prepared_cascades(topology, node_name)
    directories.append(DirectoryEntry(settings.CASCADE_FAILED_DIRECTORY, concern=CASCADE_FAILOVER,
                                      present=bool(cascades)))
    directories += [DirectoryEntry(settings.cascade_variant_path(c).rsplit("/", 1)[0], concern=CASCADE_FAILOVER)
                    for c in cascades]
    return directories


def _units(topology: Topology, node_name: str) -> list[UnitEntry]:
    node = topology.node(node_name)
    cluster = topology.cluster
    units = [UnitEntry(f"postgresql@{cluster.version}-{cluster.name}.service", concern=POSTGRES)]
    if node in topology.vip_holders and cluster.vip is not None:
        units += [UnitEntry("heartbeat.service", concern=HEARTBEAT),
                  UnitEntry("pgcascade-ha-watch.service", concern=HEARTBEAT)]
    units.append(UnitEntry(settings.CASCADE_MONITOR_UNIT, present=bool(watched_cascade(topology, node_name)),
                           concern=CASCADE_FAILOVER))
    return units


def _settings(topology: Topology, node_name: str) -> list[SettingEntry]:
    include = f"{topology.cluster.config_directory}/conf.d/{settings.INCLUDE_FILE_NAME}"
    desired = settings.desired_values(topology, node_name)
    entries = [SettingEntry(name, value, include) for name, value in desired.items()]
    entries += [SettingEntry(name, "", include, in_file=False)
                for name in settings.UPSTREAM_ONLY_GUCS if name not in desired]
    return entries


def _key_peers(topology: Topology, node_name: str) -> tuple[str, ...]:
    """Whose postgres keys a host's authorized_keys holds: the other cluster hosts', and the
    backup repository host's when there is one (it runs the backups over ssh)."""
    peers = tuple(n.name for n in topology.nodes if n.name != node_name)
    backup = topology.cluster.backup
    return peers + ((backup.host,) if backup is not None else ())


def entries(topology: Topology, node_name: str, secrets: Mapping[str, str] | None = None,
            hostrules: Mapping[str, str] | None = None, held: Mapping[str, str] | None = None) -> HostRegistry:
    """Everything the deploy manages on `node_name`. Without `secrets`, the content of the files
    that hold one is unknown (their mode and owner are still checked); `hostrules`: the hostrules
    package's files ({name: text}, deploys.hostrules_package), without which its files and
    ha-watch's and the cascade monitor's scripts (they carry the package's digest) are not known."""
    node = topology.node(node_name)
    cluster = topology.cluster
    signal = f"{cluster.data_directory}/standby.signal"
    return HostRegistry(
        host=node_name,
        files=tuple(_files(topology, node_name, secrets, hostrules, held)),
        directories=tuple(_directories(topology, node_name)),
        units=tuple(_units(topology, node_name)),
        settings=tuple(_settings(topology, node_name)),
        signals=(SignalEntry(signal, present=node.upstream is not None),),
        authorized_keys=(AuthorizedKeysEntry(f"{settings.POSTGRES_HOME}/.ssh/authorized_keys",
                                             _key_peers(topology, node_name)),),
        roles=(RoleEntry(cluster.replication_user),) if node.role == "master" else (),
        extra={"include_file": f"{cluster.config_directory}/conf.d/{settings.INCLUDE_FILE_NAME}",
               "main_config_file": f"{cluster.config_directory}/postgresql.conf"},
    )


def managed_setting_names(topology: Topology) -> tuple[str, ...]:
    """Every setting name a host's ManagedState must report (sources and values)."""
    return tuple(sorted(set(settings.guc_names(topology)) | set(GUARDED_ROLE_SETTINGS)))


# ----------------------------------------------------------------------------------- the diff


def _role_config(rows: Sequence[Mapping]) -> list[dict]:
    """pg_db_role_setting rows -> [{"name", "setting", "kind": "role"|"database", "role", "database"}]."""
    found = []
    for row in rows or []:
        for item in row.get("config") or []:
            name, _, value = str(item).partition("=")
            found.append({"name": name.lower(), "setting": value, "kind": "role" if row.get("role") else "database",
                          "role": row.get("role"), "database": row.get("database")})
    return found


def setting_sources(postgres: Mapping, include_file: str, main_config_file: str) -> dict[str, dict]:
    """Per setting name: its live value, context and source file, and `other_sources`: every
    other place that sets it (ALTER SYSTEM, another configuration file, a role or a database).

    The cluster's main postgresql.conf may set a managed setting before our include file
    overrides it (Debian's sets port): not another source, unless its value is the one in force.
    For synchronous_commit (not in our file) every place that sets it counts.
    """
    result: dict[str, dict] = {}
    for name, row in (postgres.get("settings") or {}).items():
        result[name] = {**row, "other_sources": []}
    for row in postgres.get("file_settings") or []:
        name, source = row.get("name"), row.get("sourcefile") or ""
        entry = result.setdefault(name, {"other_sources": []})
        if source == include_file:
            continue
        if source == main_config_file and name not in GUARDED_ROLE_SETTINGS:
            continue
        kind = "alter_system" if source.endswith("/postgresql.auto.conf") else "file"
        entry["other_sources"].append({"kind": kind, "setting": row.get("setting"), "sourcefile": source,
                                       "sourceline": row.get("sourceline")})
    for row in _role_config(postgres.get("role_settings") or []):
        entry = result.setdefault(row["name"], {"other_sources": []})
        entry["other_sources"].append(row)
    return result


def weakens_synchronous_commit(value: str | None) -> bool:
    return value not in SYNCHRONOUS_COMMIT_STRONG


def offending_sources(sources: Mapping[str, Mapping], managed: Sequence[str], primary: bool) -> list[tuple[str, dict]]:
    """[(name, other source)] the deploy removes: any other source of a managed setting, and on the
    primary a per-role/per-database/file/ALTER SYSTEM synchronous_commit weaker than on (the
    sources of `setting_sources`). Role and database values replicate: only the primary changes them."""
    found = []
    for name in sorted(sources):
        for other in sources[name].get("other_sources") or []:
            if other.get("kind") in ("role", "database") and not primary:
                continue
            if name in managed:
                found.append((name, other))
            elif name in GUARDED_ROLE_SETTINGS and primary and weakens_synchronous_commit(other.get("setting")):
                found.append((name, other))
    return found


def _guarantee_drifts(host: str, observed_settings: Mapping, live: Live) -> list[Drift]:
    """synchronous_commit weakened anywhere on the primary (a conf file, ALTER SYSTEM, a role or
    a database): commits no longer wait for the synchronous standby."""
    if not live.primary:
        return []
    drifts = []
    sc = observed_settings.get("synchronous_commit") or {}
    for other in sc.get("other_sources") or []:
        if weakens_synchronous_commit(other.get("setting")):
            drifts.append(Drift(host, "setting synchronous_commit", "setting",
                                "on (the default) everywhere", f"{other.get('setting')!r} {source_words(other)}",
                                source_repair("synchronous_commit", other), RELOAD_POSTGRES))
    return drifts


def diff_host(registry: HostRegistry, observed: Mapping | None, live: Live,
              peer_public_keys: Mapping[str, str | None] | None = None) -> list[Drift]:
    """Every drifted entry of one host, from its ManagedState fact (None: not read: no drift
    can be told). peer_public_keys: the other hosts' postgres public keys (None: unknown)."""
    if not observed:
        return []
    host = registry.host
    paths = observed.get("paths") or {}
    drifts: list[Drift] = []

    def add(entry, problems) -> None:
        for expected, found, repair, disturbance in problems:
            drifts.append(Drift(host, entry.key, entry.category, expected, found, repair, disturbance))

    for directory in registry.directories:
        add(directory, directory.check(paths.get(directory.path), live))
    for file in registry.files:
        copy = running_copy_path(file)
        add(file, file.check(paths.get(file.path), live, paths.get(copy) if copy else None))
    units = observed.get("units") or {}
    for unit in registry.units:
        add(unit, unit.check(units.get(unit.unit), live))
    postgres = observed.get("postgres")
    if postgres:  # None: PostgreSQL does not answer
        observed_settings = setting_sources(postgres, registry.extra.get("include_file", ""),
                                            registry.extra.get("main_config_file", ""))
        for setting in registry.settings:
            add(setting, setting.check(observed_settings.get(setting.name), live))
        drifts += _guarantee_drifts(host, observed_settings, live)
        roles = postgres.get("roles")
        if roles is not None:
            for role in registry.roles:
                add(role, role.check(roles.get(role.role), live))
    for signal in registry.signals:
        add(signal, signal.check(paths.get(signal.path), live))
    if peer_public_keys is not None and observed.get("authorized_keys") is not None:
        for keys in registry.authorized_keys:
            known = {p: peer_public_keys.get(p) for p in keys.peers}
            if all(known.values()):
                add(keys, keys.check_keys(observed["authorized_keys"], known))
    return drifts


# ------------------------------------------------------------------------ heartbeat's files

def heartbeat_action(state: Mapping, reread_files: Sequence[str], start_files: Sequence[str]) -> tuple[str, str]:
    """("nothing" | "reread" | "restart" | "pending", reason) from a HeartbeatConfigState fact.

    ha.cf and authkeys changed since heartbeat read them: `heartbeat -r` (SIGHUP: re-read, no
    resource moves). haresources changed since it started: a restart, which on the node holding
    the resources releases them; there it stays pending (tasks/rolling_restart.py).
    """
    if not state.get("running"):
        return "nothing", "heartbeat is not running: it reads its files when it starts"
    started = state.get("started") or 0
    read_at = max(started, state.get("reread") or 0)
    mtimes = state.get("mtimes") or {}
    copies, current = state.get("started_sha256") or {}, state.get("sha256") or {}
    # The copy heartbeat's unit makes as it starts tells exactly; without one, the change time.
    at_start = sorted(f for f in start_files
                      if (copies[f] != current.get(f) if f in copies else mtimes.get(f, 0) > started))
    if at_start:
        if state.get("holds_vip"):
            return "pending", (f"{', '.join(at_start)} changed since heartbeat started; heartbeat reads it at start "
                               "only and this node holds the resources: a restart would move them "
                               f"({RESTART_PRIMARY}): apply it with tasks/rolling_restart.py")
        return "restart", f"{', '.join(at_start)} changed since heartbeat started (this node holds no resources)"
    reread = sorted(f for f in reread_files if mtimes.get(f, 0) > read_at)
    if reread:
        return "reread", f"{', '.join(reread)} changed since heartbeat read them: heartbeat -r (no resource moves)"
    return "nothing", "heartbeat runs with its files"


def primary_restart_pending(in_recovery: bool | None, needs_restart: Sequence[str],
                            pristine: bool = False) -> str | None:
    """The reason a deploy leaves a restart of the primary pending, or None. A never-used
    primary (a fresh cluster on its first deploy: no data, no client, no standby) restarts."""
    if in_recovery is False and needs_restart and not pristine:
        return (f"{', '.join(sorted(needs_restart))} only change at a restart of the primary ({RESTART_PRIMARY}): "
                "apply it with tasks/rolling_restart.py (standbys first, a switchover, the old primary, back)")
    return None
