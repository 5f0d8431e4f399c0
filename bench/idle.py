"""Idle cost per lab host: CPU time each host (and each of its services) used over 60 s of an
idle deployed cluster, as a percentage of one core, read from the hosts' cgroups (cpu.stat's
usage_usec, cgroup v2) on the main machine, so the measurement adds nothing inside the hosts.

Two clusters side by side in the same window: pgcascade's (lab 'pic', deploy.py) and the
Patroni peer's (lab 'pip', bench/peers/deploy.py: Patroni, etcd, vip-manager), each on 3
hosts. Prints the figures and writes bench/results/idle.json with the machine's load. Run as
root: `.venv/bin/python bench/idle.py [--seconds 60] [--no-peer] [--subnet CIDR]`. The labs are removed at the end.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine  # noqa: E402
from lab.client import Lab, holds_resources, wait_until  # noqa: E402
from lab.machines import CGROUP_TREES  # noqa: E402

RESULTS = ROOT / "bench/results/idle.json"
UNIFIED = CGROUP_TREES[1]


def usage_usec(cgroup: Path) -> int:
    for line in (cgroup / "cpu.stat").read_text().splitlines():
        key, value = line.split()
        if key == "usage_usec":
            return int(value)
    raise KeyError(f"{cgroup}/cpu.stat has no usage_usec")


def cgroups_of(lab: str, host: str) -> dict[str, Path]:
    """The host's cgroup ('host': everything, nspawn included), each of its system services',
    init.scope (systemd itself: what answers systemctl) and user.slice (ssh sessions: what other
    hosts run here, e.g. ha-watch's streamed node states)."""
    top = UNIFIED / "pgl" / lab / host
    found = {"host": top}
    slice_ = top / "payload/system.slice"
    for unit in sorted(slice_.glob("*.service")) + sorted(slice_.glob("system-*.slice")):
        found[unit.name] = unit
    for name in ("init.scope", "user.slice"):
        if (top / "payload" / name).is_dir():
            found[name] = top / "payload" / name
    return found


def sample(labs_hosts: dict[str, list[str]]) -> dict[tuple[str, str, str], int]:
    values = {}
    for lab, hosts in labs_hosts.items():
        for host in hosts:
            for name, path in cgroups_of(lab, host).items():
                try:
                    values[(lab, host, name)] = usage_usec(path)
                except FileNotFoundError:
                    continue  # a unit that went away
    return values


def percent_of_a_core(before: dict, after: dict, seconds: float) -> dict:
    """{lab: {host: {"host": %, "services": {unit: %}}}}: only units that used something."""
    out: dict = {}
    for (lab, host, name), start in before.items():
        if (lab, host, name) not in after:
            continue
        value = round(100 * (after[(lab, host, name)] - start) / (seconds * 1e6), 2)
        entry = out.setdefault(lab, {}).setdefault(host, {"host": None, "services": {}})
        if name == "host":
            entry["host"] = value
        elif value > 0:
            entry["services"][name] = value
    for hosts in out.values():
        for entry in hosts.values():
            entry["services"] = dict(sorted(entry["services"].items(), key=lambda kv: -kv[1]))
    return out


def deployed(name: str, deploy_file: str, subnet: str | None = None) -> Lab:
    lab = Lab(name, 3, subnet=subnet)
    proc = lab.pyinfra("-y", "inventories/lab.py", deploy_file)
    if proc.returncode != 0:
        lab.down()
        raise AssertionError(f"{deploy_file} on lab {lab.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-peer", action="store_true", help="pgcascade's cluster only")
    parser.add_argument("--subnet", help="pgcascade's lab on this /27 (when no free one is left: a snapshot's "
                                         "that no lab is booted from)")
    args = parser.parse_args()
    load_before = load_average()
    clusters: dict[str, Lab] = {}
    try:
        clusters["pgcascade"] = deployed("pic", "deploy.py", args.subnet)
        wait_until(lambda: holds_resources(clusters["pgcascade"], "pg1"), 90, "heartbeat giving pg1 the resources")
        if not args.no_peer:
            from bench.peers.cluster import Peer
            clusters["patroni"] = deployed("pip", "bench/peers/deploy.py")
            Peer(clusters["patroni"].desc).wait_healthy(120)
        hosts = {lab.name: [h["name"] for h in lab.desc["hosts"]] for lab in clusters.values()}
        load_window = load_average()
        started, before = time.monotonic(), sample(hosts)
        time.sleep(args.seconds)  # the measurement window itself: nothing is waited for
        elapsed, after = time.monotonic() - started, sample(hosts)
    finally:
        for lab in clusters.values():
            lab.down()
    by_lab = percent_of_a_core(before, after, elapsed)
    kept = {}
    if args.no_peer and RESULTS.exists():  # the peer's figures of an earlier run stay, said as such
        earlier = json.loads(RESULTS.read_text())
        if "patroni" in earlier:
            kept = {"patroni": earlier["patroni"],
                    "patroni_from_an_earlier_run": earlier.get("patroni_from_an_earlier_run")  # that run's, kept
                    or {k: earlier.get(k) for k in ("window_s", "load_average_at_window_start")}}
    figures = {
        **kept,
        "what": "CPU used over the window, percent of one core, per host cgroup and per service",
        "window_s": round(elapsed, 1), "load_average_at_window_start": load_window,
        **{product: by_lab.get(lab.name, {}) for product, lab in clusters.items()},
        **machine(load_before),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    for product, lab in clusters.items():
        for host, entry in by_lab.get(lab.name, {}).items():
            top = ", ".join(f"{unit} {value}" for unit, value in list(entry["services"].items())[:4])
            print(f"{product} {host}: {entry['host']} % of a core ({top})")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
