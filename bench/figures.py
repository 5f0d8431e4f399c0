"""What every bench script reports: min/median/max of a list of timings, and the machine's load
(other labs on the machine slow everything down, so each results file says how busy it was)."""
from __future__ import annotations

import os
import statistics


def spread(values: list[float], **extra) -> dict:
    """min, median, max (rounded to 10 ms), how many runs and the values, plus e.g. a target."""
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2), "runs": len(values), "values": [round(v, 2) for v in values], **extra}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(load_before: list[float]) -> dict:
    """The machine's side of a results file."""
    return {"load_average_before": load_before, "load_average_after": load_average(), "cpus": os.cpu_count()}
