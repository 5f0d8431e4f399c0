"""The backup section of tasks.status: the repository's state -> lines and problems (pure).

Shows the age of the last good backup, the last scheduled runs (and whether a standby served
the backup), the WAL range in the repository and the last archive check (pgbackrest check, run
by the schedule and before every restore). Problems: the repository cannot be read, the stanza or
its backups are missing, the last good backup is older than backup_max_age_hours, the last check
or the last scheduled backup failed.
"""
from __future__ import annotations

from collections.abc import Mapping

from .backup_info import STATUS_MISSING_STANZA_DATA, STATUS_MISSING_STANZA_PATH
from .model import BackupRepository


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "at an unknown time"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _run_line(kind: str, result: Mapping | None, now: int | None) -> str:
    if not result:
        return f"{kind}: never run"
    ago = age_text(now - result["finished"] if now and result.get("finished") else None)
    verdict = "ok" if result.get("ok") else "FAILED"
    return f"{kind}: {verdict} {ago} ({result.get('message') or '-'})"


def render_backup_status(backup: BackupRepository, state: Mapping | None,
                         unreachable_reason: str | None = None) -> tuple[list[str], list[str]]:
    """(lines, problems) of the backup section."""
    head = f"backups: repository on {backup.host}, stanza {backup.stanza}"
    if state is None:
        reason = unreachable_reason or "no answer"
        return [head, f"  the repository cannot be read: {reason}"], [
            f"{backup.host}: the backup repository cannot be read ({reason})"]
    if not state.get("installed"):
        return [head, "  pgBackRest is not installed there (run the deploy)"], [
            f"{backup.host}: pgBackRest is not installed (run the deploy)"]
    lines, problems = [head], []
    now = state.get("now")
    info = (state.get("stanzas") or {}).get(backup.stanza)
    if not info or info["status_code"] in (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
        lines.append(f"  stanza {backup.stanza} is not in the repository (run the deploy)")
        problems.append(f"{backup.host}: stanza {backup.stanza} is missing from the repository (run the deploy)")
        return lines, problems
    backups = info["backups"]
    if backups:
        last = backups[-1]
        age = now - last["stop"] if now and last.get("stop") else None
        counts = {t: sum(1 for b in backups if b["type"] == t) for t in ("full", "diff", "incr")}
        lines.append(f"  last good backup: {last['type']} {last['label']}, ended {age_text(age)}; "
                     f"kept: {counts['full']} full, {counts['diff']} diff, {counts['incr']} incr")
        if age is not None and age > backup.max_age_hours * 3600:
            problems.append(f"{backup.host}: the last good backup ended {age_text(age)}, more than "
                            f"{backup.max_age_hours} h (backup_max_age_hours): see the scheduled runs below")
    else:
        lines.append("  no backup yet")
        problems.append(f"{backup.host}: stanza {backup.stanza} has no backup (systemctl start pgcascade-backup@full)")
    lines.append(f"  WAL in the repository: {info['archive_min'] or '-'} .. {info['archive_max'] or '-'}")
    results = state.get("results") or {}
    for kind in ("full", "diff"):
        lines.append("  scheduled " + _run_line(kind, results.get(kind), now))
    lines.append("  archive check " + _run_line("check", results.get("check"), now).split(": ", 1)[1])
    check = results.get("check")
    if check is None:
        problems.append(f"{backup.host}: archiving into the repository was never checked "
                        "(systemctl start pgcascade-backup@check)")
    elif not check.get("ok"):
        problems.append(f"{backup.host}: the last archive check failed: {check.get('message')}")
    finished = [r for k, r in results.items() if k in ("full", "diff") and r.get("finished")]
    if finished:
        latest = max(finished, key=lambda r: r["finished"])
        if not latest.get("ok"):
            problems.append(f"{backup.host}: the last scheduled backup failed: {latest.get('message')}")
    return lines, problems


def backup_json(backup: BackupRepository, state: Mapping | None, unreachable_reason: str | None,
                problems: list[str]) -> dict:
    """The `backup` key of `tasks.status --json` (docs/status-json.md): the repository's state
    as the text section shows it."""
    info = ((state or {}).get("stanzas") or {}).get(backup.stanza) if state else None
    missing = not info or info["status_code"] in (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA)
    backups = [] if missing or info is None else info["backups"]
    now = (state or {}).get("now")
    last = backups[-1] if backups else None
    return {
        "host": backup.host,
        "stanza": backup.stanza,
        "reachable": state is not None,
        "unreachable_reason": None if state is not None else (unreachable_reason or "no answer"),
        "installed": bool(state.get("installed")) if state is not None else None,
        "stanza_exists": None if state is None or not state.get("installed") else not missing,
        "last_backup": None if last is None else {
            "type": last["type"], "label": last["label"], "stop": last.get("stop"),
            "age_seconds": now - last["stop"] if now and last.get("stop") else None},
        "kept": {t: sum(1 for b in backups if b["type"] == t) for t in ("full", "diff", "incr")},
        "wal": None if missing or info is None else {"min": info["archive_min"], "max": info["archive_max"]},
        "runs": {kind: (state.get("results") or {}).get(kind) if state is not None else None
                 for kind in ("full", "diff", "check")},
        "problems": list(problems),
    }
