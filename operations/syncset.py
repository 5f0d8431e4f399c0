"""The synchronous-set record (hostrules.syncset) on the master: written when it does not say what
the master's synchronous_standby_names says."""
from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.facts.server import Command

from planner.settings import LIB_DIRECTORY, SYNCSET_PATH


@operation()
def ensure_syncset_record(is_master: bool, setting: str):
    """
    The newest record names this master and its setting; else hostrules.syncset writes the next
    generation here and on every reachable host (as postgres: its ssh trust).

    + is_master: this host is the master (other hosts: nothing to do)
    + setting: synchronous_standby_names as the deploy wrote it
    """
    if not is_master:
        host.noop("the master writes the record")
        return
    raw = host.get_fact(Command, command=f"cat {SYNCSET_PATH} 2>/dev/null || echo '{{}}'") or "{}"
    try:
        record = json.loads(raw)
    except ValueError:
        record = {}
    if record.get("primary") == host.name and record.get("setting") == setting:
        host.noop(f"generation {record.get('generation')}: {host.name} waits for {setting or 'nobody'}")
        return
    yield StringCommand(f"cd / && env PYTHONPATH={LIB_DIRECTORY} python3 -m hostrules.syncset write")
