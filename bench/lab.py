"""Lab timings: cold base build, cached `up` of 3 hosts (target 10 s or less), `down`.

Prints the figures and writes them to bench/results/lab.json. The cold build uses a temporary
cache directory, so the real cache is left alone. Run as root: `.venv/bin/python bench/lab.py`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results/lab.json"


def timed(args: list[str], env: dict | None = None) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def cold_build_seconds() -> dict:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
        env = {**os.environ, "PGCASCADE_LAB_CACHE": cache}
        code = ("import time; from lab import image; t=time.monotonic(); b=image.ensure_base(); "
                "t1=time.monotonic(); image.ensure_repo(b); print(t1-t, time.monotonic()-t1)")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, text=True,
                             capture_output=True).stdout.split()
        subprocess.run(["rm", "-rf", "--one-file-system", cache], check=False)
        os.makedirs(cache, exist_ok=True)
    return {"cold_base_build_s": round(float(out[0]), 1), "cold_repo_build_s": round(float(out[1]), 1)}


def main() -> None:
    figures = cold_build_seconds() if "--skip-cold" not in sys.argv else {}
    timed(["--name", "bench", "down"])
    timed(["--name", "bench", "up", "--hosts", "3"])  # warm the cache (restores from tarball if needed)
    timed(["--name", "bench", "down"])
    ups, downs = [], []
    for _ in range(3):
        ups.append(timed(["--name", "bench", "up", "--hosts", "3"]))
        downs.append(timed(["--name", "bench", "down"]))
    figures.update({"cached_up_3_hosts_s": sorted(ups)[1], "down_3_hosts_s": sorted(downs)[1],
                    "up_target_s": 10, "runs": 3, "statistic": "median"})
    figures = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
