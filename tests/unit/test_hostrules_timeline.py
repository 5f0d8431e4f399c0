"""hostrules.timeline: is a newer timeline this primary's successor, or an unrelated branch?"""
from __future__ import annotations

import pytest

from hostrules.nodestate import Downstream, NodeState, parse_history
from hostrules.timeline import successor_verdict

SYSID = "7312345678901234567"
ADDRESSES = {"pg1": "10.0.0.1", "pg2": "10.0.0.2", "pg3": "10.0.0.3"}
FORK = 0x3000000


def primary(tli=1, replication=()):
    return NodeState("primary", tli, SYSID, FORK + 0x100000, replication=list(replication))


def sync_row(addr="10.0.0.2", flush=FORK + 0x1000, state="streaming", sync_state="sync"):
    return Downstream("standby_1", addr, state, sync_state, flush)


def other(state="primary", tli=2, history=((1, FORK),), sysid=SYSID):
    return NodeState(state, tli, sysid, FORK, history=list(history))


CASES = [
    ("nobody newer", primary(), {"pg2": NodeState("standby", 1, SYSID, FORK)}, "keep", "newest-timeline"),
    ("the cascade was promoted: a successor", primary(), {"pg2": other()}, "fence", "successor-timeline"),
    ("a standby followed the promotion", primary(), {"pg3": other("standby")}, "fence", "successor-timeline"),
    ("scenario 9: the downstream promoted by hand while the sync standby streams on",
     primary(replication=[sync_row()]), {"pg3": other(), "pg2": NodeState("standby", 1, SYSID, FORK)},
     "keep", "unrelated-branch"),
    ("the same, idle: the sync standby exactly at the switch point", primary(replication=[sync_row(flush=FORK)]),
     {"pg3": other()}, "keep", "unrelated-branch"),
    ("the promoted host itself still listed as streaming (a stale row)",
     primary(replication=[sync_row()]), {"pg2": other()}, "fence", "successor-timeline"),
    ("an asynchronous standby past the fork proves nothing",
     primary(replication=[sync_row(sync_state="async")]), {"pg3": other()}, "fence", "successor-timeline"),
    ("the sync standby behind the fork", primary(replication=[sync_row(flush=FORK - 1)]), {"pg3": other()},
     "fence", "successor-timeline"),
    ("another cluster", primary(), {"pg2": other(sysid="1")}, "keep", "newest-timeline"),
    ("no history to compare", primary(), {"pg2": other(history=())}, "fence", "newer-timeline"),
    ("a newer timeline not descending from ours", primary(tli=2), {"pg2": other(tli=3, history=((1, FORK),))},
     "keep", "unrelated-timeline"),
]


@pytest.mark.parametrize("own, others, decision, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_successor(own, others, decision, reason):
    verdict = successor_verdict(own, others, ADDRESSES)
    assert (verdict.decision, verdict.reason) == (decision, reason), verdict.message


def test_parse_history():
    text = "1\t0/3000000\tno recovery target specified\n\n2\t1/A0000028\tat restore point\n"
    assert parse_history(text) == [(1, 0x3000000), (2, 0x1A0000028)]
