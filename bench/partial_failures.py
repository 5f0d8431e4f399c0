"""Timed: the master's PostgreSQL is SIGKILLed on a live host (heartbeat up)
while a workload commits through the VIP. ha-watch starts it again in place.

The figure: write-unavailability, the longest time without an acknowledged write through the VIP
from the kill until 20 writes after it (target: 10 s or less). Runs reuse one cluster on the lab
'bp' (the primary stays where it is). Prints the figures and writes them to
bench/results/partial_failures.json with the machine's load average.

Run as root: `.venv/bin/python bench/partial_failures.py [--runs N]` (default 5).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from bench.workload_cluster import deploy_with_workload  # noqa: E402
from lab.client import Lab, wait_until  # noqa: E402
from lab.workload import Workload  # noqa: E402

RESULTS = ROOT / "bench/results/partial_failures.json"
LAB = "bp"
ROLE = "pgcascade_workload"
TARGET = 10.0


def largest_gap(acks, start: float, end: float) -> float:
    times = sorted([start] + [a.acked for a in acks if start <= a.acked <= end] + [end])
    return max(b - a for a, b in zip(times, times[1:]))


def kill_once(lab: Lab, password: str) -> float:
    with Workload(lab.desc["vip"], 5432, ROLE, password) as load:
        load.wait_for_acks(20, 30)
        before = time.monotonic()
        lab.ssh("pg1", "kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")
        killed = time.monotonic()
        wait_until(lambda: load.first_ack_after(killed, node="pg1"), 60, "pg1 acknowledging again", interval=0.05)
        load.wait_for_acks(20, 30, after=time.monotonic())
        after = time.monotonic()
    if set(load.spans()) != {"pg1"} or load.overlaps():
        sys.exit(f"writes acknowledged by {sorted(load.spans())}: the kill caused a failover")
    return largest_gap(load.acks, before, after)


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    load_before = load_average()
    lab = Lab(LAB, 3)
    try:
        password = deploy_with_workload(lab, ROLE)
        values = []
        for number in range(1, runs + 1):
            values.append(kill_once(lab, password))
            print(f"run {number}: postmaster SIGKILLed -> writes unavailable {values[-1]:.2f} s "
                  f"(load {load_average()[0]:.2f})", flush=True)
    finally:
        lab.down()
    figures = {"scenario_1_postmaster_killed_write_unavailability_s": spread(values, target_max=TARGET),
               **machine(load_before)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    stats = figures["scenario_1_postmaster_killed_write_unavailability_s"]
    print(f"postmaster SIGKILLed -> writes unavailable: min {stats['min']} median {stats['median']} "
          f"max {stats['max']} s over {stats['runs']} runs (target: {TARGET} s or less)")


if __name__ == "__main__":
    main()
