"""Timed: partial failures while a workload commits through the VIP (the failure model's
scenarios, docs/failure-model.md).

  1   the master's PostgreSQL SIGKILLed on a live host (heartbeat up): ha-watch starts it again
      in place; one cluster for all runs (the primary stays where it is);
  1b  the master's PostgreSQL frozen (every process of its unit SIGSTOPped: a stalled disk) on a
      live host: ha-watch hands the resources over, the cascade is promoted; thawed 10 s later;
  2   the cascade frozen for 10 s (`lab pause pg2`: the kernel still answers ping): the master's
      commits wait for their synchronous standby until the downstream's cascade monitor fails
      the cascade over;
  4   the cascade's link cut for 5 s, then back (heartbeat's link blips);
  10  the master frozen for 8 s (longer than heartbeat's dead time), then back: the failover, and
      whatever the old master's return does to the new primary's writes.

The figure per scenario: write-unavailability, the longest time without an acknowledged write
through the VIP (from any server) between the fault and the end of its window (20 acknowledged
writes after the window's settle time). Scenarios 2, 4 and 10 boot a fresh cluster per run from
the snapshot of a deployed one. Any overlap of two servers' acknowledgements stops the bench.
Prints the figures and merges them into bench/results/partial_failures.json with the machine's
load average.

Run as root: `.venv/bin/python bench/partial_failures.py [--runs N] [--scenarios 1,1b,2,4,10]`
(default 5 runs of each).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from bench.workload_cluster import deploy_with_workload  # noqa: E402
from lab.client import Lab, wait_until  # noqa: E402
from lab.deployed import boot_deployed  # noqa: E402
from lab.workload import Workload  # noqa: E402

RESULTS = ROOT / "bench/results/partial_failures.json"
LAB = "bp"
ROLE = "pgcascade_workload"
KILL_POSTMASTER = "kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid)"
UNIT = "postgresql@15-main"


def hold(seconds: float, what: str) -> None:
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started >= seconds, seconds + 5, what, interval=0.05)


def settle(load: Workload, seconds: float) -> float:
    """Wait `seconds`, then for 20 acknowledged writes: the window's end."""
    hold(seconds, f"{seconds:.0f} s for the cluster to settle")
    load.wait_for_acks(20, 60, after=time.monotonic())
    return time.monotonic()


def postmaster_killed(lab: Lab, load: Workload) -> float:
    lab.ssh("pg1", KILL_POSTMASTER)
    killed = time.monotonic()
    wait_until(lambda: load.first_ack_after(killed, node="pg1"), 60, "pg1 acknowledging again", interval=0.05)
    return settle(load, 0)


def master_postgres_frozen(lab: Lab, load: Workload) -> float:
    lab.ssh("pg1", f"systemctl kill -s SIGSTOP {UNIT}")
    frozen = time.monotonic()
    try:
        wait_until(lambda: load.first_ack_after(frozen, node="pg2"), 60, "pg2 acknowledging", interval=0.05)
        hold(10, "10 s more with pg1's PostgreSQL frozen")
    finally:
        lab.ssh("pg1", f"systemctl kill -s SIGCONT {UNIT}")
    return settle(load, 10)


def broken_for(lab: Lab, load: Workload, verb: str, undo: str, host: str, seconds: float, settle_s: float) -> float:
    """`lab VERB HOST` for `seconds`, then `lab UNDO HOST`; the window's end after `settle_s` more."""
    lab.cli(verb, host)
    try:
        hold(seconds, f"{verb} {host} for {seconds:.0f} s")
    finally:
        lab.cli(undo, host)
    return settle(load, settle_s)


def cascade_frozen(lab: Lab, load: Workload) -> float:
    return broken_for(lab, load, "pause", "resume", "pg2", 10, 10)


def cascade_link_blip(lab: Lab, load: Workload) -> float:
    # heartbeat restarts on both nodes some seconds after a heal: the 30 s window covers it.
    return broken_for(lab, load, "partition", "heal", "pg2", 5, 30)


def master_frozen_returns(lab: Lab, load: Workload) -> float:
    return broken_for(lab, load, "pause", "resume", "pg1", 8, 30)


SCENARIOS: dict[str, tuple[str, str, Callable[[Lab, Workload], float]]] = {
    "1": ("scenario_1_postmaster_killed", "the master's postmaster SIGKILLed", postmaster_killed),
    "1b": ("scenario_1b_master_postgres_frozen", "the master's PostgreSQL frozen", master_postgres_frozen),
    "2": ("scenario_2_cascade_frozen_10s", "the cascade frozen 10 s", cascade_frozen),
    "4": ("scenario_4_cascade_link_cut_5s", "the cascade's link cut 5 s", cascade_link_blip),
    "10": ("scenario_10_master_frozen_8s_returns", "the master frozen 8 s, then back", master_frozen_returns),
}


def one_fault(lab: Lab, password: str, fault: Callable[[Lab, Workload], float]) -> dict:
    with Workload(lab.desc["vip"], 5432, ROLE, password) as load:
        load.wait_for_acks(20, 30)
        before = time.monotonic()
        end = fault(lab, load)
    if load.overlaps():
        sys.exit(f"overlapping acknowledgements (two primaries): {load.overlaps()}")
    return {"gap": load.longest_pause(before, end), "turns": load.turns()}


def series(key: str, words: str, fault: Callable[[Lab, Workload], float], runs: int) -> dict:
    values, turns = [], []
    lab = None
    try:
        for number in range(1, runs + 1):
            if lab is None or fault is not postmaster_killed:
                if lab is not None:
                    lab.down()
                lab = boot_deployed(LAB, 3)
                password = deploy_with_workload(lab, ROLE)
            result = one_fault(lab, password, fault)
            values.append(result["gap"])
            turns.append(result["turns"])
            print(f"{words}, run {number}: writes unavailable {values[-1]:.2f} s, acknowledged by "
                  f"{' -> '.join(result['turns'])} (load {load_average()[0]:.2f})", flush=True)
    finally:
        if lab is not None:
            lab.down()
    return {**spread(values), "acknowledging_servers": turns, "what": words}


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    chosen = (sys.argv[sys.argv.index("--scenarios") + 1].split(",") if "--scenarios" in sys.argv
              else list(SCENARIOS))
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for number in chosen:
        key, words, fault = SCENARIOS[number]
        load_before = load_average()
        figures[f"{key}_write_unavailability_s"] = {**series(key, words, fault, runs), **machine(load_before)}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        stats = figures[f"{key}_write_unavailability_s"]
        print(f"{words}: writes unavailable min {stats['min']} median {stats['median']} max {stats['max']} s "
              f"over {stats['runs']} runs", flush=True)


if __name__ == "__main__":
    main()
