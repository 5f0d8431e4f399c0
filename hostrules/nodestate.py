"""A PostgreSQL node's state: one SQL query (plus pg_controldata and the timeline history files
when the server does not answer), parsed into a NodeState. Every on-host script reads a node
through this module: here (read_local) or on another cluster host over ssh (hostio runs this
module there: python3 -m hostrules.nodestate --json).

States: primary | standby (answering queries) | starting (running, not answering yet) |
stopped-primary | stopped-standby (standby.signal) | absent (no cluster) | unreachable (another
host that did not answer in time).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Literal, Mapping, Optional, Sequence, Tuple, get_args

from hostrules import lsn as lsnlib

# What a node is, in one word (the first word of `nodestate`'s line, which the shell scripts read).
State = Literal["primary", "standby", "starting", "unresponsive", "stopped-primary", "stopped-standby", "absent",
                "unreachable"]
KNOWN_STATES: Tuple[State, ...] = get_args(State)
RUNNING_STATES: Tuple[State, ...] = ("primary", "standby")

# The one query: role, timeline, identity, positions, upstream and downstreams, in one round trip.
QUERY = """
select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'timeline', case when pg_is_in_recovery()
      then coalesce((select nullif(received_tli, 0) from pg_stat_wal_receiver),
                    (select timeline_id from pg_control_checkpoint()))
      else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
  'system_identifier', (select system_identifier::text from pg_control_system()),
  'current_lsn', case when pg_is_in_recovery() then null else pg_current_wal_lsn()::text end,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'primary_conninfo', current_setting('primary_conninfo'),
  'synchronous_standby_names', current_setting('synchronous_standby_names'),
  'wal_receiver', (select json_build_object('status', status, 'sender_host', sender_host,
                                            'received_tli', received_tli)
                   from pg_stat_wal_receiver),
  'replication', coalesce((select json_agg(json_build_object(
          'application_name', application_name, 'client_addr', host(client_addr),
          'state', state, 'sync_state', sync_state, 'flush_lsn', flush_lsn::text)
          order by application_name) from pg_stat_replication), '[]'::json))
"""


@dataclass
class Downstream:
    """A pg_stat_replication row."""

    application_name: str
    client_addr: Optional[str]
    state: str
    sync_state: str
    flush_lsn: Optional[int]


@dataclass
class NodeState:
    state: State
    timeline: int = 0  # the newest timeline the node knows (its own, or a newer one it has a history file of)
    system_identifier: Optional[str] = None
    lsn: Optional[int] = None  # a primary's current LSN; a standby's received (or replayed) LSN
    application_name: str = ""  # from primary_conninfo: how its upstream names it
    streaming_from: str = ""  # the wal receiver's sender host while streaming
    synchronous_standby_names: str = ""
    replication: List[Downstream] = field(default_factory=list)
    history: List[Tuple[int, int]] = field(default_factory=list)  # (parent timeline, switch point) of `timeline`

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def line(self) -> str:
        """'STATE TIMELINE SYSTEM_IDENTIFIER' (what the shell scripts read)."""
        return f"{self.state} {self.timeline} {self.system_identifier or '-'}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "NodeState":
        data = dict(data)
        data["replication"] = [Downstream(**row) for row in data.get("replication") or []]
        data["history"] = [tuple(entry) for entry in data.get("history") or []]
        if data.get("state") not in KNOWN_STATES:
            return unreachable()
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def unreachable() -> NodeState:
    return NodeState("unreachable")


_APPNAME = re.compile(r"(?:^|\s)application_name\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def conninfo_application_name(conninfo: str) -> str:
    match = _APPNAME.search(conninfo or "")
    if not match:
        return ""
    value = match.group(1)
    if value.startswith("'"):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_query_row(row: str) -> dict:
    """The query's JSON row -> the fields of a running node's NodeState."""
    data = json.loads(row)
    standby = bool(data["in_recovery"])
    receiver = data.get("wal_receiver") or {}
    received = [x for x in (lsnlib.parse(data.get("receive_lsn")), lsnlib.parse(data.get("replay_lsn")))
                if x is not None]
    return {
        "state": "standby" if standby else "primary",
        "timeline": int(data["timeline"] or 0),
        "system_identifier": data.get("system_identifier"),
        "lsn": (max(received) if received else None) if standby else lsnlib.parse(data.get("current_lsn")),
        "application_name": conninfo_application_name(data.get("primary_conninfo") or "") if standby else "",
        "streaming_from": (receiver.get("sender_host") or "") if receiver.get("status") == "streaming" else "",
        "synchronous_standby_names": data.get("synchronous_standby_names") or "",
        "replication": [
            Downstream(r["application_name"], r.get("client_addr"), r.get("state") or "",
                       r.get("sync_state") or "", lsnlib.parse(r.get("flush_lsn")))
            for r in data.get("replication") or []
        ],
    }


def parse_history(text: str) -> List[Tuple[int, int]]:
    """A timeline history file ('1\t0/3000000\tno recovery target specified' per line) ->
    [(parent timeline, switch point)], oldest first."""
    entries = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].isdigit():
            point = lsnlib.parse(words[1])
            if point is not None:
                entries.append((int(words[0]), point))
    return entries


def parse_controldata(text: str) -> dict:
    def value(label: str) -> Optional[str]:
        match = re.search(rf"^{re.escape(label)}:\s*(.+)$", text, re.M)
        return match.group(1).strip() if match else None

    tli = value("Latest checkpoint's TimeLineID")
    return {
        "system_identifier": value("Database system identifier"),
        "timeline": int(tli) if tli and tli.isdigit() else 0,
        "lsn": lsnlib.parse(value("Latest checkpoint location")),
    }


def postmaster_status(data_directory: str) -> Tuple[str, float]:
    """postmaster.pid's status line (starting, ready, standby, stopping; '' when the file is gone
    or has none yet) and when the file was last written (time.time()). A killed or frozen
    postmaster leaves it as it was: "ready" then says when that server last began to accept
    connections."""
    path = os.path.join(data_directory, "postmaster.pid")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
        modified = os.stat(path).st_mtime
    except OSError:
        return "", 0.0
    return (lines[7].strip() if len(lines) >= 8 else ""), modified


def history_files(data_directory: str) -> dict:
    """{timeline: path} of the history files in pg_wal."""
    found: Dict[int, str] = {}
    try:
        names = os.listdir(os.path.join(data_directory, "pg_wal"))
    except OSError:
        return found
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "history" and stem and all(c in "0123456789ABCDEFabcdef" for c in stem):
            found[int(stem, 16)] = os.path.join(data_directory, "pg_wal", name)
    return found


def as_postgres(argv: List[str]) -> List[str]:
    """As root, run as postgres (psql's role, the data directory's owner): setpriv, not runuser (no
    PAM session: a check every second does not fill the journal). PGCASCADE_HOSTRULES_AS_IS=1
    (tests with stub commands) runs commands as the caller."""
    if os.geteuid() == 0 and os.environ.get("PGCASCADE_HOSTRULES_AS_IS") != "1":
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--reset-env", *argv]
    return argv


def _run(argv: List[str], timeout: float) -> Optional[str]:
    argv = as_postgres(argv)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"}, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None


END_MARK = "__pgcascade_end_of_answer__"


class PsqlSession:
    """One psql kept open (argv: psql and its connection options), asked `query` at each read: a
    watcher reading a server every second costs a query, not a new process (and a new backend on
    the server) each time. A read that fails, times out or finds psql gone (the server restarted:
    psql exits when its connection drops) returns None and closes the session; the next read opens
    a new one. `env`: added to the environment of psql (LC_ALL=C always). With keep_errors, what
    psql says on its stderr is read too: `error` is its first line for the last read ('' when
    none), else why that read failed. With `prepare` (a name), the query is prepared once per
    psql (PREPARE, then EXECUTE at each read: the server plans it once, not every read); an empty
    answer then closes the session, so that the next read prepares it again."""

    def __init__(self, argv: Sequence[str], query: str, env: Optional[Mapping[str, str]] = None,
                 keep_errors: bool = False, prepare: str = ""):
        self.argv = list(argv)
        self.sql = query.strip()
        self.prepare = prepare
        self.env = dict(env or {})
        self.keep_errors = keep_errors
        self.proc: Optional[subprocess.Popen] = None
        self.error = ""
        self._out = b""
        self._err = b""
        self._open: List[int] = []  # the pipes that have not ended yet

    def query(self, timeout: float) -> Optional[str]:
        """The answer (the query's output, as psql -At prints it) within `timeout` seconds, or None."""
        return query_together([(self, timeout)])[0]

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:  # (stdin's unsent query: psql is gone)
                        pass
            self.proc = None
        self._open = []

    # ---- the protocol, one read in steps (query_together runs several at once)

    def _send(self) -> bool:
        """Start psql when none runs, and send the query then the end mark; False (closed) when
        that fails."""
        self.error, self._out, self._err = "", b"", b""
        try:
            if self.proc is not None and self.proc.poll() is not None:
                self.close()  # psql ended (its server restarted)
            text = f"{self.sql};\n"
            if self.prepare:
                text = f"EXECUTE {self.prepare};\n"
            if self.proc is None:
                if self.prepare:
                    text = f"PREPARE {self.prepare} AS {self.sql};\n" + text
                self.proc = subprocess.Popen(
                    self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE if self.keep_errors else subprocess.DEVNULL,
                    env={**os.environ, **self.env, "LC_ALL": "C"}, cwd="/")
                self._open = [p.fileno() for p in (self.proc.stdout, self.proc.stderr) if p is not None]
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{text}\\echo {END_MARK}\n".encode())
            self.proc.stdin.flush()
        except (OSError, ValueError, AssertionError) as error:
            self._drain_errors(wait=1.0)  # psql ended already: why
            self._fail("psql ended" if isinstance(error, BrokenPipeError) else f"psql: {error}")
            return False
        return True

    def _read(self, fd: int) -> Optional[str]:
        """Reads what `fd` (psql's stdout or stderr) has: the answer once its end mark came;
        EOFError when psql ended without it."""
        chunk = os.read(fd, 65536)
        stdout = self.proc is not None and self.proc.stdout is not None and fd == self.proc.stdout.fileno()
        if not chunk:
            self._open.remove(fd)
            if stdout:
                self._drain_errors(wait=1.0)  # psql ended: why (a connection refused, lost)
                raise EOFError("psql ended")
            return None
        if not stdout:
            self._err += chunk
            return None
        self._out += chunk
        if (END_MARK + "\n").encode() not in self._out:
            return None
        self._drain_errors(wait=0)  # written before the mark: already in the pipe
        self.error = self._first_error()
        return self._out.decode(errors="replace").split(END_MARK)[0]

    def _drain_errors(self, wait: float) -> None:
        if self.proc is None or self.proc.stderr is None:
            return
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + wait
        while fd in self._open and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                self._open.remove(fd)
            self._err += chunk

    def _first_error(self) -> str:
        lines = [line.strip() for line in self._err.decode(errors="replace").splitlines() if line.strip()]
        return lines[0] if lines else ""

    def _fail(self, why: str) -> None:
        self.error = self._first_error() or why
        self.close()


def query_together(asks: Sequence[Tuple[PsqlSession, float]]) -> List[Optional[str]]:
    """Each session's answer to its query, all asked at once (a slow server delays no other
    answer), each within its own timeout (seconds from now): None for one that failed or was
    late (that session is closed)."""
    answers: List[Optional[str]] = [None] * len(asks)
    started = time.monotonic()
    pending = {i: started + timeout for i, (session, timeout) in enumerate(asks) if session._send()}
    while pending:
        now = time.monotonic()
        for i in [i for i, deadline in pending.items() if deadline <= now]:
            asks[i][0]._fail(f"no answer within {asks[i][1]:g} s")
            del pending[i]
        fds = {fd: i for i in pending for fd in asks[i][0]._open}
        if not fds:
            for i in list(pending):
                asks[i][0]._fail("psql ended")
                del pending[i]
            break
        ready = select.select(list(fds), [], [], max(0.0, min(pending.values()) - now))[0]
        for fd in ready:
            i = fds[fd]
            if i not in pending:
                continue
            session = asks[i][0]
            try:
                answer = session._read(fd)
            except (OSError, EOFError) as error:
                session._fail(str(error) or "psql ended")
                del pending[i]
                continue
            if answer is not None:
                if session.prepare and not answer.strip():
                    session._fail("no answer to the prepared query")  # prepared again at the next read
                answers[i] = answer
                del pending[i]
    return answers


class Session(PsqlSession):
    """The local server's psql kept open (over the socket, as postgres), asked QUERY at each read:
    a watcher reading its node every second (ha-watch, nodestate --stream)."""

    def __init__(self, bin_directory: str, port: int, socket_directory: str):
        super().__init__(as_postgres([os.path.join(bin_directory, "psql"), "-X", "-A", "-t", "-q",
                                      "-h", socket_directory, "-p", str(port), "-d", "postgres"]), QUERY,
                         prepare="pgcascade_nodestate")


def read_local(bin_directory: str, data_directory: str, port: int, socket_directory: str,
               timeout: float = 5, session: Optional[Session] = None) -> NodeState:
    """This host's node, as the postgres user (reads pg_wal and connects over the socket); through
    `session` when given (a watcher's open psql), else a psql of its own."""
    histories = history_files(data_directory)
    if session is not None:
        row = session.query(timeout)
    else:
        row = _run([os.path.join(bin_directory, "psql"), "-X", "-A", "-t", "-q", "-h", socket_directory,
                    "-p", str(port), "-d", "postgres", "-c", QUERY], timeout)
    fields = None
    if row and row.strip():
        try:
            fields = parse_query_row(row.strip())
        except (ValueError, KeyError, TypeError):
            fields = None
    if fields is None:
        if not os.path.isfile(os.path.join(data_directory, "PG_VERSION")):
            return NodeState("absent")
        fields = parse_controldata(_run([os.path.join(bin_directory, "pg_controldata"), data_directory], timeout) or "")
        if _run([os.path.join(bin_directory, "pg_ctl"), "status", "-D", data_directory], timeout) is not None:
            # A running postmaster that said it accepts connections but did not answer: hung
            # (frozen processes, a stalled disk), not starting.
            fields["state"] = "unresponsive" if postmaster_status(data_directory)[0] == "ready" else "starting"
        elif os.path.exists(os.path.join(data_directory, "standby.signal")):
            fields["state"] = "stopped-standby"
        else:
            fields["state"] = "stopped-primary"
    node = NodeState(**fields)
    known = max(histories, default=0)
    if known > node.timeline:
        node.timeline = known
    if node.timeline in histories:
        try:
            with open(histories[node.timeline]) as f:
                node.history = parse_history(f.read())
        except OSError:
            pass
    return node


def main(argv: Optional[List[str]] = None) -> int:
    from hostrules import config

    parser = argparse.ArgumentParser(prog="python3 -m hostrules.nodestate",
                                     description="This host's PostgreSQL node state.")
    parser.add_argument("--json", action="store_true", help="the whole state as JSON (default: one line)")
    parser.add_argument("--stream", type=float, metavar="SECONDS", default=0,
                        help="a state every SECONDS, one per line, until the reader goes (one open psql)")
    args = parser.parse_args(argv)
    c = config.load()
    if not args.stream:
        node = read_local(c.bin_directory, c.data_directory, c.port, c.socket_directory)
        print(node.to_json() if args.json else node.line())
        return 0
    return stream(c, args.stream, args.json)


def stream(c, interval: float, as_json: bool) -> int:
    """Print this node's state every `interval` seconds; ends when the reader is gone (a write to
    the closed pipe: the ssh session ended)."""
    session = Session(c.bin_directory, c.port, c.socket_directory)
    try:
        while True:
            started = time.monotonic()
            node = read_local(c.bin_directory, c.data_directory, c.port, c.socket_directory,
                              timeout=max(1.0, 2 * interval), session=session)
            try:
                print(node.to_json() if as_json else node.line(), flush=True)
            except (BrokenPipeError, OSError):
                return 0
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
