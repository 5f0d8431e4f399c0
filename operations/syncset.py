"""The synchronous-set record (hostrules.syncset) on the master: written when it does not say what
the master's synchronous_standby_names says."""
from __future__ import annotations

import json

from pyinfra import host, inventory
from pyinfra.api import StringCommand, operation
from pyinfra.facts.server import Command

from operations.run_snapshot import read_fact
from planner.settings import LIB_DIRECTORY, SYNCSET_PATH


def record_command() -> str:
    """Prints the host's synchronous-set record ({} when it has none)."""
    return f"cat {SYNCSET_PATH} 2>/dev/null || echo '{{}}'"


def _record(name: str) -> dict:
    raw = read_fact(inventory.get_host(name), Command, command=record_command(), _sudo=True,
                    _sudo_user="postgres") or "{}"
    try:
        return json.loads(raw)
    except ValueError:
        return {}


@operation()
def ensure_syncset_record(is_master: bool, setting: str, hosts: list):
    """
    Every host holds the same record, naming this master and its setting; else hostrules.syncset
    writes it (the next generation if the setting changed) here and on every reachable host (as
    postgres: its ssh trust).

    + is_master: this host is the master (other hosts: nothing to do)
    + setting: synchronous_standby_names as the deploy wrote it
    + hosts: every PostgreSQL host's inventory name
    """
    if not is_master:
        host.noop("the master writes the record")
        return
    record = _record(host.name)
    behind = [name for name in hosts if name != host.name and _record(name) != record]
    if record.get("primary") == host.name and record.get("setting") == setting and not behind:
        host.noop(f"generation {record.get('generation')} on every host: {host.name} waits for {setting or 'nobody'}")
        return
    yield StringCommand(f"cd / && env PYTHONPATH={LIB_DIRECTORY} python3 -m hostrules.syncset write --ssh-timeout 30")
