"""Talking to the other cluster hosts: ssh as postgres (key trust and pinned host keys from the
deploy, one multiplexed connection per host kept open) to run a hostrules module there, and
pg_isready probes. Every call has a wall-clock deadline. As root, commands run as postgres."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, TypeVar

from hostrules.config import Config
from hostrules.nodestate import NodeState, as_postgres, unreachable

LIB_DIRECTORY = "/usr/local/lib/pgcascade"
T = TypeVar("T")




def run(argv: List[str], timeout: float, stdin: Optional[str] = None, any_status: bool = False) -> Optional[str]:
    """stdout of a command that exited 0 (any_status: that exited at all) within `timeout` seconds, else None."""
    try:
        proc = subprocess.run(argv, input=(stdin or "").encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=timeout, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 or any_status else None


def ssh_argv(config: Config, address: str, command: str) -> List[str]:
    return as_postgres([
        "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={config.known_hosts}",
        "-o", "ConnectTimeout=2", "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
        "-o", "ControlMaster=auto", "-o", f"ControlPath={os.path.dirname(config.known_hosts)}/hostrules-%C",
        "-o", "ControlPersist=yes",
        "-l", "postgres", "--", address, command])


def on_host(config: Config, address: str, command: str, stdin: Optional[str] = None,
            timeout: Optional[float] = None) -> Optional[str]:
    return run(ssh_argv(config, address, command), timeout or config.ssh_timeout, stdin)


def module_command(module: str, *args: str) -> str:
    return f"PYTHONPATH={LIB_DIRECTORY} exec python3 -m hostrules.{module} " + " ".join(shlex.quote(a) for a in args)


def remote_json(config: Config, address: str, module: str, *args: str,
                timeout: Optional[float] = None) -> Optional[dict]:
    out = on_host(config, address, module_command(module, *args), timeout=timeout)
    if out is None:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def parallel(items: Sequence, fn: Callable[..., T]) -> List[T]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def probe_word(status: Optional[int]) -> str:
    """pg_isready's status (124: no answer within the probe timeout) in one word."""
    if status in (0, 1):
        return "answers"  # accepting, or up but rejecting (starting, shutting down)
    if status in (2, 124):
        return "silent"
    return "unknown"


def probe(config: Config, address: str) -> str:
    """Does the PostgreSQL at `address` answer from here? answers | silent | unknown"""
    try:
        proc = subprocess.run([os.path.join(config.bin_directory, "pg_isready"), "-q", "-h", address,
                               "-p", str(config.port), "-t", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=config.probe_timeout)
        return probe_word(proc.returncode)
    except subprocess.TimeoutExpired:
        return "silent"
    except OSError:
        return "unknown"


def remote_probe(config: Config, witness_address: str, address: str) -> str:
    """Does it answer from the witness? answers | silent | unknown | unreachable (the witness did not answer)"""
    command = (f"timeout {config.probe_timeout} {shlex.quote(config.bin_directory)}/pg_isready -q "
               f"-h {shlex.quote(address)} -p {config.port} -t 2; echo $?")
    out = on_host(config, witness_address, command)
    status = (out or "").strip()
    if status in ("0", "1", "2", "124"):
        return probe_word(int(status))
    return "unreachable"


def ensure_ssh_directory(config: Config) -> None:
    """The runtime directory (the primary flag, the can-fail-over view), when run as root. The ssh
    control sockets live in postgres's ~/.ssh: the deploy's writers run as postgres."""
    if os.geteuid() == 0 and as_postgres(["x"]) != ["x"]:
        os.makedirs(config.runtime_directory, exist_ok=True)


def states_of(config: Config, names: Sequence[str]) -> Dict[str, NodeState]:
    """{name: NodeState} of other cluster hosts, read in parallel (unreachable when ssh fails)."""
    def one(name: str):
        host = config.host(name)
        data = remote_json(config, host.address, "nodestate", "--json") if host else None
        return NodeState.from_dict(data) if data else unreachable()

    return dict(zip(names, parallel(list(names), one)))


class NodeStream:
    """Another host's node state, kept current by one long-lived ssh session that runs
    `nodestate --stream` there (one psql kept open): no new ssh, python and psql every second.
    state() is the newest line when it is at most `max_age` seconds old, else unreachable (a
    frozen or cut-off host: ssh's keep-alives end the session within about 3 s and a new one is
    started every `interval`)."""

    def __init__(self, config: Config, address: str, interval: float, max_age: float):
        self.config, self.address, self.interval, self.max_age = config, address, interval, max_age
        self.latest: Optional[dict] = None
        self.at = 0.0
        self.stopped = threading.Event()
        self.proc: Optional[subprocess.Popen] = None
        self.thread = threading.Thread(target=self._follow, daemon=True, name=f"stream {address}")
        self.thread.start()

    def _follow(self) -> None:
        command = module_command("nodestate", "--json", "--stream", str(self.interval))
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                with subprocess.Popen(ssh_argv(self.config, self.address, command), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/") as proc:
                    self.proc = proc
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        try:
                            self.latest, self.at = json.loads(line), time.monotonic()
                        except ValueError:
                            continue
            except (OSError, AssertionError):
                pass
            self.stopped.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def close(self) -> None:
        """Stop following: the session ends and no new one is started."""
        self.stopped.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def state(self) -> NodeState:
        latest = self.latest
        if latest is None or time.monotonic() - self.at > self.max_age:
            return unreachable()
        try:
            return NodeState.from_dict(latest)
        except TypeError:
            return unreachable()


def log(script: str, message: str) -> None:
    """To the journal (tag pgcascade, daemon facility) and to stderr (heartbeat's debug log)."""
    line = f"{script}: {message}"
    run(["logger", "-t", "pgcascade", "-p", "daemon.notice", "--", line], timeout=5)
    print(line, file=__import__("sys").stderr, flush=True)
