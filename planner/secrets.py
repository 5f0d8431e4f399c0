"""Secrets: from the environment first, then from a KEY=VALUE file (pure: the caller reads both).

Error messages name the secret and how to provide it, never its value.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from planner.problems import ProblemsError

REPLICATION_PASSWORD = "PGCASCADE_REPLICATION_PASSWORD"
HEARTBEAT_KEY = "PGCASCADE_HEARTBEAT_KEY"
ALL_SECRETS = (REPLICATION_PASSWORD, HEARTBEAT_KEY)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# In double quotes, as in sh, a backslash escapes only these.
_DOUBLE_QUOTE_ESCAPABLE = '\\"$`'


class SecretsError(ProblemsError):
    """One or more secrets are missing or unusable; `problems` lists each one."""


def _unquote(raw: str, where: str) -> str:
    """The value part of a line: bare (trimmed), 'single' (literal) or "double" (sh escapes)."""
    raw = raw.strip()
    if not raw or raw[0] not in "'\"":
        return raw
    quote, index = raw[0], 1
    chars: list[str] = []
    while index < len(raw):
        char = raw[index]
        if char == quote:
            rest = raw[index + 1:].strip()
            if rest and not rest.startswith("#"):
                raise SecretsError([f"{where}: text after the closing quote (remove it)"])
            return "".join(chars)
        escaped = index + 1 < len(raw) and raw[index + 1] in _DOUBLE_QUOTE_ESCAPABLE
        if quote == '"' and char == "\\" and escaped:
            index += 1
            char = raw[index]
        chars.append(char)
        index += 1
    raise SecretsError([f"{where}: unterminated {quote} quote (close it on the same line)"])


def parse_secrets_file(text: str, source: str = "secrets file") -> dict[str, str]:
    """Parse KEY=VALUE lines: blank lines and # comments ignored, optional `export `, quotes.

    A bare value is taken as is (a `#` inside it is part of the value: passwords may hold one).
    Raises SecretsError for malformed or repeated keys, naming the line but not the value.
    """
    values: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        where = f"{source} line {number}"
        key, equals, raw_value = stripped.partition("=")
        key = key.strip()
        if not equals or not _KEY.match(key):
            problems.append(f"{where}: expected KEY=VALUE (e.g. {REPLICATION_PASSWORD}=...)")
            continue
        if key in values:
            problems.append(f"{where}: {key} is set a second time (keep one line)")
            continue
        try:
            values[key] = _unquote(raw_value, where)
        except SecretsError as error:
            problems += error.problems
    if problems:
        raise SecretsError(problems)
    return values


def _how_to_provide(name: str, file_path: str | None, file_read: bool) -> str:
    if file_path is None:
        return (
            f"export {name}=..., or set secrets_file in the inventory to a 0600 file "
            f"with a line {name}=..."
        )
    if not file_read:
        return f"export {name}=..., or create {file_path} (mode 0600) with a line {name}=..."
    return f"export {name}=..., or add a line {name}=... to {file_path}"


def _value_problem(name: str, value: str) -> str | None:
    """Values that would break the files they end up in."""
    if "\n" in value or "\r" in value or "\0" in value:
        return f"{name} contains a newline or NUL character (choose a single-line value)"
    # authkeys reads `1 sha1 <key>` as whitespace-separated words.
    if name == HEARTBEAT_KEY and re.search(r"\s", value):
        return f"{name} contains whitespace (heartbeat's authkeys takes a single word)"
    return None


def resolve_secrets(
    required: list[str],
    environ: Mapping[str, str],
    file_values: Mapping[str, str] | None,
    file_path: str | None,
) -> dict[str, str]:
    """Each required secret from the environment, else from the file's values.

    `file_values` is None when there is no file (or it could not be read); `file_path` is where
    the inventory says it lives (for the messages). Raises SecretsError naming every missing,
    empty or unusable secret and how to provide it.
    """
    resolved: dict[str, str] = {}
    problems: list[str] = []
    for name in required:
        if name in environ:
            value, origin = environ[name], "the environment"
        elif file_values is not None and name in file_values:
            value, origin = file_values[name], file_path or "the secrets file"
        else:
            problems.append(
                f"{name} is not set ({_how_to_provide(name, file_path, file_values is not None)})"
            )
            continue
        if value == "":
            problems.append(f"{name} is empty in {origin} (give it a value)")
            continue
        if problem := _value_problem(name, value):
            problems.append(f"{problem}; it came from {origin}")
            continue
        resolved[name] = value
    if problems:
        raise SecretsError(problems)
    return resolved

