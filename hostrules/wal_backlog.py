"""A child that does not take its WAL files must never hold the archiver (pure, stdlib only).

archive-wal ships each WAL file into every child's archive. PostgreSQL keeps a file in pg_wal
until archive_command succeeds, so one dead child used to make pg_wal grow until the disk filled
(archive_mode = always on the cascade), and then the master's commits hung.

Now, when a child cannot take a file, archive-wal keeps a copy for it in a bounded backlog
(one directory per child) and succeeds, so pg_wal stays bounded. When the child answers again,
its backlog is shipped first, oldest first: that is its catch-up path. When the backlog would
exceed its budget, the backlog is dropped and the child is named for rebuild (a marker file
saying since which WAL file it misses WAL); from then on it gets no files until it is rebuilt
(tasks/rebuild.py clears the marker). A child named for rebuild may still catch up by
streaming, if its upstream's pg_wal still holds what it needs (wal_keep_size).

    decide(backlog_bytes, file_bytes, max_bytes) -> "keep" | "rebuild"
    report(directory) -> {child: {"files", "bytes", "oldest", "named_for_rebuild"}}

Command line (archive-wal's entry points):

    python3 -m hostrules.wal_backlog decide BACKLOG_BYTES FILE_BYTES MAX_BYTES   # prints keep|rebuild
    python3 -m hostrules.wal_backlog report DIRECTORY                           # JSON
"""
from __future__ import annotations

import json
import os
import sys

KEEP, REBUILD = "keep", "rebuild"
MARKER_SUFFIX = ".rebuild"


def decide(backlog_bytes: int, file_bytes: int, max_bytes: int) -> str:
    """Keep the file for the child while its backlog stays within max_bytes; else name it for
    rebuild (its backlog is then dropped: it frees the space, and the child needs a rebuild
    anyway unless it streams what it misses)."""
    if backlog_bytes < 0 or file_bytes < 0 or max_bytes < 0:
        raise ValueError("sizes are never negative")
    return KEEP if backlog_bytes + file_bytes <= max_bytes else REBUILD


def report(directory: str) -> dict:
    """The backlog per child (its address), as data: how many files and bytes wait for it, the
    oldest, and why it is named for rebuild (None when it is not)."""
    children: dict[str, dict] = {}
    try:
        entries = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {}
    for entry in entries:
        path = os.path.join(directory, entry)
        if entry.endswith(MARKER_SUFFIX) and os.path.isfile(path):
            child = entry[: -len(MARKER_SUFFIX)]
            with open(path, encoding="utf-8", errors="replace") as marker:
                children.setdefault(child, _empty())["named_for_rebuild"] = marker.read().strip() or "yes"
        elif os.path.isdir(path) and not entry.startswith("."):
            files = sorted(f for f in os.listdir(path) if not f.startswith("."))
            info = children.setdefault(entry, _empty())
            info["files"] = len(files)
            info["bytes"] = sum(os.path.getsize(os.path.join(path, f)) for f in files)
            info["oldest"] = files[0] if files else None
    return children


def _empty() -> dict:
    return {"files": 0, "bytes": 0, "oldest": None, "named_for_rebuild": None}


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "decide":
        print(decide(int(argv[1]), int(argv[2]), int(argv[3])))
        return 0
    if len(argv) == 2 and argv[0] == "report":
        print(json.dumps(report(argv[1]), sort_keys=True))
        return 0
    print(__doc__.split("Command line", 1)[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
