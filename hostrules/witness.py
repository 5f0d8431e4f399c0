"""A witness's answer for may-promote, in one round trip: does the given address's PostgreSQL
answer from here, this host's node state and its synchronous-set record, as one JSON object.

    PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.witness ADDRESS
"""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from hostrules import config as configlib
from hostrules import hostio, syncset
from hostrules.nodestate import read_local


def main() -> int:
    c = configlib.load()
    address = sys.argv[1]
    with ThreadPoolExecutor(max_workers=2) as pool:
        probe = pool.submit(hostio.probe, c, address)
        node = pool.submit(read_local, c.bin_directory, c.data_directory, c.port, c.socket_directory)
        answer = {"probe": probe.result(), "state": json.loads(node.result().to_json()),
                  "record": syncset.load(c.syncset_path)}
    print(json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
