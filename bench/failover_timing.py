"""Timed: heartbeat's timing profiles side by side, for the master failover and a short stall.

For each profile (heartbeat's keepalive / warntime / deadtime / initdead, in seconds):
- crash: the master's machine dies while a workload commits through the VIP; the figure is
  bench/failover_master.py's, from the crash to the first write acknowledged by pg2. A fresh
  cluster per run: booted from the snapshot of a deployed one (lab/deployed.py), then deployed
  again with the profile (heartbeat restarts with the new ha.cf; the primary keeps running),
  then no fault until heartbeat has run initdead seconds since (before that a dead peer is
  declared only at initdead's end: measured 6.4 s instead of about 4);
- stall: the master's machine frozen 2 s (a GC-like stall: every process stopped), then thawed,
  `--stalls` times on one cluster; counted: stalls after which another server acknowledged a
  write or pg2 left recovery (a false failover), and the times pg2's may-promote refused (its
  heartbeat had declared pg1 dead: how near the stall came to the dead time). The figure per
  stall is the longest time without an acknowledged write.

Prints the figures and writes bench/results/failover_timing.json with the machine's load. Run as
root: `.venv/bin/python bench/failover_timing.py [--runs N] [--stalls N] [--profiles default,1s-keepalive]`
(default 5 crashes and 20 stalls per profile).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from bench.workload_cluster import crash_to_first_write, deploy_with_workload  # noqa: E402
from lab import machines  # noqa: E402
from lab.client import Lab, wait_until  # noqa: E402
from lab.deployed import boot_deployed  # noqa: E402
from lab.workload import Workload  # noqa: E402
from planner.model import HeartbeatTimings  # noqa: E402

RESULTS = ROOT / "bench/results/failover_timing.json"
LAB = "ft"
ROLE = "pgcascade_workload"
STALL_SECONDS = 2.0
AFTER_STALL = 8.0  # seconds watched after a thaw: past any dead time here, may-promote and the VIP
_DEFAULTS = HeartbeatTimings()
PROFILES: dict[str, dict[str, float]] = {
    "default": {"ha_keepalive": _DEFAULTS.keepalive, "ha_warntime": _DEFAULTS.warntime,
                "ha_deadtime": _DEFAULTS.deadtime, "ha_initdead": _DEFAULTS.initdead},
    # The defaults until 2026-12: heartbeats every second, dead after 3 s.
    "1s-keepalive": {"ha_keepalive": 1, "ha_warntime": 2, "ha_deadtime": 3, "ha_initdead": 6},
}


def heartbeat_restarted_within(lab: Lab, host: str, seconds: float) -> bool:
    out = lab.ssh(host, f"journalctl -u heartbeat --since -{int(seconds) + 1}s -o cat --no-pager").stdout
    return "Configuration validated. Starting heartbeat" in out


def booted(timing: dict) -> tuple[Lab, str]:
    """A fresh cluster with the profile. A deploy that changes ha.cf makes heartbeat reread it (a
    restart): for its initdead after that a dead peer is declared only at initdead's end, so the
    faults wait until neither heartbeat node has restarted for initdead plus a second."""
    lab = boot_deployed(LAB, 3)
    try:
        password = deploy_with_workload(lab, ROLE, "the deploy with the profile failed", extra=timing)
        quiet = timing["ha_initdead"] + 1
        wait_until(lambda: not any(heartbeat_restarted_within(lab, h, quiet) for h in ("pg1", "pg2")),
                   60 + quiet, f"heartbeat not restarted for {quiet:g} s on pg1 and pg2")
        return lab, password
    except BaseException:
        lab.down()
        raise


def crash_run(timing: dict) -> float:
    lab, password = booted(timing)
    try:
        return crash_to_first_write(lab, ROLE, password)
    finally:
        lab.down()


def refusals(lab: Lab) -> int:
    out = lab.ssh("pg2", "journalctl -t pgcascade -o cat --no-pager | grep -c 'may-promote: REFUSED' || true").stdout
    return int(out.strip() or 0)


def stall_runs(timing: dict, runs: int) -> dict:
    lab, password = booted(timing)
    gaps, failovers = [], []
    try:
        with Workload(lab.desc["vip"], 5432, ROLE, password) as load:
            load.wait_for_acks(20, 30)
            for number in range(1, runs + 1):
                stalled = time.monotonic()
                machines.pause(lab.name, "pg1")
                try:
                    time.sleep(max(0.0, stalled + STALL_SECONDS - time.monotonic()))  # the stall itself
                finally:
                    machines.thaw(lab.name, "pg1")
                time.sleep(AFTER_STALL)
                moved = any(a.node != "pg1" for a in load.acks_after(stalled))
                if moved or lab.psql("pg2", "select pg_is_in_recovery()") != "t":
                    failovers.append(number)
                    print(f"  stall {number}: FAILOVER", flush=True)
                    break  # the cluster moved: the count so far is the figure
                load.wait_for_acks(10, 30, after=time.monotonic())
                gaps.append(load.longest_pause(stalled, time.monotonic()))
                print(f"  stall {number}: writes paused {gaps[-1]:.2f} s", flush=True)
        return {"stall_s": STALL_SECONDS, "runs": len(gaps) + len(failovers), "false_failovers": len(failovers),
                "which": failovers, "may_promote_refusals": refusals(lab),
                "write_pause_s": spread(gaps) if gaps else None}
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stalls", type=int, default=20)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    args = parser.parse_args()
    chosen = [p for p in args.profiles.split(",") if p]
    unknown = [p for p in chosen if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(unknown)}: choose from {', '.join(PROFILES)}")
    figures = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in chosen:
        timing, load_before = PROFILES[name], load_average()
        crashes = []
        for number in range(1, args.runs + 1):
            crashes.append(crash_run(timing))
            print(f"{name}: crash {number}: first write on pg2 {crashes[-1]:.2f} s (load {load_average()[0]})",
                  flush=True)
        stalls = stall_runs(timing, args.stalls) if args.stalls else None
        figures[name] = {"timing": timing, "crash_to_first_acknowledged_write_s": spread(crashes) if crashes else None,
                         "stall_2s": stalls, **machine(load_before)}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        if crashes:
            print(f"{name}: crash -> first write median {figures[name]['crash_to_first_acknowledged_write_s']['median']}"
                  f" s, max {figures[name]['crash_to_first_acknowledged_write_s']['max']} s", flush=True)
        if stalls:
            print(f"{name}: 2 s stalls: {stalls['false_failovers']} failover(s) in {stalls['runs']}, "
                  f"{stalls['may_promote_refusals']} refused promotion(s)", flush=True)


if __name__ == "__main__":
    main()
