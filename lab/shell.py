"""Running commands on the main machine, with errors that say what failed."""
from __future__ import annotations

import subprocess
import sys


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


def run(args: list[str], *, check: bool = True, quiet: bool = False, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, text=True, capture_output=True, **kwargs)
    if check and proc.returncode != 0:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr.strip()}")
    if not quiet and proc.returncode != 0 and proc.stderr:
        print(proc.stderr.strip(), file=sys.stderr)
    return proc


def ok(args: list[str]) -> bool:
    return subprocess.run(args, capture_output=True).returncode == 0


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)
