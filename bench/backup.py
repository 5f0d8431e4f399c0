"""Backups on a database of at least 1 GB (pgbench -i -s 70): how long pgBackRest takes to back
it up and to restore it, and a standby rebuilt from the repository against a base backup from its
upstream, in seconds and bytes.

One 4-host lab ('bkb', after PGCASCADE_TEST_LAB_PREFIX; pg4 the repository host). After the load,
the primary's WAL backlog reaches the repository first (timed apart: it is not the backup). Per run:

- full backup: `systemctl start pgcascade-backup@full` on pg4 (what the timer starts: from a
  standby, pg2 or pg3), start to end;
- differential backup after 10 % of the rows changed, the same way (each backup once the WAL
  before it is in the repository);
- restore: `tasks/pitr.py` onto pg3 as a new cluster (`pitr`, port 5440, beside pg3's member),
  to the time just before, wall time of the task (its WAL switch, the restore, the replay and the
  promotion), then the cluster is dropped;
- rebuild of pg3 (stopped, data kept): `tasks/rebuild_from_backup.py` (delta restore: only what
  differs), `tasks/rebuild_from_backup.py` after its data directory was emptied (every file
  from the repository), and `tasks/rebuild.py --data force=true` (pg_basebackup from pg2): from
  the task's start to pg3 streaming from pg2.

Bytes: what the backup holds (pgBackRest's size of the database files) and what it added to the
repository (compressed, encrypted); for every step, the bytes the receiving host's network
interfaces took in (/proc/net/dev: pg4 for a backup, pg3 for a restore or a rebuild), and the
restored data directory's size.

Prints the figures and writes bench/results/backup.json. Run as root, once (about 1 GB on three
hosts, the repository and a restored copy: watch the disk):

    .venv/bin/python bench/backup.py [--runs 1] [--scale 70]
"""
from __future__ import annotations

import argparse
import json
import statistics
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
INFO = "cd / && runuser -u postgres -- pgbackrest --stanza=main --output=json --log-level-console=off info"
DATA = "/var/lib/postgresql/15"
STEPS = ("full_backup", "diff_backup", "pitr_restore", "rebuild_from_repository_delta",
         "rebuild_from_repository_empty", "rebuild_base_backup")


def task(lab: Lab, *args: str) -> float:
    started = time.monotonic()
    proc = lab.pyinfra("-y", INVENTORY, *args, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return time.monotonic() - started


def on(lab: Lab, host: str, command: str, timeout: float = 3600) -> str:
    proc = lab.ssh(host, command, timeout=timeout)
    if proc.returncode != 0:
        # a scheduled run's own words are in its journal, not in systemctl's
        journal = lab.ssh(host, "journalctl -u 'pgcascade-backup@*' -o cat --no-pager | tail -n 40").stdout \
            if "pgcascade-backup@" in command else ""
        sys.exit(f"{host}: {command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{journal}")
    return proc.stdout


def received(lab: Lab, host: str) -> int:
    """Bytes host's network interfaces (lo aside) took in since its boot."""
    total = 0
    for line in on(lab, host, "cat /proc/net/dev").splitlines()[2:]:
        name, counters = line.split(":", 1)
        if name.strip() != "lo":
            total += int(counters.split()[0])
    return total


def du(lab: Lab, host: str, path: str) -> int:
    return int(on(lab, host, f"du -sb {path} | cut -f1").strip())


def measured(lab: Lab, host: str, step, *args) -> tuple[float, int]:
    """Seconds step(*args) takes, and the bytes host took in meanwhile."""
    before = received(lab, host)
    started = time.monotonic()
    step(*args)
    return time.monotonic() - started, received(lab, host) - before


def streams(lab: Lab) -> bool:
    return lab.psql("pg3", "select status || ' ' || sender_host from pg_stat_wal_receiver") == \
        f"streaming {lab.ip('pg2')}"


def rebuild(lab: Lab, *args: str, empty: bool = False) -> tuple[float, int]:
    on(lab, "pg3", "systemctl stop postgresql@15-main" + (f" && find {DATA}/main -mindepth 1 -delete" if empty else ""))

    def step() -> None:
        task(lab, *args)
        wait_until(lambda: streams(lab), 600, "pg3 streaming from pg2")
    return measured(lab, "pg3", step)


def newest_backup(lab: Lab) -> dict:
    return json.loads(on(lab, "pg4", INFO))[0]["backup"][-1]


def wal_in_repository(lab: Lab) -> None:
    """pg1 ends its WAL file and has pushed it (archive_command ends with the repository push)."""
    ended = lab.psql("pg1", "select pg_walfile_name(pg_switch_wal())")
    wait_until(lambda: lab.psql("pg1", f"select last_archived_wal >= '{ended}' from pg_stat_archiver") == "t",
               1800, f"pg1's WAL up to {ended} in the repository", interval=2)


def backup(lab: Lab, kind: str) -> dict:
    # the WAL before it in the repository first (a backup waits for it: that would be the push's time)
    wal_in_repository(lab)
    seconds, taken_in = measured(lab, "pg4", on, lab, "pg4", f"systemctl start pgcascade-backup@{kind}")
    info = newest_backup(lab)
    assert info["type"] == kind, info
    return {"seconds": seconds, "database_bytes": info["info"]["size"],
            "repository_bytes_added": info["info"]["repository"]["delta"], "network_bytes_in": taken_in}


def summary(values: list[dict]) -> dict:
    """spread() of the seconds, the median of every byte count."""
    result = spread([v["seconds"] for v in values])
    for key in values[0]:
        if key != "seconds":
            result[key] = int(statistics.median(v[key] for v in values))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70: about 1.1 GB)")
    args = parser.parse_args()
    load_before = load_average()
    lab = Lab(LAB, 4, backup=True)
    figures: dict[str, list[dict]] = {k: [] for k in STEPS}
    loads: list[list[float]] = []
    try:
        task(lab, "deploy.py")
        started = time.monotonic()
        on(lab, "pg1", f"cd / && runuser -u postgres -- {PGBENCH} -i -q -s {args.scale} postgres")
        lab.psql("pg1", "checkpoint")
        load_seconds = time.monotonic() - started
        size = int(lab.psql("pg1", "select pg_database_size('postgres')"))
        cluster_size = int(lab.psql("pg1", "select sum(pg_database_size(oid)) from pg_database"))
        print(f"pgbench -i -s {args.scale}: {load_seconds:.0f} s; database postgres {size / 1e9:.2f} GB "
              f"({size / 2**30:.2f} GiB), all databases {cluster_size / 1e9:.2f} GB", flush=True)
        started = time.monotonic()
        wal_in_repository(lab)
        backlog_seconds = time.monotonic() - started
        print(f"WAL backlog of the load into the repository: {backlog_seconds:.0f} s", flush=True)
        for run in range(1, args.runs + 1):
            figures["full_backup"].append(backup(lab, "full"))
            lab.psql("pg1", f"update pgbench_accounts set abalance = abalance + 1 where aid % 10 = {run % 10}")
            figures["diff_backup"].append(backup(lab, "diff"))
            target = lab.psql("pg1", "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
            seconds, taken_in = measured(lab, "pg3", task, lab, "tasks/pitr.py", "--data", "onto=pg3",
                                         "--data", f"time={target}")
            figures["pitr_restore"].append({"seconds": seconds, "network_bytes_in": taken_in,
                                            "restored_bytes": du(lab, "pg3", f"{DATA}/pitr")})
            on(lab, "pg3", "pg_dropcluster --stop 15 pitr")
            for key, step_args, empty in (
                    ("rebuild_from_repository_delta", ("tasks/rebuild_from_backup.py",), False),
                    ("rebuild_from_repository_empty", ("tasks/rebuild_from_backup.py",), True),
                    ("rebuild_base_backup", ("tasks/rebuild.py",), False)):
                seconds, taken_in = rebuild(lab, *step_args, "--data", "target=pg3", "--data", "force=true",
                                            empty=empty)
                figures[key].append({"seconds": seconds, "network_bytes_in": taken_in,
                                     "restored_bytes": du(lab, "pg3", f"{DATA}/main")})
            loads.append(load_average())
            print(f"run {run} (load average {loads[-1]}):", flush=True)
            for key, values in figures.items():
                print(f"  {key}: " + ", ".join(f"{k} {v:.1f}" if k == "seconds" else f"{k} {v / 1e6:.0f} MB"
                                               for k, v in values[-1].items()), flush=True)
        repository = du(lab, "pg4", "/var/lib/pgbackrest")
    finally:
        lab.down()
    result = {
        "database_bytes": size, "all_databases_bytes": cluster_size, "pgbench_scale": args.scale,
        "repository_bytes": repository, "load_seconds": round(load_seconds, 2),
        "wal_backlog_seconds": round(backlog_seconds, 2),
        "steps": {k: summary(v) for k, v in figures.items()}, "load_average_after_runs": loads,
        "notes": "full/diff: systemctl start pgcascade-backup@KIND on the repository host (from a standby), "
                 "compress-type zst, process-max 2, after the load's WAL reached the repository; "
                 "pitr_restore: tasks/pitr.py wall time (WAL switch, restore, replay, promotion) onto pg3 as "
                 "cluster pitr; rebuild_*: pg3 stopped, from the task's start to pg3 streaming from pg2; "
                 "network_bytes_in: /proc/net/dev of pg4 (backups) or pg3 (restores, rebuilds); "
                 "repository_bytes_added: pgBackRest's repository delta (compressed, encrypted); "
                 "restored_bytes: du -sb of the data directory after the step; pgbench's rows (blank-padded) "
                 "compress far better than most data (zst), so the repository's bytes are a floor; the diff's "
                 "update touches every file of pgbench_accounts, which a differential backup copies whole",
        **machine(load_before),
    }
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["steps"], indent=2))


if __name__ == "__main__":
    main()
