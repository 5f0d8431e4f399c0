"""The hostrules package's files on the controller (shipped by deploys/hostrules.py)."""
from __future__ import annotations

from pathlib import Path

from planner import registry

PACKAGE = Path(__file__).resolve().parents[1] / "hostrules"


def package_files() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def package_contents() -> dict[str, str]:
    """{file name: text} of the package (the registry's entries for it)."""
    return {path.name: path.read_text(encoding="utf-8") for path in package_files()}


def package_digest() -> str:
    """One digest of the package's files: ha-watch's and the cascade monitor's scripts carry it, so a
    new rule restarts them."""
    return registry.package_digest(package_contents())
