"""The shared decision rules (the stdlib-only `hostrules` package) on every PostgreSQL host, where
the on-host scripts run them with python3 (planner.settings.HOSTRULES_DIRECTORY)."""
from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.context import Context
from planner.settings import HOSTRULES_DIRECTORY

SOURCE = Path(__file__).resolve().parents[1] / "hostrules"


def hostrules_modules() -> list[str]:
    """The package's module files, sorted (what the hosts get)."""
    return sorted(path.name for path in SOURCE.glob("*.py"))


@deploy("Shared decision rules")
def install_hostrules(ctx: Context) -> None:
    files.directory(name=HOSTRULES_DIRECTORY, path=HOSTRULES_DIRECTORY, user="root", group="root", mode="755")
    for module in host.loop(hostrules_modules()):
        files.put(name=f"{HOSTRULES_DIRECTORY}/{module}", src=str(SOURCE / module),
                  dest=f"{HOSTRULES_DIRECTORY}/{module}", user="root", group="root", mode="644")
