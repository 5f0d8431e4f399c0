"""systemd units running and enabled (or neither), as pyinfra's systemd.service does it, with its
facts read through the run's snapshot (operations.run_snapshot): a rerun asks nothing more."""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from operations.run_snapshot import read_fact


def unit_name(service: str) -> str:
    """systemd.service's naming: a bare name is a .service."""
    return service if "." in service else f"{service}.service"


@operation()
def ensure_unit(service: str, running: bool, enabled: bool):
    """
    The unit started (or stopped) and enabled (or disabled) on boot.

    + service: the unit (a bare name means NAME.service)
    + running: whether it runs
    + enabled: whether it starts on boot
    """
    unit = unit_name(service)
    is_running = bool(read_fact(host, SystemdStatus, services=[unit]).get(unit))
    is_enabled = bool(read_fact(host, SystemdEnabled, services=[unit]).get(unit))
    done = []
    if running != is_running:
        done.append("start" if running else "stop")
        yield StringCommand("systemctl", done[-1], unit)
    if enabled != is_enabled:
        done.append("enable" if enabled else "disable")
        yield StringCommand("systemctl", done[-1], unit)
    if not done:
        host.noop(f"{unit} is {'running' if running else 'stopped'} and {'enabled' if enabled else 'disabled'}")
