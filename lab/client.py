"""The lab seen from a test or a bench: a lab that is up, its hosts over ssh, polls with a deadline,
and deployed clusters booted from a snapshot."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
LAB_INVENTORY = "inventories/lab.py"
# hapostgres's primary flag (planner.settings.PRIMARY_FLAG_PATH; the lab does not import the product).
PRIMARY_FLAG_PATH = "/run/pgcascade/primary-allowed"


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    """Poll check() until it returns something truthy (a deadline, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def lab_cli(lab: str, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """python -m lab --name LAB ARGS..., as a DBA would run it."""
    proc = subprocess.run([sys.executable, "-m", "lab", "--name", lab, *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"lab {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_lab_name(short: str) -> str:
    """The lab a test uses: PGCASCADE_TEST_LAB_PREFIX (one letter) lets two checkouts run the
    suite at once without taking each other's labs down."""
    return (os.environ.get("PGCASCADE_TEST_LAB_PREFIX", "") + short)[:6]


test_lab_name.__test__ = False  # type: ignore[attr-defined]  # pytest reads it: a helper, not a test


class Lab:
    """A lab that is up: its description, and helpers to reach its hosts. Bare hosts, or booted
    from a snapshot (`snapshot=`); backup=True: the last host is the backup repository host;
    with_packages=True: the hosts come with the cluster's packages installed (lab/image.py)."""

    def __init__(self, name: str, hosts: int = 3, snapshot: str | None = None, exact_name: bool = False,
                 subnet: str | None = None, only: str | None = None, backup: bool = False,
                 with_packages: bool = False):
        name = name if exact_name else test_lab_name(name)
        self.name = name
        lab_cli(name, "down", check=False)  # fresh hosts, even after an interrupted run
        if snapshot:
            lab_cli(name, "up", "--from", snapshot, *(["--only", only] if only else []))
        else:
            lab_cli(name, "up", "--hosts", str(hosts), *(["--subnet", subnet] if subnet else []),
                    *(["--backup"] if backup else []), *(["--with-packages"] if with_packages else []))
        self.desc = json.loads(lab_cli(name, "describe").stdout)

    @property
    def env(self) -> dict:
        return {**os.environ, "PGCASCADE_LAB": self.name}

    def ip(self, host: str) -> str:
        return next(h["ip"] for h in self.desc["hosts"] if h["name"] == host)

    def ssh(self, host: str, command: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", self.desc["ssh_key"], "-o", f"UserKnownHostsFile={self.desc['known_hosts']}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
             f"root@{self.ip(host)}", command],
            text=True, capture_output=True, timeout=timeout, input=input)

    def psql(self, host: str, sql: str, timeout: float = 60) -> str:
        """A query as the postgres superuser on host (unaligned, tuples only); fails loudly."""
        proc = self.ssh(host, "cd / && runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -f -",
                        timeout=timeout, input=sql)
        assert proc.returncode == 0, f"{host}: {sql}\n{proc.stderr}"
        return proc.stdout.strip()

    def secret(self, name: str) -> str:
        for line in Path(self.desc["secrets_file"]).read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        raise KeyError(name)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return lab_cli(self.name, *args, check=check)

    def pyinfra(self, *args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([PYINFRA, *args], cwd=ROOT, env=env or self.env, text=True,
                                  capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            # What pyinfra printed says which step hung (the bare exception shows only its start).
            printed = "".join(_text(part) for part in (error.stdout, error.stderr))
            raise AssertionError(f"pyinfra {' '.join(args)} did not finish in {timeout:.0f} s; "
                                 f"it printed, last:\n{printed[-6000:]}") from None

    def status(self, timeout: float = 60, inventory: str = LAB_INVENTORY) -> subprocess.CompletedProcess:
        """python -m tasks.status INVENTORY (exit 0: the cluster is as deployed and healthy)."""
        return subprocess.run([sys.executable, "-m", "tasks.status", inventory], cwd=ROOT, env=self.env,
                              text=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout: float = 120, inventory: str = LAB_INVENTORY) -> subprocess.CompletedProcess:
        """Poll tasks.status until it exits 0; on the deadline, fail with its last report."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.status(inventory=inventory)
            if proc.returncode == 0:
                return proc
            if time.monotonic() > deadline:
                raise AssertionError(f"lab {self.name}: the cluster is not healthy within {timeout:.0f} s; "
                                     f"tasks.status says:\n{proc.stdout[-3000:]}{proc.stderr[-1500:]}")
            time.sleep(1)

    def down(self) -> None:
        lab_cli(self.name, "down", check=False)


def has_vip(lab: Lab, host: str) -> bool:
    return f" {lab.desc['vip']}/" in lab.ssh(host, "ip -4 -o addr show dev eth0", timeout=20).stdout


def holds_resources(lab: Lab, host: str) -> bool:
    """heartbeat's resources are on host: hapostgres's primary flag and the VIP (one round trip)."""
    proc = lab.ssh(host, f"test -e {PRIMARY_FLAG_PATH} && ip -4 -o addr show dev eth0", timeout=20)
    return proc.returncode == 0 and f" {lab.desc['vip']}/" in proc.stdout
