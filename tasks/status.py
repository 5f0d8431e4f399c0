"""The cluster's status, from the controller: `python -m tasks.status INVENTORY`.

Reads every PostgreSQL host's PgState fact in parallel over ssh (as the postgres OS user), then
prints planner.status_report's replication tree (role, in recovery, timeline, upstream,
pg_stat_replication rows, receive/replay bytes behind the master) and what differs from the
inventory. Changes nothing.

Exit status: 0 the cluster matches the inventory; 1 it does not (or a host could not be read);
2 bad input (no such inventory file, or an inventory that is not a valid cluster).

A host that cannot be reached (down, hung, cut off, ssh refused) is reported as such, with
pyinfra's reason, and the others are still shown. Each host gets a deadline (--timeout) for
connecting and reading its fact, so a hung host cannot hang the command.
"""
from gevent import monkey

monkey.patch_all()  # as pyinfra's CLI does: ssh sessions to the hosts run concurrently

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from pyinfra import logger as pyinfra_logger  # noqa: E402
from pyinfra.api import Config, State  # noqa: E402
from pyinfra.api.exceptions import ConnectError, PyinfraError  # noqa: E402
from pyinfra.api.facts import get_fact  # noqa: E402
from pyinfra.api.inventory import Inventory  # noqa: E402
from pyinfra.context import ctx_config, ctx_host, ctx_inventory, ctx_state  # noqa: E402
from pyinfra_cli.inventory import make_inventory  # noqa: E402

from deploys.context import inventory_hosts  # noqa: E402
from deploys.hostrules_package import package_contents  # noqa: E402
from facts.backup import BackupRepositoryState  # noqa: E402
from facts.managed import ManagedState  # noqa: E402
from facts.pg_state import PgState  # noqa: E402
from planner import registry, stack_report  # noqa: E402
from planner.backup_status import backup_json, render_backup_status  # noqa: E402
from planner.model import Node, Topology  # noqa: E402
from planner.pgstate import PgStateDict  # noqa: E402
from planner.secrets import ALL_SECRETS, SecretsError, parse_secrets_file, resolve_secrets  # noqa: E402
from planner.settings import POSTGRES_HOME, RUNTIME_DIRECTORY  # noqa: E402
from planner.status_report import render_status, unreachable_reason  # noqa: E402
from planner.topology import InventoryError, build_topology  # noqa: E402

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT = 0, 1, 2
FAILOVER_VIEW_PATH = f"{RUNTIME_DIRECTORY}/can-fail-over.json"  # each heartbeat node's ha-watch writes it
AS_POSTGRES = {"_sudo": True, "_sudo_user": "postgres"}  # as operations.postgres.AS_POSTGRES
DEFAULT_TIMEOUT = 10.0  # seconds per host: ssh connect + the fact (it bounds its own psql at 5-10 s)
CONNECT_TIMEOUT = 5  # seconds for the TCP connection, within the deadline

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BadInput(Exception):
    """The inventory cannot be used: nothing was read from any host."""


def load_inventory(path: str) -> Inventory:
    """The inventory file, loaded the way `pyinfra INVENTORY ...` loads it."""
    if not Path(path).is_file():
        raise BadInput(f"{path}: no such inventory file")
    try:
        return make_inventory(path, cwd=os.getcwd())
    except SystemExit as stop:  # inventories/lab.py stops this way when its lab is not up
        if isinstance(stop.code, int) or stop.code is None:
            raise BadInput(f"{path}: the inventory file exited (status {stop.code})") from None
        raise BadInput(str(stop.code)) from None


class _HostErrors(logging.Handler):
    """Collects pyinfra's error lines per host (they start with the host's `[name] ` prefix)."""

    def __init__(self, names: Iterable[str]):
        super().__init__(level=logging.ERROR)
        self.names = set(names)
        self.lines: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = _ANSI.sub("", record.getMessage()).strip()
        match = re.match(r"\[([^\]]+)\]\s*(.*)", text, re.S)
        if match and match.group(1) in self.names:
            line = match.group(2).strip()
            if not line.startswith("Error: could not"):  # "could not load fact: ..." says nothing more
                self.lines.setdefault(match.group(1), []).append(line)

    def detail(self, name: str, limit: int = 400) -> str:
        text = "; ".join(self.lines.get(name, []))
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _quiet_pyinfra(verbose: bool, collector: logging.Handler) -> None:
    """Only our report on stdout; pyinfra's own messages on stderr with -v."""
    pyinfra_logger.propagate = False
    pyinfra_logger.handlers[:] = [collector]
    pyinfra_logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    if verbose:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("pyinfra: %(message)s"))
        pyinfra_logger.addHandler(stream)
    else:
        # paramiko logs a traceback from its own thread when a frozen host never sends its banner:
        # the report's "down or unreachable" line says it already.
        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False


def _fact_kwargs(topology: Topology, timeout: float) -> dict:
    c = topology.cluster
    return {"version": c.version, "cluster": c.name, "port": c.port, "_timeout": max(1, int(timeout)),
            **AS_POSTGRES}


def managed_kwargs(topology: Topology, reg: registry.HostRegistry, timeout: float) -> dict:
    """ManagedState's arguments for one host's registry (as root: it reads root's files too)."""
    c = topology.cluster
    return {"paths": reg.paths(), "units": [u.unit for u in reg.units],
            "setting_names": list(registry.managed_setting_names(topology)), "port": c.port,
            "role": c.replication_user, "home": POSTGRES_HOME, "vip": c.vip.address if c.vip else "",
            "failover_view": FAILOVER_VIEW_PATH,
            "_sudo": True, "_timeout": max(1, int(timeout))}


def _read_host(state: State, host, kwargs: dict, managed_kwargs: dict | None = None, fact_class=PgState):
    """Connect and read the host's fact (PgState; the backup repository host's: BackupRepositoryState)
    and ManagedState; ((fact, managed), None) or (None, reason)."""
    try:
        host.connect(show_errors=False, raise_exceptions=True)
    except ConnectError as error:
        return None, unreachable_reason(str(error))
    state.activate_host(host)
    def read(fact_class, fact_kwargs):
        with ctx_host.use(host):
            return get_fact(state, host, fact_class, kwargs=fact_kwargs)

    # Both facts at once, on two channels of the host's one ssh connection.
    readers = [gevent.spawn(read, fact_class, kwargs)]
    if managed_kwargs:
        readers.append(gevent.spawn(read, ManagedState, managed_kwargs))
    gevent.joinall(readers)
    for reader in readers:
        if not reader.successful():
            if isinstance(reader.exception, PyinfraError) and host not in state.failed_hosts:
                return None, f"connected, but its state could not be read ({reader.exception})"
            if not isinstance(reader.exception, PyinfraError):
                raise reader.exception
    fact, managed = readers[0].value, readers[1].value if managed_kwargs else None
    if host in state.failed_hosts:
        return None, "connected, but its state could not be read"
    return (fact, managed), None


def read_facts(state: State, config: Config, inventory: Inventory, names: list[str], kwargs: dict,
               timeout: float, errors: _HostErrors, managed_kwargs: dict | None = None,
               other_facts: dict | None = None) -> tuple[dict, dict, dict]:
    """Every named host's PgState and ManagedState (managed_kwargs: by host name), all at once (one
    ssh session each), within `timeout` seconds. other_facts: {name: (fact class, kwargs)} for a
    host read with another fact instead of PgState (the backup repository host).

    Returns (facts_by_host, managed_by_host, reasons): a host that could not be read is None in
    both, and reasons says why, in words.
    """
    managed_kwargs = managed_kwargs or {}
    managed = {}
    hosts = [inventory.get_host(name) for name in names]
    with ctx_inventory.use(inventory):
        state.init(inventory, config, initial_limit=hosts)
        other_facts = other_facts or {}
        greenlets = {}
        for host in hosts:
            fact_class, fact_kwargs = other_facts.get(host.name, (PgState, kwargs))
            greenlets[state.pool.spawn(_read_host, state, host, fact_kwargs, managed_kwargs.get(host.name),
                                       fact_class)] = host
        gevent.joinall(list(greenlets), timeout=timeout)
        facts: dict[str, PgStateDict | None] = {}
        reasons: dict[str, str] = {}
        for greenlet, host in greenlets.items():
            if not greenlet.ready():
                greenlet.kill(block=False)
                facts[host.name] = None
                reasons[host.name] = f"no answer within {timeout:g} s (a hung host, or its network cut?)"
            elif not greenlet.successful():
                facts[host.name] = None
                reasons[host.name] = f"its state could not be read ({greenlet.exception!r})"
            else:
                both, reason = greenlet.value
                facts[host.name], managed[host.name] = both or (None, None)
                if reason:
                    detail = errors.detail(host.name)
                    reasons[host.name] = f"{reason}: {detail}" if detail and host.connected else reason
        for host in list(state.activated_hosts):
            try:
                host.disconnect()
            except Exception:  # noqa: BLE001 - best effort, the report is what matters
                pass
    return facts, managed, reasons


def _secrets(inventory: Inventory) -> dict | None:
    """The secrets as the deploy finds them (the environment, then secrets_file); None when one
    is missing: the content of the files holding a secret is then not compared."""
    path = next((h.data.get("secrets_file") for h in inventory if h.data.get("secrets_file")), None)
    try:
        values = parse_secrets_file(Path(path).read_text(), source=path) if path and Path(path).is_file() else None
        return resolve_secrets(list(ALL_SECRETS), os.environ, values, path)
    except (SecretsError, OSError):
        return None


def _json_host(node: Node, fact: PgStateDict | None, reason: str | None) -> dict:
    return {"role": node.role, "address": node.address, "upstream": node.upstream,
            "reachable": reason is None and fact is not None,
            "unreachable_reason": reason,
            "running": fact["running"] if fact else None, "in_recovery": fact["in_recovery"] if fact else None,
            "timeline": fact["timeline"] if fact else None, "lsn": fact["lsn"] if fact else None,
            "wal_receiver": fact["wal_receiver"] if fact else None, "replication": fact["replication"] if fact else [],
            "pending_restart": fact["pending_restart"] if fact else []}


def json_document(topology: Topology, facts: dict, reasons: dict, view: dict, problems: list[str],
                  exit_code: int, backup: dict | None = None) -> dict:
    """The `--json` document (docs/status-json.md)."""
    c = topology.cluster
    return {
        "format": stack_report.FORMAT,
        "exit_code": exit_code,
        "cluster": {"version": c.version, "name": c.name, "port": c.port, "synchronous": c.synchronous},
        "hosts": {n.name: _json_host(n, facts.get(n.name), reasons.get(n.name)) for n in topology.nodes},
        **view,
        "backup": backup,
        "problems": problems,
    }


def status(inventory_path: str, timeout: float = DEFAULT_TIMEOUT, verbose: bool = False,
           out=sys.stdout, as_json: bool = False) -> int:
    """Print the report; return the exit status."""
    collector = _HostErrors(())
    _quiet_pyinfra(verbose, collector)
    # No config.py: the deploy's FAIL_PERCENT = 0 would stop at the first host down.
    config = Config(FAIL_PERCENT=None, CONNECT_TIMEOUT=min(CONNECT_TIMEOUT, max(1, int(timeout))))
    state = State(check_for_changes=False)
    state.cwd = os.getcwd()
    with ctx_config.use(config), ctx_state.use(state):  # the inventory file runs in pyinfra's context
        try:
            inventory = load_inventory(inventory_path)
            topology = build_topology(inventory_hosts(inventory))
        except BadInput as error:
            _bad_input(out, as_json, str(error))
            return EXIT_BAD_INPUT
        except InventoryError as error:
            _bad_input(out, as_json, f"{inventory_path} is not a valid cluster:\n{error}")
            return EXIT_BAD_INPUT
        names = [node.name for node in topology.nodes]
        backup = topology.cluster.backup
        other_facts = {}
        if backup is not None:  # the repository host, read in the same round
            other_facts[backup.host] = (BackupRepositoryState, {"stanza": backup.stanza,
                                                                "_timeout": max(1, int(timeout)), **AS_POSTGRES})
        collector.names = set(names) | set(other_facts)
        secrets, package = _secrets(inventory), package_contents()  # the files the deploy ships
        registries = {n: registry.entries(topology, n, secrets, hostrules=package) for n in names}
        facts, managed, reasons = read_facts(state, config, inventory, names + list(other_facts),
                                             _fact_kwargs(topology, timeout), timeout, collector,
                                             {n: managed_kwargs(topology, registries[n], timeout) for n in names},
                                             other_facts)
    backup_state = facts.pop(backup.host, None) if backup else None
    backup_reason = reasons.pop(backup.host, None) if backup else None
    if backup:
        managed.pop(backup.host, None)
    view = stack_report.stack_view(topology, registries, facts, managed)
    guarantee = view["synchronous_guarantee"]
    backup_lines, backup_problems = (render_backup_status(backup, backup_state, backup_reason) if backup
                                     else ([], []))
    text, problems = render_status(
        topology, facts, unreachable_reasons=reasons, extra_lines=[*stack_report.stack_lines(view), *backup_lines],
        extra_problems=[*stack_report.stack_problems(view), *backup_problems],
        synchronous_off_reason=guarantee["reason"] if guarantee["on"] is False else None)
    code = EXIT_PROBLEMS if problems else EXIT_OK
    if as_json:
        document = json_document(topology, facts, reasons, view, problems, code,
                                 backup_json(backup, backup_state, backup_reason, backup_problems) if backup else None)
        out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    else:
        out.write(text)
    out.flush()
    return code


def _bad_input(out, as_json: bool, message: str) -> None:
    if as_json:
        out.write(json.dumps({"format": stack_report.FORMAT, "exit_code": EXIT_BAD_INPUT, "error": message}) + "\n")
    else:
        print(f"status: {message}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.status",
        description="Print the replication tree from the hosts' facts and compare it with the inventory. "
                    "Exit 0: as the inventory says; 1: it differs (the problems say how); 2: bad inventory.")
    parser.add_argument("inventory", help="the pyinfra inventory file, e.g. inventories/lab.py")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per host to connect and read its state (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("-v", "--verbose", action="store_true", help="pyinfra's own log on stderr")
    parser.add_argument("--json", action="store_true", help="the same as a JSON document (docs/status-json.md)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return status(args.inventory, args.timeout, args.verbose, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
