"""Has the running server applied its configuration files? (reload or restart, from the facts)"""
from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from facts.pg_state import PSQL_DEADLINE_ENV

# pg_file_settings marks a changed postmaster-context setting with this error before a restart,
# and a removed one with "parameter "NAME" cannot be changed without restarting the server".
NEEDS_RESTART = "setting could not be applied"
REMOVED_NEEDS_RESTART = "cannot be changed without restarting the server"

_QUERY = f"""
select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'conf_load_time', extract(epoch from pg_conf_load_time()),
  'unapplied', coalesce((select json_agg(distinct n order by n) from (
                           select coalesce(name, substring(error from 'parameter "([^"]+)"')) as n
                           from pg_file_settings where error = '{NEEDS_RESTART}'
                              or error like '%{REMOVED_NEEDS_RESTART}') as u), '[]'),
  'file_errors', coalesce((select json_agg(format('%s line %s: %s', sourcefile, sourceline, error))
                           from pg_file_settings where error is not null and error <> '{NEEDS_RESTART}'
                             and error not like '%{REMOVED_NEEDS_RESTART}'), '[]'),
  'hba_errors', coalesce((select json_agg(format('pg_hba.conf line %s: %s', line_number, error))
                          from pg_hba_file_rules where error is not null), '[]'),
  'pending_restart', coalesce((select json_agg(name order by name) from pg_settings where pending_restart), '[]'))
"""


# Every read has a deadline: a server whose connections hang (a standby whose replay stopped while
# it held a lock that new sessions wait for) must not hang the deploy that reads this fact.
READ_DEADLINE_S = 15


class PgConfigState(FactBase):
    """
    Whether the server runs with what its files say, as the postgres OS user:

    .. code:: python

        {"running": bool, "in_recovery": bool|None, "files_mtime": float, "conf_load_time": float|None,
         "unapplied": [names needing a restart], "pending_restart": [names],
         "file_errors": [str], "hba_errors": [str]}
    """

    def command(self, port: int, files: list[str]) -> str:
        if not isinstance(port, int):
            raise ValueError("port must be an int")
        paths = " ".join(shlex.quote(f) for f in files)
        return (
            f"mtime=$(stat -c %.9Y {paths} 2>/dev/null | sort -n | tail -n 1); "
            f"server=$({PSQL_DEADLINE_ENV} timeout {READ_DEADLINE_S} psql -XAtq -p {port} -d postgres "
            f"-c {shlex.quote(_QUERY)} 2>/dev/null) || server=null; "
            'echo "{\\"files_mtime\\": ${mtime:-0}, \\"server\\": ${server:-null}}"'
        )

    @staticmethod
    def default() -> dict:
        return {"running": False, "in_recovery": None, "files_mtime": 0.0, "conf_load_time": None, "unapplied": [],
                "pending_restart": [], "file_errors": [], "hba_errors": []}

    def process(self, output: list[str]) -> dict:
        try:
            raw = json.loads("\n".join(output))
        except ValueError as error:
            raise FactProcessError(f"PgConfigState: not JSON: {error}") from error
        result = self.default()
        result["files_mtime"] = float(raw.get("files_mtime") or 0)
        server = raw.get("server")
        if server:
            result.update(running=True, in_recovery=server.get("in_recovery"), conf_load_time=float(server["conf_load_time"]),
                          unapplied=server["unapplied"], pending_restart=server["pending_restart"],
                          file_errors=server["file_errors"], hba_errors=server["hba_errors"])
        return result
