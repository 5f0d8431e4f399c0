"""Backups on a database of at least 1 GB (pgbench -i -s 70): how long pgBackRest takes to back
it up and to restore it, and a standby rebuilt from the repository against a base backup from its
upstream.

One 4-host lab 'bkb' (pg4 the repository host). Per run:

- full backup: `systemctl start pgcascade-backup@full` on pg4 (what the timer starts: from a
  standby, pg2 or pg3), start to end;
- differential backup after 10 % of the rows changed, the same way;
- restore: `tasks/pitr.py` onto pg3 as a new cluster, to the time just before, wall time of the
  task (its check, the restore, the replay and the promotion), then the cluster is dropped;
- rebuild of pg3 (stopped, data kept): `tasks/rebuild_from_backup.py` (delta restore: only what
  differs), `tasks/rebuild_from_backup.py` after its data directory was emptied (every file
  from the repository), and `tasks/rebuild.py --data force=true` (pg_basebackup from pg2): from
  the task's start to pg3 streaming from pg2.

Prints the figures and writes bench/results/backup.json. Run as root:

    .venv/bin/python bench/backup.py [--runs 2] [--scale 70]
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
from lab.client import Lab, wait_until  # noqa: E402

RESULTS = ROOT / "bench/results/backup.json"
LAB = "bkb"
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
INVENTORY = "inventories/lab.py"


def task(lab: Lab, *args: str) -> float:
    started = time.monotonic()
    proc = lab.pyinfra("-y", INVENTORY, *args, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return time.monotonic() - started


def on(lab: Lab, host: str, command: str, timeout: float = 3600) -> float:
    started = time.monotonic()
    proc = lab.ssh(host, command, timeout=timeout)
    if proc.returncode != 0:
        # a scheduled run's own words are in its journal, not in systemctl's
        journal = lab.ssh(host, "journalctl -u 'pgcascade-backup@*' -o cat --no-pager | tail -n 40").stdout \
            if "pgcascade-backup@" in command else ""
        sys.exit(f"{host}: {command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{journal}")
    return time.monotonic() - started


def streams(lab: Lab) -> bool:
    return lab.psql("pg3", "select status || ' ' || sender_host from pg_stat_wal_receiver") == \
        f"streaming {lab.ip('pg2')}"


def rebuild(lab: Lab, *args: str, empty: bool = False) -> float:
    on(lab, "pg3", "systemctl stop postgresql@15-main" +
       (" && find /var/lib/postgresql/15/main -mindepth 1 -delete" if empty else ""))
    started = time.monotonic()
    task(lab, *args)
    wait_until(lambda: streams(lab), 600, "pg3 streaming from pg2")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70: about 1.05 GB)")
    args = parser.parse_args()
    load_before = load_average()
    lab = Lab(LAB, 4, backup=True, exact_name=True)
    figures: dict[str, list[float]] = {k: [] for k in (
        "full_backup", "diff_backup", "pitr_restore", "rebuild_from_repository_delta",
        "rebuild_from_repository_empty", "rebuild_base_backup")}
    try:
        task(lab, "deploy.py")
        on(lab, "pg1", f"cd / && runuser -u postgres -- {PGBENCH} -i -q -s {args.scale} postgres")
        lab.psql("pg1", "checkpoint")
        size = int(lab.psql("pg1", "select sum(pg_database_size(oid)) from pg_database"))
        print(f"database: {size / 2**30:.2f} GiB", flush=True)
        for run in range(1, args.runs + 1):
            figures["full_backup"].append(on(lab, "pg4", "systemctl start pgcascade-backup@full"))
            lab.psql("pg1", f"update pgbench_accounts set abalance = abalance + 1 where aid % 10 = {run % 10}")
            figures["diff_backup"].append(on(lab, "pg4", "systemctl start pgcascade-backup@diff"))
            target = lab.psql("pg1", "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
            figures["pitr_restore"].append(task(lab, "tasks/pitr.py", "--data", "onto=pg3", "--data", f"time={target}"))
            on(lab, "pg3", "pg_dropcluster --stop 15 pitr")
            figures["rebuild_from_repository_delta"].append(
                rebuild(lab, "tasks/rebuild_from_backup.py", "--data", "target=pg3", "--data", "force=true"))
            figures["rebuild_from_repository_empty"].append(
                rebuild(lab, "tasks/rebuild_from_backup.py", "--data", "target=pg3", "--data", "force=true",
                        empty=True))
            figures["rebuild_base_backup"].append(
                rebuild(lab, "tasks/rebuild.py", "--data", "target=pg3", "--data", "force=true"))
            print(f"run {run}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in figures.items()), flush=True)
        repository = lab.ssh("pg4", "du -sb /var/lib/pgbackrest | cut -f1").stdout.strip()
    finally:
        lab.down()
    result = {
        "database_bytes": size, "pgbench_scale": args.scale, "repository_bytes": int(repository or 0),
        "seconds": {k: spread(v) for k, v in figures.items()},
        "notes": "full/diff: systemctl start pgcascade-backup@KIND on the repository host (from a standby), "
                 "compress-type zst, process-max 2; pitr_restore: tasks/pitr.py wall time (check, restore, "
                 "replay, promotion); rebuild_*: from the task's start to pg3 streaming from pg2",
        **machine(load_before),
    }
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["seconds"], indent=2))


if __name__ == "__main__":
    main()
