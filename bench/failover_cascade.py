"""The cascading standby fails and the cascade monitor on the downstream repairs, timed. The
fault (--fault): crash (a power cut, the default), kill (its PostgreSQL SIGKILLed, the host
up: it still answers ping) or pause (the machine hung: it still answers ping). Per run, from
the fault:

- unblocked: to the first synchronous commit on the master that started after the crash and was
  acknowledged (no "canceling wait for synchronous replication" warning);
- streaming: to the downstream's WAL receiver streaming from the master.

Target: 10 s or less. Each run: the original tree, probes started on pg1 and pg3 (shell loops
running there, timestamps from the hosts' clock, which is this machine's), the crash (as
`python -m lab crash pg2` does it), then pg2 restarted and the deploy rerun for the next run.
Uses its own lab (default 'fcb'), removed at the end. Run as root:

    .venv/bin/python bench/failover_cascade.py [--runs 5] [--lab fcb] [--fault crash|kill|pause]

Prints the figures and writes them to bench/results/failover_cascade.json (crash) or
failover_cascade_FAULT.json. After a pause, pg2 is restarted (booted again) before the next run:
a hung machine that resumes brings heartbeat's partition case, which is not measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import load_average, machine, spread  # noqa: E402
from lab import labs, machines  # noqa: E402

RESULTS = ROOT / "bench/results"
TARGET = 10.0
PROBE_SECONDS = 300  # the probes stop by themselves after this (or when stopped)

# On the master: one insert after another, each commit waiting at most 0.5 s for the synchronous
# standby (then psql gets SIGINT and cancels the wait: statement_timeout does not cover it).
# "START END ok|blocked" per insert.
COMMIT_PROBE = f"""cd /
end=$((SECONDS + {PROBE_SECONDS}))
while [ $SECONDS -lt $end ]; do
  start=$EPOCHREALTIME
  if out=$(runuser -u postgres -- timeout -s INT 0.5 psql -XAtq -v ON_ERROR_STOP=1 \
             -c 'insert into bench_fc default values' 2>&1) && [[ $out != *"synchronous replication"* ]]; then
    echo "$start $EPOCHREALTIME ok"; sleep 0.05
  else
    echo "$start $EPOCHREALTIME blocked"
  fi
done
"""

# On the downstream: "TIME STATUS SENDER" of its WAL receiver every 0.1 s.
RECEIVER_PROBE = f"""cd /
end=$((SECONDS + {PROBE_SECONDS}))
while [ $SECONDS -lt $end ]; do
  echo "$EPOCHREALTIME $(runuser -u postgres -- psql -XAtq \
                           -c "select status || ' ' || coalesce(sender_host, '-') from pg_stat_wal_receiver")"
  sleep 0.1
done
"""


REPLICATION_ROWS = "select application_name || '|' || state || '|' || sync_state from pg_stat_replication"


class BenchLab:
    def __init__(self, name: str):
        self.name = name
        self.env = {**os.environ, "PGCASCADE_LAB": name}
        self.desc: dict = {}

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "lab", "--name", self.name, *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)

    def up(self) -> None:
        self.cli("down")
        self.cli("up", "--hosts", "3")
        self.desc = labs.load(self.name)

    def ip(self, host: str) -> str:
        return labs.host_entry(self.desc, host)["ip"]

    def ssh_args(self, host: str) -> list[str]:
        return ["ssh", "-i", self.desc["ssh_key"], "-o", f"UserKnownHostsFile={self.desc['known_hosts']}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                f"root@{self.ip(host)}"]

    def psql(self, host: str, sql: str) -> str:
        proc = subprocess.run([*self.ssh_args(host), "cd / && runuser -u postgres -- psql -XAtq -f -"], input=sql,
                              text=True, capture_output=True, timeout=60)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def deploy(self) -> None:
        proc = subprocess.run([str(ROOT / ".venv/bin/pyinfra"), "-y", "inventories/lab.py", "deploy.py"], cwd=ROOT,
                              env=self.env, text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=1800)
        if proc.returncode != 0:
            sys.exit(f"deploy failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")

    def wait(self, check, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                sys.exit(f"timed out after {seconds:.0f} s waiting for {what}")
            time.sleep(0.5)

    def original_tree(self) -> None:
        receiver = "select sender_host from pg_stat_wal_receiver where status = 'streaming'"
        self.wait(lambda: self.psql("pg3", receiver) == self.ip("pg2"), 120, "pg3 streaming from pg2")
        self.wait(lambda: self.psql("pg1", "select application_name || '|' || sync_state from pg_stat_replication")
                  == "standby_1|sync", 120, "standby_1 synchronous on pg1")


class Probe:
    """A shell loop running on a host by itself (nohup), writing to a file there; read over new
    ssh connections. (Not one long ssh session: crashing pg2 can change the lab bridge's MAC
    address, which stalls established connections between this machine and the hosts for a
    while; the hosts' own traffic, the failover included, is not affected.)"""

    def __init__(self, lab: BenchLab, host: str, name: str, script: str):
        self.lab, self.host = lab, host
        self.path = f"/root/bench-{name}"
        subprocess.run([*lab.ssh_args(host), f"cat > {self.path}.sh"], input=script, text=True, check=True)
        started = subprocess.run([*lab.ssh_args(host), f"nohup bash {self.path}.sh > {self.path}.log 2>&1 "
                                  "< /dev/null & echo $!"], text=True, capture_output=True, check=True)
        self.pid = int(started.stdout.strip())
        self.lines: list[list[str]] = []

    def read(self) -> list[list[str]]:
        """Its lines so far (the last ones read when the host cannot be reached right now)."""
        proc = subprocess.run([*self.lab.ssh_args(self.host), f"cat {self.path}.log"], text=True,
                              capture_output=True, timeout=30)
        if proc.returncode == 0:
            self.lines = [line.split() for line in proc.stdout.splitlines()]
        return self.lines

    def stop(self) -> None:
        subprocess.run([*self.lab.ssh_args(self.host), f"kill {self.pid}; rm -f {self.path}.sh {self.path}.log"],
                       capture_output=True, timeout=60)


def diagnose(lab: BenchLab, commits: Probe, receiver: Probe) -> None:
    """What the hosts say when the repair did not come: the monitor's journal, the probes."""
    journal = subprocess.run([*lab.ssh_args("pg3"), "journalctl -u pgcascade-cascade-monitor -o cat -n 30"],
                             text=True, capture_output=True).stdout
    print(f"pg3's cascade monitor:\n{journal}", file=sys.stderr)
    print(f"pg1 commits (last): {commits.read()[-3:]}\npg3 receiver (last): {receiver.read()[-3:]}", file=sys.stderr)
    print(f"pg1 pg_stat_replication: {lab.psql('pg1', REPLICATION_ROWS)!r}", file=sys.stderr)


def inflict(lab: BenchLab, fault: str) -> None:
    if fault == "crash":
        machines.crash(lab.name, "pg2")  # as `python -m lab crash pg2` does
    elif fault == "kill":
        subprocess.run([*lab.ssh_args("pg2"), "systemctl kill -s KILL postgresql@15-main"], check=True)
    else:
        machines.pause(lab.name, "pg2")


def recover(lab: BenchLab, fault: str) -> None:
    """pg2 back (its PostgreSQL up), for the deploy to restore the tree."""
    if fault == "kill":
        subprocess.run([*lab.ssh_args("pg2"), "systemctl reset-failed postgresql@15-main; "
                        "systemctl start postgresql@15-main"], check=True)
    else:
        if fault == "pause":
            lab.cli("crash", "pg2")  # boot it again rather than resume it
        lab.cli("restart", "pg2")


def one_run(lab: BenchLab, fault: str) -> dict:
    lab.original_tree()
    commits = Probe(lab, "pg1", "commits", COMMIT_PROBE)
    receiver = Probe(lab, "pg3", "receiver", RECEIVER_PROBE)
    try:
        lab.wait(lambda: any(line[-1:] == ["ok"] for line in commits.read()) and receiver.read(), 30, "the probes")
        crashed_at = time.time()
        inflict(lab, fault)
        pg1 = lab.ip("pg1")

        def unblocked() -> float | None:
            return next((float(line[1]) for line in commits.read()
                         if len(line) == 3 and line[2] == "ok" and float(line[0]) > crashed_at), None)

        def streaming() -> float | None:
            return next((float(line[0]) for line in receiver.read()
                         if line[1:] == ["streaming", pg1] and float(line[0]) > crashed_at), None)

        try:
            lab.wait(lambda: unblocked() and streaming(), 120, "the repair")
        except SystemExit:
            diagnose(lab, commits, receiver)
            raise
        unblocked_at, streaming_at = unblocked(), streaming()
        assert unblocked_at is not None and streaming_at is not None  # what lab.wait waited for
        result = {"unblocked_s": round(unblocked_at - crashed_at, 2), "streaming_s": round(streaming_at - crashed_at, 2)}
    finally:
        commits.stop()
        receiver.stop()
    recover(lab, fault)
    lab.wait(lambda: subprocess.run([*lab.ssh_args("pg2"), "pg_isready -q"]).returncode == 0, 60, "PostgreSQL on pg2")
    lab.deploy()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", default="fcb", help="its own lab, removed at the end (default fcb)")
    parser.add_argument("--fault", choices=("crash", "kill", "pause"), default="crash")
    args = parser.parse_args()
    lab = BenchLab(args.lab)
    load_before = load_average()
    runs = []
    try:
        lab.up()
        lab.deploy()
        lab.psql("pg1", "create table bench_fc(id serial primary key, at timestamptz default now())")
        for number in range(1, args.runs + 1):
            runs.append(one_run(lab, args.fault))
            print(f"run {number}: unblocked {runs[-1]['unblocked_s']} s, streaming {runs[-1]['streaming_s']} s",
                  flush=True)
    finally:
        lab.cli("down")
    results = {
        "fault": args.fault,
        f"{args.fault}_to_unblocked_sync_commit_s": spread([r["unblocked_s"] for r in runs], target=TARGET),
        f"{args.fault}_to_downstream_streaming_from_master_s": spread([r["streaming_s"] for r in runs],
                                                                       target=TARGET),
        "runs": runs,
        **machine(load_before),
    }
    RESULTS.mkdir(exist_ok=True)
    name = "failover_cascade.json" if args.fault == "crash" else f"failover_cascade_{args.fault}.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    for label in (f"{args.fault}_to_unblocked_sync_commit_s", f"{args.fault}_to_downstream_streaming_from_master_s"):
        stats = results[label]
        print(f"{label}: min {stats['min']} median {stats['median']} max {stats['max']} (target {TARGET})")


if __name__ == "__main__":
    main()
