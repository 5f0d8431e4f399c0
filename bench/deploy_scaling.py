"""How the deploy grows with hosts: a full deploy on bare hosts and a no-op rerun (once the
cluster is healthy: tasks.status exits 0), on 3, 5 and 9 lab hosts (pg1 master, pg2 cascade,
the rest downstream), and optionally `make demo` warm (base image and repository cached: lab
up, deploy, status) and cold (an empty lab cache: the base image and the repository are built
first; needs the Debian mirror).

Prints the figures and writes bench/results/deploy_scaling.json with the machine's load. Run as
root: `.venv/bin/python bench/deploy_scaling.py [--hosts 3,5,9] [--demo] [--cold-demo]`. Labs 'pdN' and
'pdemo' (another letter than p: $PGCASCADE_BENCH_LAB_LETTER), removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine  # noqa: E402
from lab.client import Lab  # noqa: E402

RESULTS = ROOT / "bench/results/deploy_scaling.json"
LETTER = os.environ.get("PGCASCADE_BENCH_LAB_LETTER", "p")  # beside other checkouts' labs


class DeployFailed(Exception):
    pass


def timed_deploy(lab: Lab, outputs: list | None = None) -> float:
    started = time.monotonic()
    proc = lab.pyinfra("-y", "inventories/lab.py", "deploy.py", timeout=1800)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        errors = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
                  if "error" in line.lower() or "fatal" in line.lower()]
        raise DeployFailed(f"after {elapsed:.0f} s: " + " | ".join(errors[-6:]))
    if outputs is not None:
        outputs.append(proc.stdout + proc.stderr)
    return round(elapsed, 1)


def hosts_series(count: int) -> dict:
    """The figures, or why the deploy failed (recorded: a failure at N hosts is a result too)."""
    lab = Lab(f"{LETTER}d{count}", count)
    try:
        full = timed_deploy(lab)
        load_after_full = load_average()
        lab.wait_healthy(300)  # heartbeat takes the resources a few seconds after the deploy: untimed
        outputs: list[str] = []
        noop = timed_deploy(lab, outputs)
    except (DeployFailed, AssertionError) as failure:
        return {"failed": str(failure)[-2000:], "load_average_at_failure": load_average()}
    finally:
        lab.down()
    return {"full_deploy_s": full, "noop_rerun_s": noop, "noop_rerun_changes": outputs[0].count("] Success"),
            "load_average_after_full": load_after_full, "load_average_after_noop": load_average()}


def timed_demo(kind: str, cache: str | None = None) -> dict:
    """`make demo` on its own lab, timed; cache: another lab cache directory (cold: empty)."""
    name = f"{LETTER}demo"
    env = {**os.environ, "LAB": name, **({"PGCASCADE_LAB_CACHE": cache} if cache else {})}
    subprocess.run(["make", "down", f"LAB={name}"], cwd=ROOT, env=env, capture_output=True)
    started = time.monotonic()
    proc = subprocess.run(["make", "demo", f"LAB={name}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    subprocess.run(["make", "down", f"LAB={name}"], cwd=ROOT, env=env, capture_output=True)
    if proc.returncode != 0:
        return {f"make_demo_{kind}_failed": (proc.stdout + proc.stderr).strip()[-500:]}
    return {f"make_demo_{kind}_s": round(elapsed, 1)}


def cold_demo() -> dict:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
        try:
            return timed_demo("cold", cache)
        finally:  # the image's files belong to root and may hold mount points' leftovers
            subprocess.run(["rm", "-rf", "--one-file-system", cache], check=False)
            os.makedirs(cache, exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="3,5,9")
    parser.add_argument("--demo", action="store_true", help="also time `make demo` with a warm cache")
    parser.add_argument("--cold-demo", action="store_true", help="also time `make demo` with an empty cache")
    args = parser.parse_args()
    load_before = load_average()
    figures: dict = {"by_hosts": {}}
    for count in (int(n) for n in args.hosts.split(",")):
        figures["by_hosts"][str(count)] = hosts_series(count)
        print(f"{count} hosts: {figures['by_hosts'][str(count)]}", flush=True)
    if args.demo:
        figures.update(timed_demo("warm"))
        print(f"make demo (warm): {figures.get('make_demo_warm_s', figures.get('make_demo_warm_failed'))}", flush=True)
    if args.cold_demo:
        figures.update(cold_demo())
        print(f"make demo (cold): {figures.get('make_demo_cold_s', figures.get('make_demo_cold_failed'))}", flush=True)
    figures.update(machine(load_before))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
