"""The cascade monitor: on a standby of the cascading standby, as postgres (systemd:
pgcascade-cascade-monitor.service, its script /usr/local/lib/pgcascade/cascade-monitor execs
this), logging to its journal. Every INTERVAL s it looks at the cascade from the master (does
WAL flow to it: its row in the master's pg_stat_replication, its flush position and replies)
and asks the cascade itself whether it answers; hostrules.cascade_health judges (the rules the
planner shares) whether to fail over.

Three psql stay open, each asked its query every look (nodestate.PsqlSession): this host's
PostgreSQL (over the socket), the master and the cascade (over TCP, with the passfile). All
three are asked at once, the cascade bounded by the probe timeout and the others by the
interval: a hung server never stretches a look beyond about the interval. An idle cluster
costs one query per server and second, not three psql, three backends and a python3 a second.

Failing over: this host's include file becomes the prepared variant for the cluster without the
cascade (`cascade-failed CASCADE`: primary_conninfo -> the master, a reload), then the same on
the master over ssh (archive_command and synchronous_standby_names -> the former downstreams),
so the master stops blocking on commit. PostgreSQL is never restarted. Once switched (the
include file is the variant: by this monitor or by tasks/failover_cascade.py) it only makes
sure both parts are done; a deploy, when the cascade is back and caught up, restores the
original tree and the monitor watches again.

A planned restart of the cascade (a deploy or a rolling restart writes until when in the hold
file) is not its failure: the hold is read each look.

    python3 -m hostrules.cascademon --cascade NAME --cascade-address ADDR ... [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from hostrules import cascade_health
from hostrules.cascade_health import HEALTHY, Judgement, Memory, Observation
from hostrules.nodestate import PsqlSession, query_together

LOCAL_QUERY = """
select system_identifier,
       coalesce((select nullif(received_tli, 0) from pg_stat_wal_receiver),
                (select timeline_id from pg_control_checkpoint()))
  from pg_control_system()
"""

# The master: is it a running primary of this cluster, where is its WAL, the cascade's row
# (:'name', its application_name) in its pg_stat_replication, and can this role read the row's
# positions (NULL without pg_read_all_stats: a blind view, never a reason to fail over).
MASTER_QUERY = """
select pg_is_in_recovery(), (select system_identifier from pg_control_system()),
       case when pg_is_in_recovery() then 0
            else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
       case when pg_is_in_recovery() then null else pg_current_wal_lsn() - '0/0' end,
       r.pid is not null, r.flush_lsn - '0/0', extract(epoch from r.reply_time),
       pg_has_role('pg_read_all_stats', 'member')
  from (select 1) one
  left join lateral (select pid, flush_lsn, reply_time from pg_stat_replication
                      where application_name = :'name' order by backend_start desc limit 1) r on true
"""

CASCADE_QUERY = "select pg_is_in_recovery()"

SSH_TIMEOUT = 30  # seconds: a master that hangs after the ssh handshake must not stop the monitor


@dataclass(frozen=True)
class Settings:
    cascade: str
    cascade_address: str
    master: str
    master_address: str
    master_conninfo: str  # no password: libpq reads the passfile
    cascade_conninfo: str
    cascade_application_name: str
    port: int
    bin_directory: str
    socket_directory: str
    include_file: str
    variant_file: str
    switch_path: str
    hold_path: str  # until when a restart of the cascade is planned (a deploy writes it)
    ssh_options: str  # ssh's options to the master (words without spaces: -o BatchMode=yes ... -l postgres)
    connect_timeout: int
    interval: float
    probe_timeout: float
    rounds: int = 0  # stop after this many looks (tests); 0: never
    fail_over_after: Optional[float] = None
    start_grace: Optional[float] = None


def _int(value: str) -> Optional[int]:
    try:
        return int(value)
    except ValueError:
        return None


def _first_line(text: Optional[str]) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def observation(local: Optional[str], master: Optional[str], master_error: str, cascade: Optional[str],
                hold: Optional[str]) -> Observation:
    """One look's answers (psql -At rows; None: no answer) -> what cascade_health judges."""
    fields: dict = {"cascade_in_recovery": _first_line(cascade)}
    row = _first_line(local)
    if row:
        sysid, _, tli = row.partition("|")
        fields.update(local_sysid=sysid, local_tli=_int(tli))
    row = _first_line(master)
    if row and not master_error:
        in_recovery, sysid, tli, lsn, present, flush, reply, reads = (row.split("|", 7) + [""] * 8)[:8]
        fields.update(master_in_recovery=in_recovery, master_sysid=sysid, master_tli=_int(tli),
                      master_lsn=_int(lsn), cascade_row=present == "t", cascade_flush_lsn=_int(flush),
                      cascade_reply=reply, master_reads_positions=reads)
    else:
        fields["master_error"] = master_error or "no answer"
    if hold is not None:
        try:
            fields["hold_until"] = float(hold)
        except ValueError:
            pass
    return Observation(**fields)


def read_hold(path: str) -> Optional[str]:
    """The hold file's first line; None without the file."""
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return None


def same_file(a: str, b: str) -> bool:
    """cmp -s: both readable and byte-identical."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


class Monitor:
    def __init__(self, s: Settings, out=None):
        self.s = s
        self.out = out or sys.stdout
        env = {"PGCONNECT_TIMEOUT": str(s.connect_timeout), "PGAPPNAME": "pgcascade-cascade-monitor",
               "PGOPTIONS": "-c statement_timeout=5s"}
        psql = os.path.join(s.bin_directory, "psql")
        self.local = PsqlSession([psql, "-XAtq", "-h", s.socket_directory, "-p", str(s.port), "-d", "postgres"],
                                 LOCAL_QUERY, env)
        self.master_session = PsqlSession([psql, "-XAtq", s.master_conninfo, "-v",
                                           f"name={s.cascade_application_name}"], MASTER_QUERY, env,
                                          keep_errors=True)
        self.cascade_session = PsqlSession([psql, "-XAtq", s.cascade_conninfo], CASCADE_QUERY, env)
        self.memory = Memory()
        self.started: Optional[float] = time.time()  # cleared once WAL flowed (the start grace is over)
        self.master_switched = False
        self.last_said = ""

    # ---- saying

    def log(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def say_once(self, code: str, message: str) -> None:
        """Said when the code changes, not every look."""
        if code != self.last_said:
            self.log(message)
            self.last_said = code

    # ---- looking

    def close(self) -> None:
        for session in (self.local, self.master_session, self.cascade_session):
            session.close()

    def observe(self) -> Observation:
        """One look: the three servers asked at once, the cascade within the probe timeout (libpq
        waits at least 2 s for a connection, whatever connect_timeout says), the others within
        the interval."""
        s = self.s
        bound = max(s.interval, s.probe_timeout)
        local, master, cascade = query_together([(self.local, bound), (self.master_session, bound),
                                                 (self.cascade_session, s.probe_timeout)])
        error = self.master_session.error if master is None or not master.strip() else ""
        return observation(local, master, error, cascade, read_hold(s.hold_path))

    def judge(self, seen: Observation) -> Judgement:
        s = self.s
        try:
            result = cascade_health.judge(
                seen, self.memory, time.time(), s.cascade, s.master,
                cascade_health.FAIL_OVER_AFTER if s.fail_over_after is None else s.fail_over_after,
                self.started, cascade_health.START_GRACE if s.start_grace is None else s.start_grace)
        except Exception as error:  # the rules failed: never fail over on that
            return Judgement(cascade_health.WAIT, "rules-failed",
                             f"hostrules.cascade_health failed: {type(error).__name__}: {error}", self.memory)
        self.memory = result.memory
        return result

    # ---- switching

    def _run(self, argv: List[str], prefix: str, timeout: Optional[float] = None) -> tuple[bool, List[str]]:
        """Runs argv (stdout and stderr together): its success and its lines, each prefixed."""
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout)
            ok, output = proc.returncode == 0, proc.stdout
        except subprocess.TimeoutExpired as expired:
            ok, output = False, expired.output or b""
        except OSError as error:
            ok, output = False, str(error).encode()
        return ok, [f"{prefix}: {line}" for line in output.decode(errors="replace").splitlines()]

    def switch_here(self, quietly: bool = False) -> bool:
        """This host's include file -> the variant, reloaded (cascade-failed). quietly: its
        messages only when it fails (it is retried every look)."""
        ok, lines = self._run([self.s.switch_path, self.s.cascade], os.uname().nodename)
        if not ok or not quietly:
            for line in lines:
                self.log(line)
        return ok

    def switch_master(self) -> bool:
        """The same on the master over ssh, bounded."""
        s = self.s
        ssh = ["ssh", *s.ssh_options.split(), "--", s.master_address, s.switch_path, s.cascade]
        ok, lines = self._run(ssh, s.master, timeout=SSH_TIMEOUT)
        for line in lines:
            self.log(line)
        return ok

    def failed_over(self) -> None:
        s = self.s
        self.log(f"failed over from {s.cascade}: this host replicates from {s.master}, which archives to it and no "
                 f"longer waits for {s.cascade}; a deploy restores the tree once {s.cascade} is back")

    # ---- one look

    def watch(self) -> None:
        """One look while the original tree is in place: judge the cascade, fail over when the
        rules say so."""
        s = self.s
        if self.master_switched:
            self.log(f"the original configuration is back (a deploy): watching {s.cascade} again")
            self.master_switched = False
            self.last_said = ""
            self.memory = Memory()
        result = self.judge(self.observe())
        if result.verdict == HEALTHY:
            self.started = None  # WAL flowed: the start grace (a cold boot) is over
            if self.last_said:
                self.log(result.message)
                self.last_said = ""
        elif result.verdict == cascade_health.WAIT:
            # A master that does not answer is said again when psql's words change (a look that
            # timed out, then the connection's own error: "No route to host", "refused", ...).
            words = result.message if result.reason == cascade_health.MASTER_UNREACHABLE else ""
            self.say_once(f"{result.reason} {words}", result.message)
        elif result.verdict == cascade_health.FAIL_OVER:
            self.log(f"{result.message}, and the master is a running primary of this cluster: "
                     f"failing over ({result.reason})")
            self.close()  # nothing more to ask until the tree is restored
            if not self.switch_here():
                self.say_once("switch-here-failed", "could not switch this host's configuration: retrying")
            elif self.switch_master():
                self.master_switched = True
                self.failed_over()
            else:
                self.log(f"could not switch the master {s.master} over ssh: retrying")

    def switched(self) -> None:
        """Failed over (by this monitor, or by hand with tasks/failover_cascade.py): make sure
        both parts are done and loaded (each is a no-op when it is), then wait for a deploy to
        restore the tree."""
        self.close()
        if self.master_switched:
            return
        if self.switch_here(quietly=True) and self.switch_master():
            self.master_switched = True
            self.failed_over()
        else:
            self.say_once("switch-failed",
                          f"could not complete the switch here or on the master {self.s.master}: retrying")

    def run(self) -> int:
        s = self.s
        self.log(f"watching the cascading standby {s.cascade} ({s.cascade_address}) every {s.interval:g} s; "
                 f"the master is {s.master} ({s.master_address})")
        looks = 0
        try:
            while True:
                looks += 1
                started = time.monotonic()
                if same_file(s.variant_file, s.include_file):
                    self.switched()
                else:
                    self.watch()
                if 0 < s.rounds <= looks:
                    return 0
                time.sleep(max(0.0, s.interval - (time.monotonic() - started)))
        finally:
            self.close()


def parse_args(argv: Sequence[str]) -> Settings:
    p = argparse.ArgumentParser(prog="python3 -m hostrules.cascademon",
                                description="Watch the cascading standby from its standby; fail over when it dies.")
    for option in ("cascade", "cascade-address", "master", "master-address", "master-conninfo", "cascade-conninfo",
                   "cascade-application-name", "bin-directory", "socket-directory", "include-file", "variant-file",
                   "switch-path", "hold-path", "ssh-options"):
        p.add_argument(f"--{option}", required=True)
    for option in ("port", "connect-timeout"):
        p.add_argument(f"--{option}", type=int, required=True)
    p.add_argument("--interval", type=float, required=True, help="seconds between two looks")
    p.add_argument("--probe-timeout", type=float, required=True, help="seconds the cascade's answer may take")
    p.add_argument("--rounds", type=int, default=0, help="stop after N looks (tests; default 0: never)")
    p.add_argument("--fail-over-after", type=float, help="seconds without WAL flow (tests)")
    p.add_argument("--start-grace", type=float, help="seconds after the start (tests)")
    return Settings(**vars(p.parse_args(argv)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    # systemd stops it with SIGTERM: end through the finally clauses (the psql sessions closed).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    return Monitor(settings).run()


if __name__ == "__main__":
    sys.exit(main())
