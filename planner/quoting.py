"""Quoting for postgresql.conf, libpq conninfo, .pgpass and the shell."""
from __future__ import annotations

import shlex
from collections.abc import Iterable

from planner.checks import _BARE_VALUE, _SAFE_CONNINFO_VALUE

# ---------------------------------------------------------------------------------------------
# Quoting
# ---------------------------------------------------------------------------------------------


def conf_quote(value: str) -> str:
    """Quote a postgresql.conf string value: backslashes and single quotes doubled.

    (The conf parser treats a backslash as an escape inside quotes, so both need escaping.)
    """
    if "\n" in value or "\r" in value:
        raise ValueError(f"postgresql.conf value {value!r} contains a line break")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def conf_value(value: str) -> str:
    """A postgresql.conf value: bare when both parsers take it unquoted (10, 512MB, on), else quoted."""
    return value if _BARE_VALUE.match(value) else conf_quote(value)


def conninfo_value(value: str) -> str:
    """Quote a libpq conninfo value when needed: 'it\\'s'."""
    if _SAFE_CONNINFO_VALUE.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(pairs: Iterable[tuple[str, str | int]]) -> str:
    """A libpq connection string from (key, value) pairs, in order, each value quoted when needed."""
    return " ".join(f"{key}={conninfo_value(str(value))}" for key, value in pairs)


def pgpass_escape(value: str) -> str:
    """Escape a .pgpass field: backslash and colon get a backslash."""
    if "\n" in value or "\r" in value:
        raise ValueError(".pgpass fields cannot contain a line break")
    return value.replace("\\", "\\\\").replace(":", "\\:")


def shell_quote(value: object) -> str:
    """Quote one word for a POSIX shell (unchanged when it is already safe)."""
    return shlex.quote(str(value))


def _percent_escape(value: str) -> str:
    """Escape % in a literal part of archive_command/restore_command/archive_cleanup_command."""
    return value.replace("%", "%%")


def _syncrep_name(name: str) -> str:
    """A standby name in synchronous_standby_names: double-quoted, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


