"""may-promote's entry point: gathers what hostrules.promotion needs (in parallel: this node, the
peer's PostgreSQL from here, each witness's view of it, each witness's own node and
synchronous-set record), decides, and says why in the journal. Exit 0: promote; 1: refused.

    PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.maypromote [--quiet]
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from hostrules import config as configlib
from hostrules import hostio, promotion, syncset
from hostrules.nodestate import NodeState, read_local, unreachable
from hostrules.verdict import Verdict


def gather_and_decide(c: configlib.Config) -> Tuple[Verdict, str]:
    peer = c.peer()
    witnesses = c.witnesses()

    def witness_view(w) -> promotion.Witness:
        answer = hostio.remote_json(c, w.address, "witness", peer.address)
        if not answer:
            return promotion.Witness(w.name, "unreachable", unreachable(), None)
        try:
            state = NodeState.from_dict(answer.get("state") or {})
        except TypeError:
            state = unreachable()
        return promotion.Witness(w.name, answer.get("probe") or "unknown", state, answer.get("record") or None)

    with ThreadPoolExecutor(max_workers=2 + len(witnesses)) as pool:
        own_f = pool.submit(read_local, c.bin_directory, c.data_directory, c.port, c.socket_directory)
        peer_f = pool.submit(hostio.probe, c, peer.address)
        views_f = [pool.submit(witness_view, w) for w in witnesses]
        own, from_here, views = own_f.result(), peer_f.result(), [f.result() for f in views_f]
    answers = "; ".join([f"from {c.self_name}: {from_here}"] + [f"from {v.name}: {v.probe}" for v in views])
    verdict = promotion.decide(own, c.self_name, peer.name, from_here, views, syncset.load(c.syncset_path))
    return verdict, f"is PostgreSQL on {peer.name} ({peer.address}) gone? {answers}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m hostrules.maypromote")
    parser.add_argument("--quiet", action="store_true", help="no journal lines (ha-watch's retries log themselves)")
    args = parser.parse_args(argv)
    c = configlib.load()
    hostio.ensure_ssh_directory(c)
    verdict, answers = gather_and_decide(c)
    if not args.quiet:
        hostio.log("may-promote", answers)
        if verdict.decision == "promote":
            hostio.log("may-promote", f"{verdict.message} [{verdict.reason}]")
        else:
            hostio.log("may-promote", f"REFUSED: {verdict.message} [{verdict.reason}]")
    else:
        print(f"{verdict.decision} [{verdict.reason}] {verdict.message}")
    return 0 if verdict.decision == "promote" else 1


if __name__ == "__main__":
    sys.exit(main())
