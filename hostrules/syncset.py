"""The synchronous-set record: who may be promoted is recorded, not guessed.

Whoever changes a primary's synchronous_standby_names (the deploy, the cascade failover, a
promotion, rejoin, switchover) then writes a record of it with the next generation number to
every reachable cluster host: `python3 -m hostrules.syncset write` on the primary, as postgres.
may-promote reads the newest record among the candidate's own and the witnesses'.

A record: {"generation": 7, "primary": "pg1", "system_identifier": "...", "timeline": 1,
"synchronous": ["standby_1"], "setting": "FIRST 1 (\"standby_1\")", "written_by": "pg1"}.
"synchronous" are application names: every commit the primary acknowledged since the record was
written is on one of them (all of them with ANY/quorum: on as many as it says).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from typing import Iterable, List, Optional, Tuple

_METHOD = re.compile(r"^\s*(?:(FIRST|ANY)\s+)?(\d+)\s*\((.*)\)\s*$", re.I | re.S)


def parse_names(setting: str) -> Tuple[str, int, List[str]]:
    """synchronous_standby_names -> (method, count, names); ('', 0, []) when empty.

    'FIRST 1 ("a", "b")' -> ('first', 1, ['a', 'b']); 'a, b' -> ('first', 1, ['a', 'b']);
    'ANY 2 (a, b, c)' -> ('any', 2, [...]); '*' stays '*' (any standby)."""
    setting = (setting or "").strip()
    if not setting:
        return "", 0, []
    match = _METHOD.match(setting)
    if match:
        method, count, body = (match.group(1) or "FIRST").lower(), int(match.group(2)), match.group(3)
    else:
        method, count, body = "first", 1, setting
    names, word, quoted, i = [], "", False, 0
    while i < len(body):
        c = body[i]
        if quoted:
            if c == '"' and body[i + 1:i + 2] == '"':
                word += '"'
                i += 1
            elif c == '"':
                quoted = False
            else:
                word += c
        elif c == '"':
            quoted = True
        elif c == ",":
            names.append(word.strip())
            word = ""
        else:
            word += c
        i += 1
    names.append(word.strip())
    return method, count, [n for n in names if n]


def newest(records: Iterable[Optional[dict]]) -> Optional[dict]:
    """The record with the highest generation (ties: the same write, any copy)."""
    valid = [r for r in records if isinstance(r, dict) and isinstance(r.get("generation"), int)]
    return max(valid, key=lambda r: (r["generation"], r.get("written_by", "")), default=None)


def same_content(a: Optional[dict], b: Optional[dict]) -> bool:
    keys = ("primary", "system_identifier", "timeline", "synchronous", "setting")
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in keys)


def next_record(current: Optional[dict], primary: str, system_identifier: str, timeline: int,
                setting: str, written_by: str) -> dict:
    """The record for this primary's setting: `current` itself when nothing changed, else the next generation."""
    record = {
        "primary": primary,
        "system_identifier": system_identifier,
        "timeline": timeline,
        "synchronous": parse_names(setting)[2],
        "setting": setting,
        "written_by": written_by,
    }
    if current is not None and same_content(current, record):
        return current
    record["generation"] = (current["generation"] if current else 0) + 1
    return dict(sorted(record.items()))


def accepts(local: Optional[dict], incoming: dict) -> bool:
    """A host keeps a record unless the incoming one is newer."""
    return local is None or incoming["generation"] > local["generation"]


# ---- the file ---------------------------------------------------------------------------------

def load(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("generation"), int) else None


def store(path: str, record: dict) -> None:
    """Atomically (a crash leaves the old record or the new one, never half of one)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".syncset.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- entry point ------------------------------------------------------------------------------

def _write(config, log, ssh_timeout: Optional[float] = None) -> int:
    from hostrules import hostio
    from hostrules.nodestate import read_local

    node = read_local(config.bin_directory, config.data_directory, config.port, config.socket_directory)
    if node.state != "primary":
        log(f"syncset: {config.self_name} is '{node.line()}', not a running primary: no record written")
        return 1
    others = config.others()
    remote = hostio.parallel(others, lambda h: hostio.remote_json(config, h.address, "syncset", "show",
                                                                   timeout=ssh_timeout))
    current = newest([load(config.syncset_path), *remote])
    record = next_record(current, config.self_name, node.system_identifier or "", node.timeline,
                         node.synchronous_standby_names, config.self_name)
    if record is not current:
        store(config.syncset_path, record)
    elif load(config.syncset_path) != record:
        store(config.syncset_path, record)
    payload = json.dumps(record, sort_keys=True)
    results = hostio.parallel(
        others, lambda h: hostio.on_host(config, h.address, hostio.module_command("syncset", "accept"), stdin=payload,
                                 timeout=ssh_timeout))
    missed = [h.name for h, out in zip(others, results) if out is None]
    log(f"syncset: generation {record['generation']}: {config.self_name} (timeline {record['timeline']}) "
        f"waits for {record['setting'] or 'nobody'}"
        + (f"; not written on {', '.join(missed)} (unreachable): they get it with the next write" if missed else ""))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from hostrules import config as configlib

    parser = argparse.ArgumentParser(prog="python3 -m hostrules.syncset", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("write", "accept", "show"),
                        help="write: record this primary's synchronous set on every reachable host; "
                             "accept: store the record on stdin if it is newer; show: print this host's record")
    parser.add_argument("--ssh-timeout", type=float, default=None,
                        help="seconds for each other host (default: the failover paths' short timeout; "
                             "the deploy, which has time, gives more so that a loaded host is not missed)")
    args = parser.parse_args(argv)
    config = configlib.load()
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    if args.action == "show":
        print(json.dumps(load(config.syncset_path) or {}, sort_keys=True))
        return 0
    if args.action == "accept":
        incoming = json.loads(sys.stdin.read())
        if not isinstance(incoming.get("generation"), int):
            log("syncset: not a record")
            return 1
        local = load(config.syncset_path)
        if accepts(local, incoming):
            store(config.syncset_path, incoming)
            print("stored")
        else:
            print("kept")
        return 0
    return _write(config, log, args.ssh_timeout)


if __name__ == "__main__":
    sys.exit(main())
