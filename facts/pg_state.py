"""PgState: the one composite fact about a PostgreSQL host (see docs/architecture.md).

One round trip: command() renders a bash script that prints ONE JSON object, and process()
normalises it into the plain dict of the contract. The script runs as the ``postgres`` OS user
(``_sudo=True, _sudo_user="postgres"``): psql then connects over the unix socket in
/var/run/postgresql with peer authentication as the superuser ``postgres``, and the data
directory (standby.signal, pg_controldata) is readable.

The script never exits non-zero, because a fact whose command fails fails the host:
- PostgreSQL <version> not installed, cluster missing, server stopped, starting up or shutting
  down (anything pg_isready does not call "accepting connections"): it reports what it can
  from the files (conf, standby.signal, pg_controldata) and ``server`` is null;
- server accepting connections but the query fails (wrong OS user, say): it reports psql's
  message in ``error`` and process() raises FactProcessError, so that host fails with the reason
  instead of passing for a stopped server.

Raw document printed by the script (the recordings in tests/fixtures/facts/pgstate/ are these):
``{"installed", "cluster_exists", "data_directory", "has_data", "standby_signal",
"controldata": {"system_identifier", "timeline"}|null, "server": {...}|null, "error": str|null,
"settings_requested": [names]}``; ``server`` is the json_build_object() of _SQL.
"""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from string import Template
from typing import Any

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from planner.paths import clone_marker_path
from planner.pgstate import Archiver, Lsn, PgStateDict, ReplicationRow, Role, WalReceiver

SOCKET_DIRECTORY = "/var/run/postgresql"

_CLUSTER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")  # unquoted SQL identifiers, as pg_authid stores them
_SETTING_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")  # GUC names, incl. ext.name

# The query, for PostgreSQL 13-17. $settings and $roles are text[] literals of names already
# validated by command(). Notes:
# - timeline: a primary's current insert timeline comes from its WAL file name (the checkpoint's
#   may be older just after a promotion); pg_walfile_name() is refused in recovery, so a standby
#   reports the WAL receiver's received_tli while streaming, else its last restartpoint's.
# - replay_lag_bytes, flush_lag_bytes: bytes between this server's WAL position and what the
#   standby replayed, flushed.
#   The position is pg_current_wal_lsn() on a primary; on a cascading standby it is what it can
#   send on (the greater of its received and replayed LSNs). None until the standby reports.
# - standby_signal: tests one field, since a row IS NOT NULL only when all its fields are
#   (pg_stat_file's "creation" is always null on Linux).
# - primary_conninfo: any password=... in it is masked before it leaves the server.
# - pristine: see PgState.
_SQL = Template(r"""
with self as (
  select pg_is_in_recovery() as in_recovery,
         case when pg_is_in_recovery()
              then greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
              else pg_current_wal_lsn() end as position
), tl as (
  select case when in_recovery
              then coalesce((select nullif(received_tli, 0) from pg_stat_wal_receiver
                              where status = 'streaming'),
                            (select timeline_id from pg_control_checkpoint()))
              else ('x' || substr(pg_walfile_name(position), 1, 8))::bit(32)::int end as timeline
    from self
)
select json_build_object(
  'data_directory', current_setting('data_directory'),
  'standby_signal', (pg_stat_file('standby.signal', true)).size is not null,
  'in_recovery', self.in_recovery,
  'system_identifier', (select system_identifier::text from pg_control_system()),
  'timeline', tl.timeline,
  'lsn', json_build_object(
    'current', case when not self.in_recovery then pg_wal_lsn_diff(self.position, '0/0') end,
    'receive', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'),
    'replay', pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')),
  'primary_conninfo', regexp_replace(current_setting('primary_conninfo'),
    'password\s*=\s*(''(\\.|[^''\\])*''|\S*)', 'password=********', 'g'),
  'wal_receiver', (select json_build_object('status', status, 'sender_host', sender_host,
                     'sender_port', sender_port, 'received_tli', received_tli)
                     from pg_stat_wal_receiver limit 1),
  'replication', (select coalesce(json_agg(json_build_object(
                     'application_name', application_name, 'client_addr', host(client_addr),
                     'state', state, 'sync_priority', sync_priority, 'sync_state', sync_state,
                     'replay_lag_bytes', pg_wal_lsn_diff(self.position, replay_lsn),
                     'flush_lag_bytes', pg_wal_lsn_diff(self.position, flush_lsn))
                     order by application_name, pid), '[]')
                    from pg_stat_replication),
  'pending_restart', (select coalesce(json_agg(name order by name), '[]')
                        from pg_settings where pending_restart),
  'settings', (select coalesce(json_object_agg(asked.name, s.setting order by asked.name), '{}')
                 from unnest($settings) as asked(name) left join pg_settings s using (name)),
  'archiver', (select json_build_object('archived_count', archived_count,
                 'failed_count', failed_count, 'last_archived_wal', last_archived_wal,
                 'last_failed_wal', last_failed_wal) from pg_stat_archiver),
  'roles', (select coalesce(json_object_agg(rolname, json_build_object(
              'replication', rolreplication, 'login', rolcanlogin, 'password', rolpassword,
              'reads_all_stats', pg_has_role(oid, 'pg_read_all_stats', 'MEMBER'),
              'can_rewind', has_function_privilege(oid, 'pg_read_binary_file(text, bigint, bigint, boolean)', 'EXECUTE'))
              order by rolname), '{}')
              from pg_authid where rolname = any($roles)),
  'pristine', not self.in_recovery and tl.timeline = 1
    and not exists (select from pg_database
                     where datname not in ('template0', 'template1', 'postgres'))
    and not exists (select from pg_roles where oid >= 16384 and rolname <> all($roles))
    and (select archived_count = 0 from pg_stat_archiver)
) from self, tl""")

# The script. The header command() puts before it sets PG_VERSION, PG_CLUSTER, PG_PORT, PG_SQL
# and PG_SETTINGS_JSON (each shell-quoted). Every path ends in one printf and exit 0.
# A fact's psql gives up: a server whose connections hang must not hang the task reading it.
PSQL_DEADLINE_ENV = "PGCONNECT_TIMEOUT=5 PGOPTIONS='-c statement_timeout=10s'"
_SCRIPT = r"""
cd / 2>/dev/null
export LC_ALL=C PGCLIENTENCODING=UTF8 PGAPPNAME=pgcascade-fact """ + PSQL_DEADLINE_ENV + r"""
bin=/usr/lib/postgresql/$PG_VERSION/bin
conf_dir=/etc/postgresql/$PG_VERSION/$PG_CLUSTER
socket=$PG_SOCKET

json_str() {  # $1 as a JSON string ("" -> null)
  local s=$1
  [ -n "$s" ] || { printf null; return; }
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}
accepting() { [ -x "$bin/pg_isready" ] && "$bin/pg_isready" -q -h "$socket" -p "$PG_PORT" -t 5; }
query() { "$bin/psql" -XAtq -h "$socket" -p "$PG_PORT" -d postgres -c "$PG_SQL"; }

installed=false; [ -x "$bin/postgres" ] && installed=true
cluster_exists=false; data_directory=
if [ -d "$conf_dir" ]; then
  cluster_exists=true
  data_directory=$(sed -n "s/^[[:space:]]*data_directory[[:space:]]*=\{0,1\}[[:space:]]*'\([^']*\)'.*/\1/p" \
    "$conf_dir/postgresql.conf" 2>/dev/null | tail -n 1)
  [ -n "$data_directory" ] || data_directory=/var/lib/postgresql/$PG_VERSION/$PG_CLUSTER
fi

server=null error=
if $installed && $cluster_exists && accepting; then
  if out=$(query 2>/dev/null) && [ -n "$out" ]; then
    server=$out
  elif accepting; then  # still up, so this is no shutdown race: report psql's reason
    error=$(query 2>&1 >/dev/null | head -c 2000)
    [ -n "$error" ] || error="psql printed nothing"
  fi
fi

has_data=false standby_signal=false controldata=null backup_label=null clone_marker=null
[ -f "$PG_CLONE_MARKER" ] && clone_marker=$(json_str "$(head -n 1 -- "$PG_CLONE_MARKER" | head -c 100)")
if [ -n "$data_directory" ]; then
  [ -f "$data_directory/PG_VERSION" ] && has_data=true
  [ -e "$data_directory/standby.signal" ] && standby_signal=true
  [ -f "$data_directory/backup_label" ] && \
    backup_label=$(json_str "$(sed -n 's/^LABEL: //p' -- "$data_directory/backup_label" 2>/dev/null | head -n 1 | head -c 200)")
  if [ "$server" = null ] && $has_data && [ -x "$bin/pg_controldata" ]; then
    control=$("$bin/pg_controldata" -D "$data_directory" 2>/dev/null)
    sysid=$(printf '%s\n' "$control" | sed -n 's/^Database system identifier:[[:space:]]*\([0-9]\{1,\}\)$/\1/p')
    tli=$(printf '%s\n' "$control" | sed -n "s/^Latest checkpoint's TimeLineID:[[:space:]]*\([0-9]\{1,\}\)$/\1/p")
    controldata=$(printf '{"system_identifier":%s,"timeline":%s}' "$(json_str "$sysid")" "${tli:-null}")
  fi
fi

printf '{"installed":%s,"cluster_exists":%s,"data_directory":%s,"has_data":%s,"standby_signal":%s,'\
'"controldata":%s,"server":%s,"error":%s,"settings_requested":%s,"clone_marker":%s,"backup_label":%s}\n' \
  "$installed" "$cluster_exists" "$(json_str "$data_directory")" "$has_data" "$standby_signal" \
  "$controldata" "$server" "$(json_str "$error")" "$PG_SETTINGS_JSON" "$clone_marker" "$backup_label"
exit 0
"""


def _names(kind: str, values: Iterable[str], pattern: re.Pattern[str]) -> list[str]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"PgState: {kind} must be a list of names, not {values!r}")
    names = list(values)
    for value in names:
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(
                f"PgState: {kind} name {value!r} is not a plain lower-case identifier "
                f"(expected {pattern.pattern})"
            )
    return sorted(set(names))


def _sql_array(names: list[str]) -> str:
    # safe: every name matched a pattern without quotes, commas or braces
    return "ARRAY[" + ", ".join(f"'{n}'" for n in names) + "]::text[]"


def _empty_state(settings: Iterable[str] = ()) -> PgStateDict:
    return {
        "installed": False,
        "cluster_exists": False,
        "data_directory": None,
        "running": False,
        "in_recovery": None,
        "standby_signal": False,
        "system_identifier": None,
        "timeline": None,
        "lsn": {"current": None, "receive": None, "replay": None},
        "primary_conninfo": None,
        "wal_receiver": None,
        "replication": [],
        "pending_restart": [],
        "settings": {name: None for name in settings},
        "archiver": None,
        "roles": None,
        "pristine": None,
        "clone_marker": None,
        "backup_label": None,
    }


# -- strict readers: anything of the wrong type is garbage -> FactProcessError ---------------


def _get(doc: object, key: str, kinds: tuple[type, ...], where: str, nullable: bool = True) -> Any:
    if not isinstance(doc, dict):
        raise FactProcessError(f"PgState: {where} is not a JSON object: {doc!r:.200}")
    if key not in doc:
        raise FactProcessError(f"PgState: {where} has no {key!r}")
    value = doc[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in kinds:  # bool is an int subclass
        raise FactProcessError(f"PgState: {where}.{key} = {value!r} is not {kinds}")
    if not isinstance(value, kinds):
        raise FactProcessError(f"PgState: {where}.{key} = {value!r:.200} is not {kinds}")
    return value


def _int(doc: object, key: str, where: str) -> int | None:
    value = _get(doc, key, (int, float), where)
    if value is None:
        return None
    try:
        number = int(value)
    except (ValueError, OverflowError):  # NaN, Infinity
        number = None
    if number is None or value != number:
        raise FactProcessError(f"PgState: {where}.{key} = {value!r} is not an integer")
    return number


def _str(doc: object, key: str, where: str) -> str | None:
    return _get(doc, key, (str,), where)


def _bool(doc: object, key: str, where: str, nullable: bool = False) -> Any:
    return _get(doc, key, (bool,), where, nullable=nullable)


def _wal_receiver(row: object) -> WalReceiver | None:
    if row is None:
        return None
    where = "server.wal_receiver"
    return {
        "status": _str(row, "status", where),
        "sender_host": _str(row, "sender_host", where),
        "sender_port": _int(row, "sender_port", where),
        "received_tli": _int(row, "received_tli", where),
    }


def _replication(rows: object) -> list[ReplicationRow]:
    if not isinstance(rows, list):
        raise FactProcessError(f"PgState: server.replication is not a list: {rows!r:.200}")
    where = "server.replication[]"
    return [
        {
            "application_name": _str(row, "application_name", where),
            "client_addr": _str(row, "client_addr", where),
            "state": _str(row, "state", where),
            "sync_priority": _int(row, "sync_priority", where),
            "sync_state": _str(row, "sync_state", where),
            "replay_lag_bytes": _int(row, "replay_lag_bytes", where),
            "flush_lag_bytes": _int(row, "flush_lag_bytes", where) if "flush_lag_bytes" in row else None,
        }
        for row in rows
    ]


def _archiver(row: object) -> Archiver | None:
    if row is None:
        return None
    where = "server.archiver"
    return {
        "archived_count": _int(row, "archived_count", where),
        "failed_count": _int(row, "failed_count", where),
        "last_archived_wal": _str(row, "last_archived_wal", where),
        "last_failed_wal": _str(row, "last_failed_wal", where),
    }


def _roles(roles: object) -> dict[str, Role]:
    if not isinstance(roles, dict):
        raise FactProcessError(f"PgState: server.roles is not an object: {roles!r:.200}")
    return {
        name: {
            "replication": _bool(role, "replication", f"server.roles.{name}"),
            "login": _bool(role, "login", f"server.roles.{name}"),
            "password": _str(role, "password", f"server.roles.{name}"),
            # Recordings made before this key existed lack it: unknown, not False.
            "reads_all_stats": role.get("reads_all_stats"),
            "can_rewind": role.get("can_rewind"),
        }
        for name, role in sorted(roles.items())
    }


def _string_map(values: object, where: str) -> dict[str, str | None]:
    if not isinstance(values, dict):
        raise FactProcessError(f"PgState: {where} is not an object: {values!r:.200}")
    return {name: _str(values, name, where) for name in sorted(values)}


def _string_list(values: object, where: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FactProcessError(f"PgState: {where} is not a list of names: {values!r:.200}")
    return sorted(values)


class PgState(FactBase[PgStateDict]):
    """
    The state of one PostgreSQL cluster on a host, in one round trip (docs/architecture.md).

    + version: PostgreSQL major version (int, 13 or later)
    + cluster: Debian cluster name (``main``)
    + port: the port the cluster listens on (int)
    + roles: role names to report from pg_authid (``roles`` key); all others are left out
    + settings: GUC names whose current value (pg_settings.setting) to report (``settings``)

    Call it as the postgres OS user, over sudo::

        host.get_fact(PgState, version=15, cluster="main", port=5432, roles=["replicator"],
                      settings=["wal_level"], _sudo=True, _sudo_user="postgres")

    Inside an operation the fact inherits the operation's global arguments, so pass
    ``_sudo=True, _sudo_user="postgres"`` there too unless the operation already runs so. Run
    as another user against a running server, it fails the host with psql's reason.

    When the server does not accept connections (not installed, no cluster, stopped, starting
    up, shutting down): ``running`` is False; ``system_identifier`` and ``timeline`` (the latest
    checkpoint's) come from pg_controldata; ``in_recovery`` is ``standby_signal`` when the data
    directory holds a cluster (PG_VERSION), else None; ``settings`` maps every asked name to None;
    ``primary_conninfo``, ``roles``, ``archiver``, ``wal_receiver``, LSNs and ``pristine`` are
    None (unknown), ``replication`` and ``pending_restart`` are empty. When running,
    ``primary_conninfo`` is '' if unset, ``roles`` holds only the asked roles that exist,
    ``settings`` maps an unknown GUC name to None.

    ``pristine`` (None when not running) is True when nothing has been done to the cluster yet:
    it is a running primary (not in recovery) on timeline 1, its only databases are template0,
    template1 and postgres, its only roles are the built-in ones (OID below 16384: the bootstrap
    superuser and the pg_* roles) plus those named in ``roles``, and pg_stat_archiver's
    archived_count is 0. A running standby is never pristine.

    ``clone_marker``: the first line of an interrupted clone's marker (planner.paths.
    clone_marker_path), None without one. ``backup_label``: the LABEL of the data directory's
    backup_label (a base backup copied there and never run), None without one. Both are read
    whether the server runs or not.
    """

    shell_executable = "bash"

    @staticmethod
    def default() -> PgStateDict:
        """What a host without PostgreSQL (or without the postgres OS user) reports."""
        return _empty_state()

    def command(self, version: int, cluster: str, port: int, roles: Iterable[str] = (),
                settings: Iterable[str] = ()) -> str:
        if isinstance(version, bool) or not isinstance(version, int) or not 13 <= version < 100:
            raise ValueError(f"PgState: version must be an int major version >= 13, not {version!r}")
        if not isinstance(cluster, str) or not _CLUSTER_RE.match(cluster):
            raise ValueError(f"PgState: cluster must be a Debian cluster name, not {cluster!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"PgState: port must be an int in 1..65535, not {port!r}")
        role_names = _names("roles", roles, _ROLE_RE)
        setting_names = _names("settings", settings, _SETTING_RE)

        sql = _SQL.substitute(settings=_sql_array(setting_names), roles=_sql_array(role_names))
        header = "".join(
            f"{var}={shlex.quote(str(value))}\n"
            for var, value in (
                ("PG_VERSION", version),
                ("PG_CLUSTER", cluster),
                ("PG_PORT", port),
                ("PG_SOCKET", SOCKET_DIRECTORY),
                ("PG_CLONE_MARKER", clone_marker_path(version, cluster)),
                ("PG_SETTINGS_JSON", json.dumps(setting_names)),
                ("PG_SQL", sql),
            )
        )
        return header + _SCRIPT

    def process(self, output: Iterable[str]) -> PgStateDict:
        text = "\n".join(output).strip()
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise FactProcessError(f"PgState: output is not JSON ({e}): {text!r:.300}") from None
        if not isinstance(raw, dict):
            raise FactProcessError(f"PgState: output is not a JSON object: {text!r:.300}")

        error = _str(raw, "error", "output")
        if error:
            raise FactProcessError(
                "PgState: the server accepts connections but the state query failed: "
                f"{error.strip()} (run the fact as the postgres OS user: "
                "_sudo=True, _sudo_user='postgres')"
            )

        state = _empty_state(_string_list(raw.get("settings_requested", []), "settings_requested"))
        state["installed"] = _bool(raw, "installed", "output")
        state["cluster_exists"] = _bool(raw, "cluster_exists", "output")
        state["data_directory"] = _str(raw, "data_directory", "output")
        state["standby_signal"] = _bool(raw, "standby_signal", "output")
        # Recordings made before these keys existed lack them: none found.
        state["clone_marker"] = _str(raw, "clone_marker", "output") if "clone_marker" in raw else None
        state["backup_label"] = _str(raw, "backup_label", "output") if "backup_label" in raw else None
        has_data = _bool(raw, "has_data", "output")

        server = _get(raw, "server", (dict,), "output")
        if server is None:
            control = _get(raw, "controldata", (dict,), "output")
            if control is not None:
                state["system_identifier"] = _str(control, "system_identifier", "controldata")
                state["timeline"] = _int(control, "timeline", "controldata")
            state["in_recovery"] = state["standby_signal"] if has_data else None
            return state

        where = "server"
        lsn = _get(server, "lsn", (dict,), where, nullable=False)
        state.update(
            {
                "running": True,
                "data_directory": _str(server, "data_directory", where),
                "standby_signal": _bool(server, "standby_signal", where),
                "in_recovery": _bool(server, "in_recovery", where),
                "system_identifier": _str(server, "system_identifier", where),
                "timeline": _int(server, "timeline", where),
                "lsn": Lsn(current=_int(lsn, "current", "server.lsn"), receive=_int(lsn, "receive", "server.lsn"),
                           replay=_int(lsn, "replay", "server.lsn")),
                "primary_conninfo": _str(server, "primary_conninfo", where) or "",
                "wal_receiver": _wal_receiver(_get(server, "wal_receiver", (dict,), where)),
                "replication": _replication(_get(server, "replication", (list,), where, False)),
                "pending_restart": _string_list(server.get("pending_restart"), "server.pending_restart"),
                "settings": _string_map(_get(server, "settings", (dict,), where, False), "server.settings"),
                "archiver": _archiver(_get(server, "archiver", (dict,), where)),
                "roles": _roles(_get(server, "roles", (dict,), where, False)),
                "pristine": _bool(server, "pristine", where, nullable=True),
            }
        )
        return state
