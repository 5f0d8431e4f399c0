"""Reading pyinfra's CLI output: which operations changed which hosts."""
from __future__ import annotations

import re

_START = re.compile(r"^--> Starting operation: (.+?)\s*$")
_RESULT = re.compile(r"^\s+\[(\w+)\] (Success|Error|No changes|Skipped)")


def changes(output: str) -> set[tuple[str, str]]:
    """{(operation name, host)} for every operation that reported Success (changed something)."""
    found, current = set(), None
    for line in output.splitlines():
        if match := _START.match(line):
            current = match.group(1)
        elif (match := _RESULT.match(line)) and match.group(2) == "Success" and current:
            found.add((current, match.group(1)))
    return found


def started_any_operation(output: str) -> bool:
    return any(_START.match(line) for line in output.splitlines())
