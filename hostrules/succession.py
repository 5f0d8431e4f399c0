"""hapostgres's question before it keeps, starts or stops a primary: has another host of the
cluster succeeded this one (timeline.successor_verdict), and how many hosts of the cluster
answered? Prints one line: DECISION ANSWERED REASON MESSAGE (VIEW), DECISION keep or fence.

    PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.succession
"""
from __future__ import annotations

import sys

from hostrules import config as configlib
from hostrules import hostio, timeline
from hostrules.nodestate import read_local


def main() -> int:
    c = configlib.load()
    hostio.ensure_ssh_directory(c)
    local = read_local(c.bin_directory, c.data_directory, c.port, c.socket_directory)
    others = hostio.states_of(c, [h.name for h in c.others()])
    verdict = timeline.successor_verdict(local, others, {h.name: h.address for h in c.hosts})
    answered = [n for n, s in others.items() if s.system_identifier and s.system_identifier == local.system_identifier]
    view = "; ".join(f"{n} {s.line()}" for n, s in sorted(others.items()))
    print(f"{verdict.decision} {len(answered)} {verdict.reason} {verdict.message} ({view})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
