"""The test suite, timed: runs pytest (every test, or the arguments given) and writes its duration,
the counts and its 15 slowest tests (setup + call + teardown) to bench/results/suite.json, with
the machine's load (other labs on the machine slow everything down). Exits with pytest's code.

Run as root: `.venv/bin/python bench/suite.py [PYTEST ARGS...]` (`make test` does).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine  # noqa: E402

RESULTS = ROOT / "bench/results/suite.json"
SLOWEST = 15


def summarize(junit_xml: str) -> dict:
    """Counts and the slowest tests of a pytest junit XML report."""
    root = ElementTree.fromstring(junit_xml)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    cases = [(f"{c.get('classname', '').replace('.', '/')}.py::{c.get('name')}", float(c.get("time", 0)))
             for s in suites for c in s.iter("testcase")]
    cases.sort(key=lambda case: -case[1])
    by_dir: dict[str, float] = {}
    for name, seconds in cases:
        top = "/".join(name.split("/")[:2])
        by_dir[top] = by_dir.get(top, 0.0) + seconds
    return {**counts, "seconds_by_directory": {k: round(v, 1) for k, v in sorted(by_dir.items())},
            "slowest": [{"test": name, "seconds": round(seconds, 2)} for name, seconds in cases[:SLOWEST]]}


def main(args: list[str]) -> int:
    before = load_average()
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "junit.xml"
        started = time.monotonic()
        code = subprocess.run([sys.executable, "-m", "pytest", f"--junitxml={report}",
                               "-o", "junit_duration_report=total", *args], cwd=ROOT).returncode
        seconds = time.monotonic() - started
        summary = summarize(report.read_text()) if report.exists() else {}
    result = {"command": "pytest " + " ".join(args), "exit_code": code, "seconds": round(seconds, 1),
              "minutes": round(seconds / 60, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **summary,
              "machine": machine(before)}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"suite: {result['minutes']} min, exit {code}; written to {RESULTS.relative_to(ROOT)}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
