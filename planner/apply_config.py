"""After the configuration files change: reload, restart or nothing, decided from the facts."""
from __future__ import annotations

from collections.abc import Mapping


def config_action(state: Mapping, replaced_by_clone: bool = False) -> tuple[str, str]:
    """("restart" | "reload" | "nothing" | "refuse", reason) from a PgConfigState fact.

    A restart also applies what a reload would, so it is never both. A file the server cannot
    parse is refused: reloading it would leave the server on its old settings, silently.
    replaced_by_clone: the host is a standby holding a never-used cluster (standby_plan.
    replaced_by_clone): left as it is, because the cluster's settings would have it archive WAL
    (it would then no longer count as never used) and slow its stop before the clone.
    """
    if not state["running"]:
        return "nothing", "not running: the files apply when it starts"
    if replaced_by_clone:
        return "nothing", "a never-used cluster that its standby tier replaces with a base backup: the files apply to the clone"
    errors = state["file_errors"] + state["hba_errors"]
    if errors:
        return "refuse", "the configuration has errors, fix them first: " + "; ".join(errors)
    needs_restart = sorted(set(state["unapplied"]) | set(state["pending_restart"]))
    if needs_restart:
        return "restart", f"{', '.join(needs_restart)} only change at a restart"
    if state["files_mtime"] > (state["conf_load_time"] or 0):
        return "reload", "the configuration files changed since the server last read them"
    return "nothing", "the server runs with its files' settings"
