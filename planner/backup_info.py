"""The repository's state as the facts read it: `pgbackrest info --output=json` and the results
of the last scheduled runs (backup-run), parsed into plain data (pure: the fact only reads).

    {"installed": bool, "now": int|None (the repository host's clock, epoch seconds),
     "stanzas": {name: {"status_code": int, "status": str,
                        "backups": [{"label", "type", "start", "stop", "lsn_start", "lsn_stop",
                                     "wal_start", "wal_stop"}],   # oldest first
                        "archive_min": str|None, "archive_max": str|None}},
     "results": {"full"|"diff"|"check": {"ok": bool, "source": str, "finished": int, "message": str}}}
"""
from __future__ import annotations

import json
from collections.abc import Mapping

RESULTS_MARK = "@@pgcascade-results"
NOW_MARK = "@@pgcascade-now"
NOT_INSTALLED = "@@pgcascade-no-pgbackrest"

# pgbackrest info's stanza status codes (2.45)
STATUS_OK, STATUS_MISSING_STANZA_PATH, STATUS_NO_BACKUP, STATUS_MISSING_STANZA_DATA = 0, 1, 2, 3


def empty_state() -> dict:
    return {"installed": False, "now": None, "stanzas": {}, "results": {}}


def lsn_bytes(text: str | None) -> int | None:
    """'0/3000028' -> bytes from 0/0."""
    if not text or "/" not in text:
        return None
    high, low = text.split("/", 1)
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


def _stanza(raw: Mapping) -> dict:
    backups = []
    for b in raw.get("backup") or []:
        if b.get("error"):
            continue  # a backup pgBackRest found damaged is no restore source
        backups.append({
            "label": b.get("label"),
            "type": b.get("type"),
            "start": (b.get("timestamp") or {}).get("start"),
            "stop": (b.get("timestamp") or {}).get("stop"),
            "lsn_start": lsn_bytes((b.get("lsn") or {}).get("start")),
            "lsn_stop": lsn_bytes((b.get("lsn") or {}).get("stop")),
            "wal_start": (b.get("archive") or {}).get("start"),
            "wal_stop": (b.get("archive") or {}).get("stop"),
        })
    backups.sort(key=lambda b: (b["stop"] or 0, b["label"] or ""))
    archives = raw.get("archive") or []
    mins = [a.get("min") for a in archives if a.get("min")]
    maxes = [a.get("max") for a in archives if a.get("max")]
    status = raw.get("status") or {}
    return {
        "status_code": status.get("code", 99),
        "status": status.get("message", "unknown"),
        "backups": backups,
        # WAL file names sort by timeline, then position
        "archive_min": min(mins) if mins else None,
        "archive_max": max(maxes) if maxes else None,
    }


def _results(lines: list[str]) -> dict:
    results: dict[str, dict] = {}
    current = None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "kind":
            current = results.setdefault(value, {"ok": False, "source": "-", "finished": None, "message": ""})
        elif current is not None and key == "ok":
            current["ok"] = value == "1"
        elif current is not None and key == "finished":
            current["finished"] = int(value) if value.isdigit() else None
        elif current is not None and key in ("source", "message"):
            current[key] = value
    return results


def parse_repository_state(output: list[str]) -> dict:
    """The fact's output lines -> the state above; raises ValueError on an unreadable info."""
    if not output or output[0].strip() == NOT_INSTALLED:
        return empty_state()
    try:
        results_at = output.index(RESULTS_MARK)
        now_at = output.index(NOW_MARK)
    except ValueError:
        raise ValueError("the repository state has no result or clock section") from None
    info_text = "\n".join(output[:results_at]).strip() or "[]"
    info = json.loads(info_text)
    now_lines = [x for x in output[now_at + 1:] if x.strip()]
    return {
        "installed": True,
        "now": int(now_lines[0]) if now_lines and now_lines[0].strip().isdigit() else None,
        "stanzas": {s.get("name"): _stanza(s) for s in info if isinstance(s, Mapping)},
        "results": _results(output[results_at + 1:now_at]),
    }
