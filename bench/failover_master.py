"""Timed: the master crashes while a workload commits through the VIP.

The figure: from the crash (the instant before `lab crash pg1` kills the machine) to the first
write acknowledged through the VIP by the promoted cascade (target: median 4 s or less, max 5 s). The
client (lab/workload.py, two workers) retries at once and gives a new connection 0.5 s
for its TCP handshake: it sees the VIP within a fraction of a second of its move. Each
run is a fresh cluster on the lab 'fm': lab up, deploy, workload, crash. The lab is removed at
the end. Prints the figures and writes them to bench/results/failover_master.json, with the
machine's load average (other labs on the machine slow everything down).

Run as root: `.venv/bin/python bench/failover_master.py [--runs N] [--subnet CIDR]` (default 5 runs;
--subnet: a /27 to use when none is free, e.g. a snapshot's that no lab is booted from).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from bench.workload_cluster import crash_to_first_write, deploy_with_workload  # noqa: E402
from lab.client import Lab  # noqa: E402

RESULTS = ROOT / "bench/results/failover_master.json"
LAB = "fm"
ROLE = "pgcascade_workload"
TARGET = 4.0  # seconds, the median; the slowest run 5 s or less


def one_run(number: int, subnet: str | None = None) -> float:
    lab = Lab(LAB, 3, subnet=subnet)
    try:
        password = deploy_with_workload(lab, ROLE, f"run {number}: the deploy failed")
        return crash_to_first_write(lab, ROLE, password, f"run {number}")
    finally:
        lab.down()


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    subnet = sys.argv[sys.argv.index("--subnet") + 1] if "--subnet" in sys.argv else None  # when no /27 is free
    load_before = load_average()
    values = []
    for number in range(1, runs + 1):
        values.append(one_run(number, subnet))
        print(f"run {number}: crash -> first acknowledged write through the VIP {values[-1]:.2f} s "
              f"(load {load_average()[0]:.2f})", flush=True)
    figures = {
        "crash_to_first_acknowledged_write_s": spread(values, target_median=TARGET),
        **machine(load_before),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    stats = figures["crash_to_first_acknowledged_write_s"]
    print(f"crash -> first acknowledged write through the VIP: min {stats['min']} median {stats['median']} "
          f"max {stats['max']} s over {stats['runs']} runs (target: median {TARGET} s or less)")


if __name__ == "__main__":
    main()
