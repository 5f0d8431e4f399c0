"""The lab's cluster: pg1 master, pg2 cascading standby, pg3.. downstream standbys of pg2, and the
backup repository host (the lab's last host) when the lab was made with `lab up --backup`.

Reads the description `python -m lab up` writes (lab name from $PGCASCADE_LAB, default 'demo'),
so the same file serves the demo lab and the tests' lab. Lab-only ssh key and pinned known_hosts.
"""
import json
import os
from pathlib import Path

_LAB = os.environ.get("PGCASCADE_LAB", "demo")
_STATE = Path(os.environ.get("PGCASCADE_LAB_STATE", "/var/lib/pgcascade-lab"))
try:
    _desc = json.loads((_STATE / _LAB / "lab.json").read_text())
except FileNotFoundError:
    raise SystemExit(f"inventories/lab.py: lab {_LAB!r} is not up: run `python -m lab up --name {_LAB}` first") from None

_cluster = {
    "pg_version": 15,
    "pg_port": 5432,
    "vip_address": _desc["vip"],
    "vip_prefix": _desc["prefix"],
    "vip_interface": _desc["interface"],
    # The lab's local repository stands in for the PostgreSQL apt repository of inventories/prod.py.
    "apt_repository": {"line": f"deb [trusted=yes] {_desc['repo_url']} ./", "filename": "pgcascade-lab"},
    "secrets_file": _desc["secrets_file"],
}
_ssh = {
    "ssh_user": "root",
    "ssh_key": _desc["ssh_key"],
    "ssh_known_hosts_file": _desc["known_hosts"],
    "ssh_strict_host_key_checking": "yes",
}
_backup_host = next((h for h in _desc["hosts"] if h["name"] == _desc.get("backup_host")), None)
_hosts = [h for h in _desc["hosts"] if h is not _backup_host]  # `lab up --backup`: the last host
_master, _cascade, _rest = _hosts[0], (_hosts[1:2] or [None])[0], _hosts[2:]


def _host(entry, **extra):
    return (entry["name"], {**_cluster, **_ssh, "ssh_hostname": entry["ip"], "pg_address": entry["ip"], **extra})


master = [_host(_master)]
cascade = [_host(_cascade, pg_upstream=_master["name"], pg_application_name="standby_1")] if _cascade else []
downstream = [
    _host(entry, pg_upstream=_cascade["name"], pg_application_name=f"standby_{i}")
    for i, entry in enumerate(_rest, start=2)
]
# The pgBackRest repository host (planner/backup.py), when the lab was made with `lab up --backup`.
backup = [(_backup_host["name"], {**_cluster, **_ssh, "ssh_hostname": _backup_host["ip"]})] if _backup_host else []
