"""Everything a host's registry entries need, read in one ssh round trip (as root).

Paths (type, mode, owner, group, sha256 of regular files), systemd units (enabled, active), the
postgres user's authorized_keys and public key, heartbeat (pid, seconds running, resource state),
the VIP on an interface, and from PostgreSQL (as postgres, one psql query): each managed
setting's value and source, every file line and per-role/per-database value that sets one,
recovery, the archiver and the current WAL file. Line records, parsed into plain data.
"""
from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

_SQL = """
select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'settings', (select json_object_agg(name, json_build_object('setting', setting, 'source', source,
                 'sourcefile', sourcefile, 'sourceline', sourceline, 'context', context,
                 'pending_restart', pending_restart))
               from pg_settings where name = any(string_to_array(:'names', ','))),
  'file_settings', coalesce((select json_agg(json_build_object('name', name, 'setting', setting,
                 'sourcefile', sourcefile, 'sourceline', sourceline, 'applied', applied, 'error', error))
               from pg_file_settings where name = any(string_to_array(:'names', ','))), '[]'),
  'role_settings', coalesce((select json_agg(json_build_object('role', r.rolname, 'database', d.datname,
                 'config', s.setconfig))
               from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
               left join pg_database d on d.oid = s.setdatabase), '[]'),
  'roles', coalesce((select json_object_agg(rolname, json_build_object('replication', rolreplication,
                 'login', rolcanlogin, 'reads_all_stats', pg_has_role(oid, 'pg_read_all_stats', 'member'),
                 'can_rewind', has_function_privilege(oid, 'pg_catalog.pg_read_binary_file(text)', 'execute')))
               from pg_roles where rolname = :'role'), '{}'),
  'archiver', (select json_build_object('archived_count', archived_count, 'failed_count', failed_count,
                 'last_archived_wal', last_archived_wal, 'last_archived_time', extract(epoch from last_archived_time),
                 'last_failed_wal', last_failed_wal, 'last_failed_time', extract(epoch from last_failed_time))
               from pg_stat_archiver),
  'current_wal', case when pg_is_in_recovery() then null else pg_walfile_name(pg_current_wal_lsn()) end,
  'conf_load_time', extract(epoch from pg_conf_load_time()),
  'now', extract(epoch from now()))
"""


def path_records(paths: list[str]) -> str:
    """Shell: for the existing paths, an `M<TAB>path<TAB>%F<TAB>mode owner group` line (one stat)
    and for the regular files a `D<TAB>sha256<TAB>path` line (one sha256sum): a few processes
    whatever the number of paths (a loop of stat and sha256sum per path took over a second on
    a loaded host)."""
    return "\n".join([
        "set --",
        f"for p in {' '.join(shlex.quote(p) for p in paths)}; do [ -e \"$p\" ] && set -- \"$@\" \"$p\"; done",
        "if [ $# -gt 0 ]; then",
        "  stat -L --printf 'M\\t%n\\t%F\\t%a %U %G\\n' -- \"$@\" 2>/dev/null",
        "  for p; do [ -f \"$p\" ] && printf '%s\\0' \"$p\"; done | xargs -0 -r sha256sum -- 2>/dev/null"
        " | sed 's/^\\([0-9a-f]\\{64\\}\\)  /D\\t\\1\\t/'",
        "fi",
    ])


def unit_records(units: list[str]) -> str:
    """Shell: a `U<TAB>unit<TAB>enabled<TAB>active` line per unit (is-enabled's and is-active's
    words: systemctl show's UnitFileState and ActiveState), from one systemctl for all of them;
    its blocks come in the order of the units asked."""
    if not units:
        return ":"
    names = " ".join(shlex.quote(u) for u in units)
    return (f"systemctl show -p UnitFileState,ActiveState -- {names} 2>/dev/null | awk -v units={shlex.quote(' '.join(units))} "
            "'BEGIN {n = split(units, u, \" \"); i = 1} /^$/ {i++; next} "
            "/^UnitFileState=/ {e[i] = substr($0, 15)} /^ActiveState=/ {a[i] = substr($0, 13)} "
            "END {for (j = 1; j <= n; j++) printf \"U\\t%s\\t%s\\t%s\\n\", u[j], e[j], a[j]}'")


_STAT_TYPES = {"directory": "directory", "regular file": "file", "regular empty file": "file"}


class PathStates(FactBase):
    """
    Type, mode, owner, group and sha256 of each existing path (as root), in one round trip:

    .. code:: python

        {path: {"type": "file"|"directory"|"other", "mode": "0644", "owner": str, "group": str,
                "sha256": str|None}}   # absent paths left out
    """

    def command(self, paths: list[str]) -> str:
        return path_records(paths) + "\ntrue"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return parse_managed_state(output)["paths"]


class ManagedState(FactBase):
    """
    The state of a host's managed things (run as root):

    .. code:: python

        {"paths": {path: {"type": "file"|"directory"|"other", "mode": "644", "owner": str,
                          "group": str, "sha256": str|None}},          # absent paths left out
         "units": {unit: {"enabled": str, "active": str}},
         "authorized_keys": [str] | None, "public_key": str | None,
         "heartbeat": {"pid": int, "seconds": int, "resources": str|None} | None,
         "vip": bool,                                                   # the VIP is on an interface
         "now": float|None,                                             # the host's clock
         "failover_view": dict|None,                                    # ha-watch's can-fail-over.json
         "postgres": {... the JSON of the query above ...} | None}      # None: not answering
    """

    def command(self, paths: list[str], units: list[str], setting_names: list[str], port: int, role: str,
                home: str, vip: str = "", failover_view: str = "") -> str:
        if not isinstance(port, int):
            raise ValueError("port must be an int")
        q = shlex.quote
        sql = " ".join(_SQL.split())
        psql = (f"printf '%s\\n' {q(sql)} | (cd / && timeout 10 runuser -u postgres -- psql -XAtq -p {port} "
                f"-d postgres -v names={q(','.join(setting_names))} -v role={q(role)} -f - 2>/dev/null)")
        return "\n".join([
            path_records(paths),
            unit_records(units),
            f"if [ -f {q(home)}/.ssh/authorized_keys ]; then echo A; sed 's/^/K\\t/' {q(home)}/.ssh/authorized_keys; fi",
            f"[ -f {q(home)}/.ssh/id_ed25519.pub ] && sed 's/^/Q\\t/' {q(home)}/.ssh/id_ed25519.pub | head -n 1",
            "pid=$(tr -dc 0-9 < /run/heartbeat.pid 2>/dev/null)",
            'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then',
            "  printf 'H\\t%s\\t%s\\t%s\\n' \"$pid\" \"$(ps -o etimes= -p \"$pid\" | tr -d ' ')\""
            " \"$(timeout 2 cl_status rscstatus 2>/dev/null)\"",
            "fi",
            f"[ -n {q(vip)} ] && ip -4 -o addr show | grep -q \" {vip}/\" && echo V",
            "echo \"T\t$(date +%s)\"",
            f"[ -n {q(failover_view)} ] && [ -f {q(failover_view)} ] && "
            f"printf 'C\\t%s\\n' \"$(tr -d '\\n' < {q(failover_view)})\"",
            f"out=$({psql}) && [ -n \"$out\" ] && printf 'S\\t%s\\n' \"$out\"",
            "true",
        ])

    @staticmethod
    def default() -> dict:
        return {"paths": {}, "units": {}, "authorized_keys": None, "public_key": None, "heartbeat": None,
                "vip": False, "now": None, "failover_view": None, "postgres": None}

    def process(self, output: list[str]) -> dict:
        return parse_managed_state(output)


def parse_managed_state(output: list[str]) -> dict:
    """The fact's line records -> its dict (see ManagedState)."""
    result = ManagedState.default()
    for line in output:
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        try:
            if kind == "M":
                path, ftype, stat = fields
                mode, owner, group = stat.split()
                ptype = _STAT_TYPES.get(ftype, "other")
                digest = result["paths"].get(path, {}).get("sha256")
                result["paths"][path] = {"type": ptype, "mode": mode.zfill(4), "owner": owner, "group": group,
                                         "sha256": digest if ptype == "file" else None}
            elif kind == "D":
                digest, path = fields
                result["paths"].setdefault(path, {})["sha256"] = digest
            elif kind == "P":
                path, ptype, stat, digest = fields
                mode, owner, group = stat.split()
                result["paths"][path] = {"type": ptype, "mode": mode.zfill(4), "owner": owner, "group": group,
                                         "sha256": None if digest == "-" else digest}
            elif kind == "U":
                result["units"][fields[0]] = {"enabled": fields[1], "active": fields[2]}
            elif kind == "A":
                result["authorized_keys"] = []
            elif kind == "K":
                result["authorized_keys"].append(rest)
            elif kind == "Q":
                result["public_key"] = rest.strip()
            elif kind == "H":
                result["heartbeat"] = {"pid": int(fields[0]), "seconds": int(fields[1] or 0),
                                       "resources": (fields[2] or None) if len(fields) > 2 else None}
            elif kind == "V":
                result["vip"] = True
            elif kind == "T":
                result["now"] = float(rest)
            elif kind == "C":
                result["failover_view"] = json.loads(rest)
            elif kind == "S":
                result["postgres"] = json.loads(rest)
        except (ValueError, IndexError, AttributeError) as error:
            raise FactProcessError(f"ManagedState: cannot parse {line!r}: {error}") from error
    return result


class HeartbeatConfigState(FactBase):
    """
    When heartbeat last read its files, against their change times (as root):

    .. code:: python

        {"running": bool, "started": float|None,   # epoch of the daemon's start
         "reread": float|None,                      # epoch of our last `heartbeat -r` (stamp file)
         "mtimes": {path: float}, "holds_vip": bool,
         "sha256": {path: str}, "started_sha256": {path: str}}  # the file, and heartbeat's copy at start
    """

    def command(self, files: list[str], stamp: str, vip: str = "", started_copy_dir: str = "") -> str:
        q = shlex.quote
        return "\n".join([
            f"for f in {' '.join(q(f) for f in files)}; do [ -f \"$f\" ] && echo \"sha $(sha256sum < \"$f\" | cut -c1-64) $f\";"
            f" c={q(started_copy_dir)}/$(basename \"$f\"); [ -n {q(started_copy_dir)} ] && [ -f \"$c\" ] &&"
            " echo \"started_sha $(sha256sum < \"$c\" | cut -c1-64) $f\"; done",
            "pid=$(tr -dc 0-9 < /run/heartbeat.pid 2>/dev/null)",
            'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then'
            ' echo "started $(( $(date +%s) - $(ps -o etimes= -p "$pid" | tr -d " ") ))"; fi',
            # Sub-second, like the files': a file written in the same second as the stamp is not newer.
            f"[ -e {q(stamp)} ] && echo \"reread $(stat -c %.9Y {q(stamp)})\"",
            f"for f in {' '.join(q(f) for f in files)}; do [ -e \"$f\" ] && echo \"mtime $(stat -c %.9Y \"$f\") $f\"; done",
            f"[ -n {q(vip)} ] && ip -4 -o addr show | grep -q \" {vip}/\" && echo vip",
            "true",
        ])

    @staticmethod
    def default() -> dict:
        return {"running": False, "started": None, "reread": None, "mtimes": {}, "holds_vip": False,
                "sha256": {}, "started_sha256": {}}

    def process(self, output: list[str]) -> dict:
        result = self.default()
        for line in output:
            word, _, rest = line.partition(" ")
            if word == "started":
                result.update(running=True, started=float(rest))
            elif word == "reread":
                result["reread"] = float(rest)
            elif word == "mtime":
                mtime, _, path = rest.partition(" ")
                result["mtimes"][path] = float(mtime)
            elif word in ("sha", "started_sha"):
                digest, _, path = rest.partition(" ")
                result["sha256" if word == "sha" else "started_sha256"][path] = digest
            elif word == "vip":
                result["holds_vip"] = True
        return result
