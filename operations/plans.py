"""Acting on a planner decision inside an operation: refuse loudly, say why nothing, or go on."""
from __future__ import annotations

from pyinfra import host, state
from pyinfra.api import OperationError
from pyinfra.api.state import StateStage


def go_ahead(action: str, reason: str, verb: str | None = None) -> bool:
    """False after a noop with the reason ("nothing"); raises on "refuse"; True otherwise, having
    said what will be done and why."""
    if action == "refuse":
        raise OperationError(reason)
    if action == "nothing":
        host.noop(reason)
        return False
    # At info level (not a noop's debug): --dry shows what will be done, and why, without -v.
    host.log(f"{verb or action}: {reason}")
    return True


def preparing() -> bool:
    """True while pyinfra prepares (--dry, the prompt): an operation's body then runs up to its
    first command to tell whether it would change anything, before any earlier step has run."""
    return state.current_stage < StateStage.Execute
