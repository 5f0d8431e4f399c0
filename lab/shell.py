"""Running commands on the main machine, with errors that say what failed."""
from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created, with its directory) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
