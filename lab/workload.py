"""A write workload through the VIP, run from the main machine while a lab host is broken.

Workers commit numbered rows (INSERT ... RETURNING, one transaction each, synchronous_commit on)
and record every acknowledged commit: its number, when it was sent and acknowledged
(time.monotonic(), system-wide on Linux, so comparable with other processes' clocks) and which
server acknowledged it (the row's node column, from that server's /etc/hostname through a
SECURITY DEFINER function: every server answers on the same VIP address).

Every wait has a deadline (psycopg2 asynchronous connections polled with select()), so a frozen
server cannot hang a worker: the attempt is abandoned, the connection dropped and a new one made.
A new connection gets 0.5 s for its TCP handshake (a lab host answers in microseconds; a VIP that
moved answers a new SYN at once), then up to 3 s for TLS and authentication.
The workload stops by itself after max_seconds or max_rows, or when stop() is called.

    client_inventory(...)                        # the deploy's pg_hba admits the main machine
    install_sql(role, password, salt)            # run once on the primary (superuser)
    with Workload(vip, 5432, role, password) as load:
        ...                                      # break something
    load.acks, load.failures
"""
from __future__ import annotations

import itertools
import select
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions

from planner.scram import scram_verifier

TABLE = "pgcascade_workload"
NODE_FUNCTION = "pgcascade_node"


def install_sql(role: str, password: str, salt: bytes) -> str:
    """The table, the per-node identity function and the client role (SCRAM verifier, not the
    password: this goes through ssh's stdin, never argv)."""
    verifier = scram_verifier(password, salt)
    return f"""
        create role {role} login password '{verifier}';
        create table {TABLE} (n bigint primary key, worker int not null, node text not null,
                              committed_at timestamptz not null default clock_timestamp());
        create function {NODE_FUNCTION}() returns text language sql security definer
            set search_path = pg_catalog
            as $$ select btrim(pg_read_file('/etc/hostname'), E' \\n') $$;
        revoke all on function {NODE_FUNCTION}() from public;
        grant execute on function {NODE_FUNCTION}() to {role};
        grant select, insert on {TABLE} to {role};
    """


def client_inventory(lab_desc: dict, directory: Path, role: str, extra: dict | None = None) -> str:
    """An inventory file in `directory`: the lab's, with the main machine (the lab bridge's
    address, where the workload connects from) as an application host for `role`, and `extra`
    data on every host (e.g. heartbeat timings)."""
    lab_inventory = Path(__file__).resolve().parents[1] / "inventories/lab.py"
    path = Path(directory) / "inventory.py"
    path.write_text(textwrap.dedent(f"""\
        import runpy
        _lab = runpy.run_path({str(lab_inventory)!r})
        _app = {{"pg_app_hosts": [{{"address": {lab_desc['bridge_ip']!r}, "database": "postgres",
                                   "user": {role!r}}}], **{dict(extra or {})!r}}}
        master, cascade, downstream = ([(n, {{**d, **_app}}) for n, d in _lab[g]]
                                       for g in ("master", "cascade", "downstream"))
        """))
    return str(path)


class Timeout(Exception):
    pass


def _wait(conn, deadline: float, tcp_deadline: float | None = None) -> None:
    """Drive an asynchronous connection until it is idle again, or raise Timeout.

    tcp_deadline (a new connection): the TCP handshake must be done by then. A server that moved
    answers a new SYN at once, while an unanswered one is only sent again a second later.
    """
    waiting_for_tcp = tcp_deadline is not None
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        now = time.monotonic()
        limit = min(deadline, tcp_deadline) if waiting_for_tcp and tcp_deadline is not None else deadline
        remaining = limit - now
        if remaining <= 0:
            raise Timeout("no TCP connection in time" if waiting_for_tcp else "no answer in time")
        if state == psycopg2.extensions.POLL_READ:
            ready = select.select([conn.fileno()], [], [], remaining)[0]
        elif state == psycopg2.extensions.POLL_WRITE:
            ready = select.select([], [conn.fileno()], [], remaining)[1]
        else:
            ready = []
        waiting_for_tcp = waiting_for_tcp and not ready


@dataclass(frozen=True)
class Ack:
    n: int
    worker: int
    sent: float  # time.monotonic() when the INSERT was sent
    acked: float  # time.monotonic() when the server acknowledged the commit
    node: str  # the server that acknowledged it


@dataclass(frozen=True)
class Failure:
    worker: int
    at: float
    what: str  # "connect" or "commit"
    error: str


class Workload:
    def __init__(self, host: str, port: int, user: str, password: str, *, dbname: str = "postgres",
                 workers: int = 2, pause: float = 0.02, tcp_timeout: float = 0.5,
                 connect_timeout: float = 3.0, commit_timeout: float = 3.0, max_seconds: float = 600, max_rows: int = 200_000,
                 first_number: int = 1):
        self._dsn = dict(host=host, port=port, user=user, password=password, dbname=dbname,
                         connect_timeout=2, application_name="pgcascade-workload",
                         options="-c synchronous_commit=on")
        self.workers, self.pause = workers, pause
        self.tcp_timeout, self.connect_timeout = tcp_timeout, connect_timeout
        self.commit_timeout = commit_timeout
        self.max_seconds, self.max_rows = max_seconds, max_rows
        self.acks: list[Ack] = []
        self.failures: list[Failure] = []
        self._numbers = itertools.count(first_number)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started: float | None = None
        self.stopped: float | None = None

    # ---- control

    def start(self) -> "Workload":
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._run, args=(w,), daemon=True, name=f"workload-{w}")
                         for w in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.connect_timeout + self.commit_timeout + 5)
        self.stopped = time.monotonic()

    def __enter__(self) -> "Workload":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- results

    def wait_for_acks(self, count: int, timeout: float, after: float | None = None) -> None:
        """Poll until `count` commits were acknowledged (after the time `after`), or fail."""
        deadline = time.monotonic() + timeout
        while len(self.acks_after(after)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.acks_after(after))} acknowledged commits, wanted {count}"
                                     f" within {timeout:.0f} s; last failures: {self.failures[-3:]}")
            time.sleep(0.05)

    def acks_after(self, after: float | None) -> list[Ack]:
        with self._lock:
            return [a for a in self.acks if after is None or a.acked > after]

    def first_ack_after(self, after: float, node: str | None = None) -> Ack | None:
        return min((a for a in self.acks_after(after) if node is None or a.node == node),
                   key=lambda a: a.acked, default=None)

    def spans(self) -> dict[str, tuple[float, float]]:
        """Per acknowledging node: (first, last) acknowledgement time."""
        spans: dict[str, tuple[float, float]] = {}
        for ack in sorted(self.acks, key=lambda a: a.acked):
            first, _ = spans.get(ack.node, (ack.acked, ack.acked))
            spans[ack.node] = (first, ack.acked)
        return spans

    def longest_pause(self, start: float, end: float) -> float:
        """The longest time without an acknowledged write between start and end (time.monotonic())."""
        times = sorted([start] + [a.acked for a in self.acks if start <= a.acked <= end] + [end])
        return max(b - a for a, b in zip(times, times[1:]))

    def turns(self) -> list[str]:
        """The acknowledging nodes in acknowledgement order, consecutive repeats collapsed: a
        switchover and back is [a, b, a]; two servers acknowledging at once interleave into more."""
        order: list[str] = []
        for ack in sorted(self.acks, key=lambda a: a.acked):
            if not order or order[-1] != ack.node:
                order.append(ack.node)
        return order

    def overlaps(self) -> list[str]:
        """Pairs of nodes whose acknowledgement periods overlap (a split brain), in words."""
        found = []
        items = sorted(self.spans().items(), key=lambda item: item[1][0])
        for (node_a, (_first_a, last_a)), (node_b, (first_b, _last_b)) in itertools.combinations(items, 2):
            if first_b <= last_a:
                found.append(f"{node_a} acknowledged until {last_a:.3f}, {node_b} from {first_b:.3f}")
        return found

    # ---- the workers

    def _connect(self):
        conn = psycopg2.connect(async_=1, **self._dsn)
        started = time.monotonic()
        try:
            _wait(conn, started + self.connect_timeout, tcp_deadline=started + self.tcp_timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    def _commit(self, conn, worker: int) -> Ack:
        n = next(self._numbers)
        cursor = conn.cursor()
        sent = time.monotonic()
        cursor.execute(f"insert into {TABLE} (n, worker, node) values (%s, %s, {NODE_FUNCTION}()) returning node",
                       (n, worker))
        _wait(conn, sent + self.commit_timeout)
        node = cursor.fetchone()[0]
        return Ack(n, worker, sent, time.monotonic(), node)

    def _failed(self, worker: int, what: str, error: BaseException) -> None:
        with self._lock:
            self.failures.append(Failure(worker, time.monotonic(), what, f"{type(error).__name__}: {error}".strip()))

    def _run(self, worker: int) -> None:
        assert self.started is not None  # start() sets it before the workers run
        deadline = self.started + self.max_seconds
        conn = None
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.acks) < self.max_rows:
            if conn is None:
                try:
                    conn = self._connect()
                except (psycopg2.Error, Timeout, OSError) as error:
                    self._failed(worker, "connect", error)
                    self._stop.wait(self.pause)
                    continue
            try:
                ack = self._commit(conn, worker)
            except (psycopg2.Error, Timeout, OSError) as error:
                self._failed(worker, "commit", error)
                conn.close()
                conn = None
                continue
            with self._lock:
                self.acks.append(ack)
            self._stop.wait(self.pause)
        if conn is not None:
            conn.close()
