"""Deploy timings on lab hosts (issues 9 and 12): full deploy on 3 bare hosts (target 60 s or
less), a no-op rerun (target 5 s or less) and the status command (target 2 s or less).

Also, independent of the machine's load: the operations a no-op rerun goes through and the facts
it still reads one by one (-v's "Loaded fact" lines: those its steps ask with other arguments
than deploys/run_facts.py declares; target 0), and the load average before and after.

Prints the figures and writes them to bench/results/deploy.json. Uses its own lab ('bench', or
$PGCASCADE_BENCH_LAB), removed at the end. Run as root: `.venv/bin/python bench/deploy.py [--runs N]`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402

RESULTS = ROOT / "bench/results/deploy.json"
LAB = os.environ.get("PGCASCADE_BENCH_LAB", "bench")  # another name beside another checkout's bench
ENV = {**os.environ, "PGCASCADE_LAB": LAB}


def run(args: list[str], output: list | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=ENV, text=True, capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0,):
        sys.exit(f"failed: {' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if output is not None:
        output.append(proc.stdout + proc.stderr)
    return elapsed


def lab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lab", "--name", LAB, *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def settle(deadline_s: float = 180) -> None:
    """Until tasks.status exits 0 (the VIP on the master, the standbys streaming)."""
    end = time.monotonic() + deadline_s
    while subprocess.run([sys.executable, "-m", "tasks.status", "inventories/lab.py"], cwd=ROOT, env=ENV,
                         capture_output=True, stdin=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() > end:
            sys.exit(f"the deployed cluster did not settle within {deadline_s:g} s (tasks.status)")
        time.sleep(1)


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    pyinfra = str(ROOT / ".venv/bin/pyinfra")
    full: list[float] = []
    noop: list[float] = []
    status: list[float] = []
    outputs: list[str] = []
    verbose: list[str] = []
    load_before = load_average()
    try:
        for _ in range(runs):
            lab("down")
            lab("up", "--hosts", "3")
            full.append(run([pyinfra, "-y", "inventories/lab.py", "deploy.py"]))
            settle()  # heartbeat takes the resources a few seconds after the deploy: untimed
            noop.append(run([pyinfra, "-y", "inventories/lab.py", "deploy.py"], outputs))
            status.append(run([sys.executable, "-m", "tasks.status", "inventories/lab.py"]))
            noop.append(run([pyinfra, "-y", "inventories/lab.py", "deploy.py"], outputs))
            status.append(run([sys.executable, "-m", "tasks.status", "inventories/lab.py"]))
        run([pyinfra, "-y", "-v", "inventories/lab.py", "deploy.py"], verbose)  # untimed: what it reads
    finally:
        lab("down")
    figures: dict[str, object] = {}
    for label, values, target in (("full_deploy_3_bare_hosts_s", full, 60), ("noop_rerun_s", noop, 5),
                                  ("status_command_s", status, 2)):
        figures[label] = spread(values, target=target)
    # Independent of the machine's load: how many operations a no-op rerun goes through.
    figures["noop_rerun_operations"] = max(o.count("--> Starting operation") for o in outputs)
    figures["noop_rerun_changes"] = max(o.count("] Success") for o in outputs)  # a rerun changes nothing: 0
    figures["noop_rerun_live_fact_reads"] = verbose[0].count("Loaded fact")  # beyond one command per host
    figures.update(machine(load_before))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    for label, stats in ((k, v) for k, v in figures.items() if isinstance(v, dict)):
        print(f"{label}: min {stats['min']} median {stats['median']} max {stats['max']} (target {stats['target']})")


if __name__ == "__main__":
    main()
