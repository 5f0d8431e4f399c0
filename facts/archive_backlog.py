"""The WAL files archive-wal keeps for children that did not take them (hostrules.wal_backlog),
as data: {child address: {"files", "bytes", "oldest", "named_for_rebuild"}}; {} when none."""
from __future__ import annotations

import json

from pyinfra.api import FactBase

from planner.settings import ARCHIVE_BACKLOG_DIRECTORY, LIB_DIRECTORY


class ArchiveBacklog(FactBase):
    def command(self) -> str:
        return (f"if [ -d {ARCHIVE_BACKLOG_DIRECTORY} ]; then PYTHONPATH={LIB_DIRECTORY} "
                f"python3 -s -m hostrules.wal_backlog report {ARCHIVE_BACKLOG_DIRECTORY}; else echo '{{}}'; fi")

    def process(self, output) -> dict:
        return json.loads("\n".join(output) or "{}")
