"""The pgBackRest repository, read on the repository host as postgres (planner.backup_info)."""
from __future__ import annotations

import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from planner.backup import BACKUP_KINDS, PGBACKREST, RESULTS_DIRECTORY
from planner.backup_info import NOT_INSTALLED, NOW_MARK, RESULTS_MARK, empty_state, parse_repository_state


class BackupRepositoryState(FactBase):
    """
    The stanza's backups and archive (`pgbackrest info`), the last scheduled runs' results and
    the host's clock, in one round trip. Run it with _sudo_user=postgres.
    """

    def command(self, stanza: str) -> str:
        results = " ".join(
            f"[ -f {RESULTS_DIRECTORY}/{kind} ] && echo kind={kind} && cat {RESULTS_DIRECTORY}/{kind};"
            for kind in BACKUP_KINDS)
        return (
            f"cd / && if ! command -v {PGBACKREST} >/dev/null; then echo {NOT_INSTALLED}; exit 0; fi; "
            f"{PGBACKREST} --stanza={shlex.quote(stanza)} --output=json --log-level-console=off info "
            f"2>/dev/null || echo '[]'; echo; echo {RESULTS_MARK}; {results} echo {NOW_MARK}; date +%s"
        )

    @staticmethod
    def default() -> dict:
        return empty_state()

    def process(self, output: list[str]) -> dict:
        try:
            return parse_repository_state(output)
        except ValueError as error:
            raise FactProcessError(f"cannot read the backup repository's state: {error}") from None
