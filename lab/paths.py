"""Where the lab keeps its files. Overridable for tests and CI through the environment."""
from __future__ import annotations

import os
from pathlib import Path

# The base image is shared by every lab and survives `down` (it is a cache).
CACHE_DIR = Path(os.environ.get("PGCASCADE_LAB_CACHE", "/var/cache/pgcascade-lab"))
# Per-lab state: host disks (overlay upper dirs), keys, known_hosts, the lab's description.
STATE_ROOT = Path(os.environ.get("PGCASCADE_LAB_STATE", "/var/lib/pgcascade-lab"))
DEFAULT_LAB = os.environ.get("PGCASCADE_LAB", "demo")


def lab_dir(lab: str) -> Path:
    return STATE_ROOT / lab


def host_dir(lab: str, host: str) -> Path:
    return lab_dir(lab) / "hosts" / host


def lab_file(lab: str) -> Path:
    """The lab's description (JSON): what inventories/lab.py and the tests read."""
    return lab_dir(lab) / "lab.json"
