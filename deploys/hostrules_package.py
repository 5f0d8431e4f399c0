"""The hostrules package's files on the controller (shipped by deploys/hostrules.py)."""
from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hostrules"


def package_files() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def package_digest() -> str:
    """One digest of the package's files: ha-watch's script carries it, so a new rule restarts ha-watch."""
    digest = hashlib.sha256()
    for path in package_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
