"""The failover figures, each case run N times (default 5) on its own lab:

- master crash -> first acknowledged write through the VIP (bench/failover_master.py)
- cascade crash -> unblocked synchronous commits and downstream streaming from the
  master, with the automation (bench/failover_cascade.py)
- rejoin (pg_rewind, then a fresh base backup) and switchover on a 1 GB database: rejoin times
  and the switchover's write pause (bench/switchover_rejoin.py, 2N cycles: N of each method)

Each script prints its figures and writes bench/results/<case>.json; this one runs them in turn
and gathers them into bench/results/failover.json. Run as root on a quiet machine:
`.venv/bin/python bench/failover.py [--runs N]`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"failover_master": "--runs", "failover_cascade": "--runs", "switchover_rejoin": "--cycles"}


def main() -> None:
    runs = sys.argv[sys.argv.index("--runs") + 1] if "--runs" in sys.argv else "5"
    gathered = {}
    for case, option in CASES.items():
        count = str(2 * int(runs)) if option == "--cycles" else runs
        subprocess.run([sys.executable, str(ROOT / f"bench/{case}.py"), option, count], cwd=ROOT, check=True)
        gathered[case] = json.loads((ROOT / f"bench/results/{case}.json").read_text())
    (ROOT / "bench/results/failover.json").write_text(json.dumps(gathered, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
