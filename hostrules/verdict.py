"""A decision with a stable reason code (for tests, status and logs) and a sentence for the journal."""
from __future__ import annotations

from typing import NamedTuple


class Verdict(NamedTuple):
    decision: str  # what to do: promote / refuse / retry / fence / keep / restart / hand-over / ...
    reason: str  # a stable code: "synchronous-standby", "stale-candidate", ...
    message: str = ""  # the DBA's words, for the journal

    def as_dict(self) -> dict:
        return {"decision": self.decision, "reason": self.reason, "message": self.message}
