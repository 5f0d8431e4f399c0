"""hostrules.promotion: may this standby be promoted? One row per case, with the reason."""
from __future__ import annotations

import pytest

from hostrules.nodestate import NodeState
from hostrules.promotion import Witness, decide

SYSID = "7312345678901234567"
GB = 1 << 30


def standby(lsn, app="standby_1", tli=1, sysid=SYSID):
    return NodeState("standby", tli, sysid, lsn, app)


def record(generation=1, sync=("standby_1",), sysid=SYSID):
    names = ", ".join(f'"{n}"' for n in sync)
    return {"generation": generation, "primary": "pg1", "system_identifier": sysid, "timeline": 1,
            "synchronous": list(sync), "setting": f"FIRST 1 ({names})" if sync else "", "written_by": "pg1"}


def witness(probe="silent", state=None, rec=None, name="pg3"):
    return Witness(name, probe, state if state is not None else standby(GB, "standby_2"), rec)


CASES = [
    # (id, own, peer from here, witnesses, own record, decision, reason)
    ("the synchronous cascade, master gone", standby(GB), "silent", [witness(rec=record())], record(),
     "promote", "synchronous-standby"),
    ("only the local copy of the record", standby(GB), "silent", [witness()], record(), "promote", "synchronous-standby"),
    ("only the witness's copy", standby(GB), "silent", [witness(rec=record())], None, "promote", "synchronous-standby"),
    ("not a standby", NodeState("primary", 1, SYSID, GB), "silent", [witness()], record(), "refuse", "not-a-standby"),
    ("stopped", NodeState("stopped-standby", 1, SYSID), "silent", [witness()], record(), "refuse", "not-a-standby"),
    ("peer answers from here: only heartbeat's link is down", standby(GB), "answers", [witness()], record(),
     "refuse", "peer-answers"),
    ("peer unknown from here", standby(GB), "unknown", [witness()], record(), "refuse", "peer-answers"),
    ("a witness still reaches the peer", standby(GB), "silent", [witness("answers")], record(),
     "refuse", "witness-reaches-peer"),
    ("no witness answers: maybe isolated", standby(GB), "silent",
     [witness("unreachable", NodeState("unreachable"))], record(), "refuse", "no-witness"),
    ("no witness at all", standby(GB), "silent", [], record(), "refuse", "no-witness"),
    ("a witness is already the primary", standby(GB), "silent",
     [witness(state=NodeState("primary", 2, SYSID, 2 * GB))], record(), "refuse", "witness-is-primary"),
    ("scenario 9, then a master crash: a downstream promoted by hand earlier is a branch, not the primary",
     standby(GB), "silent", [witness(state=NodeState("primary", 2, SYSID, GB + 5, history=[(1, GB - 100)]),
                                     rec=record())], record(), "promote", "synchronous-standby"),
    ("... but a primary whose branch this standby did not go beyond is the primary",
     standby(GB), "silent", [witness(state=NodeState("primary", 2, SYSID, GB + 5, history=[(1, GB)]))], record(),
     "refuse", "witness-is-primary"),
    ("scenario 3: the cascade came back asynchronous, the downstream is synchronous and ahead",
     standby(GB), "silent", [witness(state=standby(GB + 100 * 8192, "standby_2"), rec=record(2, ("standby_2",)))],
     record(1), "refuse", "stale-candidate"),
    ("the cascade is not synchronous but as advanced as the synchronous downstream",
     standby(GB), "silent", [witness(state=standby(GB, "standby_2"), rec=record(2, ("standby_2",)))],
     record(1), "promote", "most-advanced"),
    ("the synchronous downstream does not answer: it may hold acknowledged commits",
     standby(GB), "silent",
     [witness(state=standby(GB, "standby_2"), rec=record(2, ("standby_2",))),
      witness("unreachable", NodeState("unreachable"), name="pg4")],
     record(2, ("standby_3",)), "refuse", "sync-member-unreachable"),
    ("an older local record does not win over a newer witness copy",
     standby(GB), "silent", [witness(state=standby(GB + 1, "standby_2"), rec=record(5, ("standby_2",)))],
     record(4, ("standby_1",)), "refuse", "stale-candidate"),
    ("no record, the witness is behind", standby(GB), "silent", [witness(state=standby(GB - 1, "standby_2"))], None,
     "promote", "no-record"),
    ("no record, the witness received more", standby(GB), "silent", [witness(state=standby(GB + 1, "standby_2"))],
     None, "refuse", "stale-candidate"),
    ("another synchronous member received more", standby(GB), "silent",
     [witness(state=standby(GB + 1, "standby_2"))], record(3, ("standby_1", "standby_2")), "refuse", "stale-candidate"),
    ("the record is of another cluster", standby(GB), "silent", [witness()], record(sysid="1"), "refuse",
     "other-cluster"),
    ("a witness of another cluster is ignored for positions", standby(GB), "silent",
     [witness(state=standby(2 * GB, "standby_2", sysid="1"))], None, "promote", "no-record"),
]


@pytest.mark.parametrize("own, from_here, witnesses, own_record, decision, reason",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_may_promote(own, from_here, witnesses, own_record, decision, reason):
    verdict = decide(own, "pg2", "pg1", from_here, witnesses, own_record)
    assert (verdict.decision, verdict.reason) == (decision, reason), verdict.message
    assert verdict.message


def test_a_stale_refusal_names_who_holds_more_and_both_positions():
    verdict = decide(standby(GB), "pg2", "pg1", "silent",
                     [witness(state=standby(GB + 0x4000, "standby_2"), rec=record(2, ("standby_2",)))], record(1))
    assert "pg3" in verdict.message and "0/40004000" in verdict.message and "0/40000000" in verdict.message
