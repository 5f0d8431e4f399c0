"""pgcascade and its peer (Patroni 3.0 + etcd 3.4 + vip-manager 1.0) on the same lab hosts,
with the same workload and the same faults; one results file with both and their ratio.

For each fault (the master's machine crashes; its network is cut; it hangs, frozen, until the
other side took over) the figure is the same as bench/failover_master.py's: from the fault to
the first write acknowledged through the VIP by another server (lab/workload.py, two
workers committing synchronously). pgcascade: a fresh cluster per run (lab 'pgc', booted from
the snapshot of a deployed cluster, lab/deployed.py), the fault on pg1. Patroni: one cluster
(lab 'peers'), the fault on whichever member leads, the member repaired (booted again,
reconnected, thawed) and the cluster healthy again before the next run; first with Patroni's
default timing, then with the fastest timing current Patroni accepts
(bench/peers/patroni_files.py). Also for Patroni: the leader frozen 2 s (a GC-like stall), how
many of those ended in a failover.

Both products run at the same time, each on its own lab, so both see the same machine load.
Prints the figures and writes bench/results/peers.json with the machine's load. Run as root:
`.venv/bin/python bench/peers/failover.py [--runs N] [--pause-runs N] [--faults crash,partition,pause]`
(defaults 3, 20, all three). To iterate on one side: `--only patroni|pgcascade`,
`--profiles defaults,fastest` (Patroni's), `--keep-lab` (Patroni's lab left up, to read its logs);
a run with `--only` has no ratios. The labs are removed at the end (but for `--keep-lab`). PGCASCADE_TEST_LAB_PREFIX=p
(one letter) prefixes the labs and the snapshot, as for the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from bench.peers import patroni_files as pf  # noqa: E402
from bench.peers.cluster import Peer  # noqa: E402
from bench.workload_cluster import deploy_with_workload  # noqa: E402
from lab import labs, machines, network  # noqa: E402
from lab.client import Lab, holds_resources, wait_until  # noqa: E402
from lab.deployed import ensure_deployed_snapshot  # noqa: E402
from lab.workload import Workload, install_sql  # noqa: E402

RESULTS = ROOT / "bench/results/peers.json"
ROLE = "pgcascade_workload"
FAULTS = ("crash", "partition", "pause")
FAILOVER_DEADLINE = 120  # s: Patroni's default ttl is 30 s; anything near this is a failure
STALL_SECONDS = 2.0
# `lab up` chooses a free subnet without a lock: two labs coming up at once can pick the same one.
UP_LOCK = threading.Lock()
BOOT_DEADLINE = 300  # s: a snapshot boots to a healthy cluster in about 30 s at load 30-50; seen over 120 s


def break_host(lab: str, host: str, fault: str) -> None:
    {"crash": machines.crash, "partition": network.partition, "pause": machines.pause}[fault](lab, host)


def repair_host(lab: str, host: str, fault: str) -> None:
    {"crash": labs.restart, "partition": network.heal, "pause": machines.thaw}[fault](lab, host)


def first_ack_elsewhere(load: Workload, after: float, old: str):
    return min((a for a in load.acks_after(after) if a.node != old), key=lambda a: a.acked, default=None)


def measure(lab: Lab, password: str, fault: str) -> dict:
    """The fault on the server that acknowledges the workload's writes (read from the writes
    themselves, not from a cluster view that may be stale), seconds to the first write another
    server acknowledged through the VIP, and any overlap of two servers' acknowledgements."""
    with Workload(lab.desc["vip"], 5432, ROLE, password) as load:
        load.wait_for_acks(20, 30)
        victim = max(load.acks_after(None), key=lambda a: a.acked).node
        broken = time.monotonic()
        break_host(lab.name, victim, fault)
        try:
            first = wait_until(lambda: first_ack_elsewhere(load, broken, victim), FAILOVER_DEADLINE,
                               f"a write acknowledged through the VIP by a server other than {victim}", interval=0.05)
        finally:
            if fault != "crash":
                repair_host(lab.name, victim, fault)
        load.wait_for_acks(10, 30, after=first.acked)
    return {"seconds": first.acked - broken, "old": victim, "new": first.node, "overlaps": load.overlaps()}


# ---- pgcascade

class BootFailed(Exception):
    pass


def _assertion(message: str) -> NoReturn:
    raise AssertionError(message)


def pgcascade_run(fault: str, snapshot: str) -> dict:
    """A fresh cluster: booted from the snapshot of a deployed one, then the deploy again with
    the main machine admitted as a client (a pg_hba line, a reload)."""
    with UP_LOCK:
        lab = Lab("pgc", 3, snapshot=snapshot)
    try:
        try:
            wait_until(lambda: holds_resources(lab, "pg1"), BOOT_DEADLINE,
                       "heartbeat giving pg1 the resources after the boot")
            lab.wait_healthy(BOOT_DEADLINE)
        except AssertionError as error:
            state = lab.ssh("pg1", "systemctl is-active heartbeat postgresql@15-main; cl_status rscstatus; "
                                   "ls /run/pgcascade", timeout=20)
            raise BootFailed(f"{error}; pg1: {' '.join((state.stdout + state.stderr).split())}") from None
        password = deploy_with_workload(lab, ROLE, "pgcascade's deploy failed", fail=_assertion)
        result = measure(lab, password, fault)
        if result["old"] != "pg1":
            raise AssertionError(f"pgcascade: {result['old']} acknowledged the writes before the fault, not pg1")
        return result
    finally:
        lab.down()


def pgcascade_series(faults: list[str], runs: int) -> dict:
    """Each fault `runs` times; a cluster that did not come back from the snapshot is booted
    again (at most 2 * `runs` times in all) and the failure recorded."""
    snapshot = ensure_deployed_snapshot(3)
    out: dict = {"boot_failures": []}
    for fault in faults:
        results: list[dict] = []
        while len(results) < runs:
            try:
                results.append(pgcascade_run(fault, snapshot))
            except BootFailed as failure:
                out["boot_failures"].append(str(failure))
                print(f"pgcascade {fault}: boot from the snapshot failed: {failure}", flush=True)
                if len(out["boot_failures"]) > 2 * runs:
                    raise
                continue
            print(f"pgcascade {fault} {len(results)}: {results[-1]['seconds']:.2f} s "
                  f"(load {load_average()[0]})", flush=True)
        out[fault] = figures_of(results)
        publish("pgcascade", fault, out[fault])
    return out


# ---- Patroni

def patroni_lab() -> tuple[Lab, Peer, str]:
    with UP_LOCK:
        lab = Lab("peers", 3)
    proc = lab.pyinfra("-y", "inventories/lab.py", "bench/peers/deploy.py")
    if proc.returncode != 0:
        lab.down()
        raise AssertionError(f"the Patroni deploy failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    peer = Peer(lab.desc)
    peer.wait_healthy(120)
    password = secrets.token_urlsafe(24)
    leader = peer.leader()
    if leader is None:  # wait_healthy saw one
        raise AssertionError("Patroni has no leader after its deploy")
    lab.psql(leader, install_sql(ROLE, password, os.urandom(16)))
    return lab, peer, password


def patroni_fault_run(lab: Lab, peer: Peer, password: str, fault: str) -> dict:
    """The cluster healthy first (peer.healthy(): from etcd's quorum, the leader and each member's
    own report; a repaired member's cached view says nothing), then the fault on the leader."""
    waited = time.monotonic()
    peer.wait_healthy(300)
    waited = time.monotonic() - waited
    result = measure(lab, password, fault)
    if fault == "crash":
        repair_host(lab.name, result["old"], fault)
    return {**result, "healthy_after_s": round(waited, 1)}


def patroni_stalls(lab: Lab, peer: Peer, runs: int, timing: dict) -> dict:
    """The leader frozen STALL_SECONDS, `runs` times: a failover is another member in the leader
    key at its first change after the thaw (the old leader renewing it, or someone else taking it)."""
    failovers = []
    for number in range(1, runs + 1):
        peer.wait_healthy(300)
        before = peer.leader_key()
        leader = before["value"]
        machines.pause(lab.name, leader)
        frozen = time.monotonic()
        try:
            time.sleep(max(0.0, frozen + STALL_SECONDS - time.monotonic()))  # the stall itself, not a wait for a state
        finally:
            machines.thaw(lab.name, leader)

        def settled(before=before):
            key = peer.leader_key()
            return key if key["modifiedIndex"] > before["modifiedIndex"] else None
        key = wait_until(settled, timing["ttl"] + timing["loop_wait"] + 30, "the leader key renewed after the stall")
        if key["value"] != leader:
            failovers.append({"run": number, "from": leader, "to": key["value"]})
            print(f"  stall {number}: FAILOVER {leader} -> {key['value']}", flush=True)
    return {"stall_s": STALL_SECONDS, "runs": runs, "false_failovers": len(failovers), "which": failovers}


def patroni_series(faults: list[str], runs: int, pause_runs: int, profiles: list[str] | None = None,
                   keep_lab: bool = False) -> dict:
    out = {}
    lab, peer, password = patroni_lab()
    try:
        for profile, timing in pf.PROFILES.items():
            if profiles is not None and profile not in profiles:
                continue
            if profile != "defaults":
                peer.wait_healthy(300)
                key = peer.set_timing(timing)
                print(f"patroni timing {profile}: {timing} (leader key ttl now {key['ttl']} s)", flush=True)
            figures: dict = {"timing": timing}
            for fault in faults:
                results, failed = [], None
                for number in range(1, runs + 1):
                    try:
                        results.append(patroni_fault_run(lab, peer, password, fault))
                    except AssertionError as error:  # this fault's series ends; the next one is tried
                        failed = f"run {number}: {error}"[:1000]
                        print(f"patroni {profile} {fault} {number}: FAILED: {error}", flush=True)
                        break
                    print(f"patroni {profile} {fault} {number}: {results[-1]['seconds']:.2f} s "
                          f"({results[-1]['new']}; healthy {results[-1]['healthy_after_s']} s before it; "
                          f"load {load_average()[0]})", flush=True)
                figures[fault] = {**(figures_of(results) if results else {}), **({"failed": failed} if failed else {})}
                publish(f"patroni_{profile}", fault, figures[fault])
            if pause_runs:
                figures["stall_2s"] = patroni_stalls(lab, peer, pause_runs, timing)
                publish(f"patroni_{profile}", "stall_2s", figures["stall_2s"])
                print(f"patroni {profile} 2 s stalls: {figures['stall_2s']['false_failovers']} failovers "
                      f"in {pause_runs}", flush=True)
            out[f"patroni_{profile}"] = figures
    finally:
        if keep_lab:
            print(f"patroni: lab {lab.name} left up", flush=True)
        else:
            lab.down()
    return out


# ---- the run

_written: dict = {}
_write_lock = threading.Lock()


def publish(section: str, key: str, value) -> None:
    """Put one finished figure into the results file at once (a series cut short keeps what it did)."""
    with _write_lock:
        _written.setdefault(section, {})[key] = value
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps({**_written, "partial": True, "load_average_now": load_average()},
                                      indent=2, sort_keys=True) + "\n")

def figures_of(results: list[dict]) -> dict:
    return {**spread([r["seconds"] for r in results]), "old_leaders": [r["old"] for r in results],
            "new_leaders": [r["new"] for r in results],
            "overlapping_acknowledgements": sum(len(r["overlaps"]) for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pause-runs", type=int, default=20)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--only", choices=("pgcascade", "patroni"),
                        help="measure one product only (for iterating on it; the ratio needs both)")
    parser.add_argument("--profiles", default=",".join(pf.PROFILES),
                        help="Patroni's timing profiles to measure (each but 'defaults' is switched to "
                             "on the running cluster)")
    parser.add_argument("--keep-lab", action="store_true", help="leave Patroni's lab up at the end (to read its logs)")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}: choose from {', '.join(FAULTS)}")
    profiles = [p for p in args.profiles.split(",") if p]
    if set(profiles) - set(pf.PROFILES) or not profiles:
        parser.error(f"unknown profiles in {args.profiles!r}: choose from {', '.join(pf.PROFILES)}")
    load_before = load_average()
    started = time.monotonic()
    out: dict = {"faults": {"crash": "the machine dies (every process, its addresses)",
                            "partition": "its network cut", "pause": "every process frozen until the others took over"},
                 "figure": "fault -> first write acknowledged through the VIP by another server (s)"}

    # Both products at once, each on its own lab: the machine's load is the same for both.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {}
        if args.only in (None, "pgcascade"):
            futures["pgcascade"] = pool.submit(pgcascade_series, faults, args.runs)
        if args.only in (None, "patroni"):
            futures["patroni"] = pool.submit(patroni_series, faults, args.runs, args.pause_runs,
                                             profiles, args.keep_lab)
        for name, future in futures.items():
            try:
                figures = future.result()
            except Exception as error:  # the other product's figures are still worth writing
                out[f"{name}_failed"] = f"{type(error).__name__}: {error}"[:2000]
                print(f"{name}: FAILED: {error}", flush=True)
                continue
            out.update({"pgcascade": figures} if name == "pgcascade" else figures)
    for section, published in _written.items():  # a product whose series failed keeps what it finished
        out.setdefault(section, published)
    pgcascade = out.get("pgcascade", {})

    out["ratio_patroni_median_to_pgcascade_median"] = {
        profile: {fault: round(out[f"patroni_{profile}"][fault]["median"] / pgcascade[fault]["median"], 2)
                  for fault in faults if "median" in pgcascade.get(fault, {})
                  and "median" in out.get(f"patroni_{profile}", {}).get(fault, {})}
        for profile in pf.PROFILES}
    out["bench_minutes"] = round((time.monotonic() - started) / 60, 1)
    out.update(machine(load_before))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    for fault in faults:
        if any(fault not in out["ratio_patroni_median_to_pgcascade_median"][p] for p in pf.PROFILES):
            continue
        line = [f"{fault}: pgcascade median {pgcascade[fault]['median']} s"]
        for profile in pf.PROFILES:
            line.append(f"Patroni {profile} {out[f'patroni_{profile}'][fault]['median']} s "
                        f"(x{out['ratio_patroni_median_to_pgcascade_median'][profile][fault]})")
        print("; ".join(line))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
