"""Rejoin and switchover, timed on a database of at least 1 GB (pgbench -i -s 70).

One cluster on the lab 'sw', a workload committing through the VIP the whole time. Per cycle:
the master (pg1) crashes, heartbeat promotes pg2, pg1 is restarted (its boot guard keeps its
PostgreSQL down), `tasks/rejoin.py` makes it pg2's standby, and `tasks/switchover.py` puts the
inventory's roles back. Cycles alternate the rejoin method: pg_rewind, then a fresh base backup
(`--data method=basebackup`). Figures, min/median/max per kind:

- rejoin: the rewind or the clone itself (as the old master's journal says), the wall time of
  the rejoin task (its pyinfra run: facts, checkpoint, stop, rewind or clone, start) and from
  its start to pg1 streaming from pg2;
- switchover: the write pause, the longest gap between two acknowledged commits through the
  VIP from the task's start to its end (target: 2 s or less; Patroni: 1.3 s), and the task's
  wall time.

At the end: every acknowledged row is on pg1, and the servers acknowledged in turns
(pg1, pg2, pg1, ...: never two at once). Prints the figures and writes them to
bench/results/switchover_rejoin.json. Run as root:

    .venv/bin/python bench/switchover_rejoin.py [--cycles 10] [--scale 70]
    .venv/bin/python bench/switchover_rejoin.py --cycles 2 --scale 700 --link-rate 1gbit \\
        --results bench/results/rejoin_10gb.json   # 10 GB over a 1 Gbit/s link (make bench)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from lab import network  # noqa: E402
from lab.client import Lab, holds_resources, wait_until  # noqa: E402
from lab.workload import TABLE, Workload, client_inventory, install_sql  # noqa: E402

RESULTS = ROOT / "bench/results/switchover_rejoin.json"
LAB = "sw"
ROLE = "pgcascade_workload"
SWITCHOVER_TARGET = 2.0
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
# WAL files a server has yet to archive (archive_mode = always: the standbys ship theirs too)
READY_FILES = "select count(*) from pg_ls_archive_statusdir() where name like '%.ready'"
PG_WAL = "/var/lib/postgresql/15/main/pg_wal"
# A primary's current timeline (pg_control's is the last checkpoint's: stale just after a promotion).
TIMELINE = "select ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int"


class Cluster:
    def __init__(self, lab: Lab, inventory: str):
        self.lab, self.inventory = lab, inventory

    def task(self, *args: str) -> float:
        """Run a pyinfra task on the cluster; its wall time."""
        started = time.monotonic()
        proc = self.lab.pyinfra("-y", self.inventory, *args)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        return time.monotonic() - started

    def streams_from(self, host: str, upstream: str) -> bool:
        return self.lab.psql(host, "select status || ' ' || sender_host from pg_stat_wal_receiver") == \
            f"streaming {self.lab.ip(upstream)}"

    def inventory_tree(self) -> None:
        """Wait for pg1 master with the VIP, pg2 under it, pg3 under pg2."""
        wait_until(lambda: holds_resources(self.lab, "pg1"), 90, "pg1 holding the resources")
        wait_until(lambda: self.streams_from("pg2", "pg1"), 90, "pg2 streaming from pg1")
        wait_until(lambda: self.streams_from("pg3", "pg2"), 90, "pg3 streaming from pg2")

    def database_bytes(self) -> int:
        return int(self.lab.psql("pg1", "select sum(pg_database_size(oid)) from pg_database"))


def rejoin_journal(lab: Lab, host: str, since: str) -> str:
    """The rejoin's line in the host's journal: which way it went, and how long that step took."""
    return lab.ssh(host, f"journalctl -q -o cat -t pgcascade --since '{since}' | grep 'rejoin: '").stdout


def received_bytes(lab: Lab, host: str) -> int:
    """Bytes sent to the host over its link since it booted (its veth's far end, read on this machine)."""
    return int(Path(f"/sys/class/net/{network.veth_name(lab.name, host)}/statistics/tx_bytes").read_text())


def cycle(cluster: Cluster, load: Workload, method: str, link_rate: str | None = None) -> dict:
    lab = cluster.lab
    crashed = time.monotonic()
    lab.cli("crash", "pg1")
    wait_until(lambda: load.first_ack_after(crashed, node="pg2"), 60, "writes on pg2", interval=0.1)
    wait_until(lambda: lab.psql("pg3", "select received_tli from pg_stat_wal_receiver where status = 'streaming'")
               == lab.psql("pg2", TIMELINE), 60, "pg3 on pg2's timeline")
    lab.cli("restart", "pg1")
    if link_rate:  # the restart made its link anew
        lab.cli("shape", "pg1", link_rate)
    since = lab.ssh("pg1", "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()

    # pg_rewind (PostgreSQL 15) copies the source's whole pg_wal: what it holds says much of its time.
    source_wal = int(lab.ssh("pg2", f"du -sb {PG_WAL} | cut -f1").stdout)
    received = received_bytes(lab, "pg1")
    started = time.monotonic()
    rejoin_task = cluster.task("tasks/rejoin.py", "--data", f"method={method}")
    wait_until(lambda: cluster.streams_from("pg1", "pg2"), 1800, "pg1 streaming from pg2", interval=0.1)
    rejoin_streaming = time.monotonic() - started
    received = received_bytes(lab, "pg1") - received
    said = rejoin_journal(lab, "pg1", since)
    step = re.search(r"\((pg_rewind|base backup), ([0-9.]+) s", said)
    if not step or step.group(1) != ("pg_rewind" if method == "rewind" else "base backup"):
        sys.exit(f"rejoin with method {method}: pg1's journal says:\n{said}")

    started = time.monotonic()
    switchover_task = cluster.task("tasks/switchover.py")
    ended = time.monotonic()
    load.wait_for_acks(10, 60, after=ended)
    acked = sorted(a.acked for a in load.acks_after(started - 2) if a.acked < ended + 2)
    pause = max((b - a for a, b in zip(acked, acked[1:])), default=float("inf"))
    cluster.inventory_tree()
    return {"method": method, "rejoin_step_s": float(step.group(2)), "rejoin_task_s": rejoin_task,
            "rejoin_to_streaming_s": rejoin_streaming, "rejoin_received_bytes": received,
            "source_pg_wal_bytes": source_wal,
            "switchover_pause_s": pause, "switchover_task_s": switchover_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="crash/rejoin/switchover cycles (methods alternate)")
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70: about 1.05 GB)")
    parser.add_argument("--link-rate", help="the old master's link shaped to this rate while it rejoins (tc: 1gbit)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args()
    load_before = load_average()
    lab = Lab(LAB, 3)
    try:
        with tempfile.TemporaryDirectory() as directory:
            cluster = Cluster(lab, client_inventory(lab.desc, Path(directory), ROLE))
            cluster.task("deploy.py")
            cluster.inventory_tree()
            started = time.monotonic()
            proc = lab.ssh("pg1", f"cd / && runuser -u postgres -- {PGBENCH} -i -q -s {args.scale} postgres",
                           timeout=1800)
            if proc.returncode != 0:
                sys.exit(f"pgbench -i failed: {proc.stderr[-2000:]}")
            print(f"pgbench -i -s {args.scale}: {time.monotonic() - started:.0f} s", flush=True)
            # A database in its steady state, checkpointed since the load: right after a bulk load
            # of more than wal_keep_size, the master's last checkpoint before a crash can be older
            # than any WAL it kept, and pg_rewind cannot find it ("could not find previous WAL
            # record"): the rejoin then takes a base backup instead (it says so in the journal).
            lab.psql("pg1", "checkpoint")
            # The steady state: every WAL file of the load archived (pg1 to pg2, pg2 to pg3), then a
            # checkpoint and a restartpoint recycle them; right after a bulk load the servers still
            # hold gigabytes of WAL, which pg_rewind would copy whole.
            wait_until(lambda: all(lab.psql(h, READY_FILES) == "0" for h in ("pg1", "pg2")), 1800,
                       "the load's WAL archived", interval=5)
            lab.psql("pg1", "checkpoint")
            lab.psql("pg2", "checkpoint")
            size = cluster.database_bytes()
            password = secrets.token_urlsafe(24)
            lab.psql("pg1", install_sql(ROLE, password, os.urandom(16)))
            runs = []
            with Workload(lab.desc["vip"], 5432, ROLE, password, max_seconds=4 * 3600,
                          max_rows=10_000_000) as load:
                load.wait_for_acks(20, 30)
                for number in range(args.cycles):
                    runs.append(cycle(cluster, load, ("rewind", "basebackup")[number % 2], args.link_rate))
                    print(f"cycle {number + 1}: " + ", ".join(
                        f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in runs[-1].items()),
                        flush=True)
            acked = {a.n for a in load.acks}
            present = set(map(int, lab.psql("pg1", f"select n from {TABLE}").split()))
            lost = sorted(acked - present)
            turns: list[str] = []
            for ack in sorted(load.acks, key=lambda a: a.acked):
                if not turns or turns[-1] != ack.node:
                    turns.append(ack.node)
    finally:
        lab.down()
    if lost:
        sys.exit(f"acknowledged rows missing on pg1: {lost[:20]} ({len(lost)} in all)")
    if turns != ["pg1", "pg2"] * args.cycles + ["pg1"]:
        sys.exit(f"the servers did not acknowledge in turns: {turns}")

    def of(method: str, key: str) -> list[float]:
        return [r[key] for r in runs if method in ("any", r["method"])]

    figures = {
        "database_bytes": size,
        "pgbench_scale": args.scale,
        "link_rate": args.link_rate or "unshaped",
        "acknowledged_rows": len(acked),
        "rejoin_pg_rewind": {"step_s": spread(of("rewind", "rejoin_step_s")),
                             "task_s": spread(of("rewind", "rejoin_task_s")),
                             "to_streaming_s": spread(of("rewind", "rejoin_to_streaming_s")),
                             "received_bytes": spread(of("rewind", "rejoin_received_bytes"))},
        "rejoin_base_backup": {"step_s": spread(of("basebackup", "rejoin_step_s")),
                               "task_s": spread(of("basebackup", "rejoin_task_s")),
                               "to_streaming_s": spread(of("basebackup", "rejoin_to_streaming_s")),
                               "received_bytes": spread(of("basebackup", "rejoin_received_bytes"))},
        "switchover": {"write_pause_s": spread(of("any", "switchover_pause_s"), target_median=SWITCHOVER_TARGET),
                       "task_s": spread(of("any", "switchover_task_s"))},
        "runs": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
        **machine(load_before),
    }
    rewind, clone = figures["rejoin_pg_rewind"]["step_s"], figures["rejoin_base_backup"]["step_s"]
    if rewind.get("median") and clone.get("median"):
        # pg_rewind's time as a share of the base backup's (target: under 10 % on a large database)
        figures["rewind_over_base_backup"] = round(rewind["median"] / clone["median"], 3)
    args.results.parent.mkdir(exist_ok=True)
    args.results.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"database: {size / 1e9:.2f} GB; {len(acked)} acknowledged rows, none lost, one writer at a time")
    for name, key in (("rejoin, pg_rewind", "rejoin_pg_rewind"), ("rejoin, base backup", "rejoin_base_backup")):
        s = figures[key]["to_streaming_s"]
        print(f"{name}: to streaming min {s['min']} median {s['median']} max {s['max']} s "
              f"(task median {figures[key]['task_s']['median']} s; the rewind or clone itself: median "
              f"{figures[key]['step_s']['median']} s, {figures[key]['received_bytes']['median'] / 1e6:.0f} MB received)")
    if "rewind_over_base_backup" in figures:
        print(f"pg_rewind's time over the base backup's: {figures['rewind_over_base_backup']:.1%}")
    s = figures["switchover"]["write_pause_s"]
    print(f"switchover write pause: min {s['min']} median {s['median']} max {s['max']} s over {s['runs']} "
          f"(target: median {SWITCHOVER_TARGET} s or less)")


if __name__ == "__main__":
    main()
