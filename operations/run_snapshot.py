"""The facts a run reads, read once per host and shared until the first change.

A no-op rerun used to spend its time in ssh round trips: about 45 fact reads per host, one
command each, most of them reading what an earlier step had just read. Here the deploy
declares, per host, the facts its steps ask for (`declare_run_facts`); the first step that
asks reads all of them in one command per host (every host at once), and each fact's own
`process()` parses its section. `read_fact` serves a fact from that snapshot while nothing has
changed anywhere in the run (no operation on any host has run a command), else it reads it
live, as `host.get_fact` does. So a rerun that finds nothing to do reads each host once, and
the first repair makes every later read live again: operations that depend on earlier ones
still see the state those left.

Only facts read with the same arguments (and the same user) as declared are served; any other
read, a section that failed, or one whose output its fact cannot parse is read live.
"""
from __future__ import annotations

import json
import shlex
import weakref
from collections.abc import Callable
from inspect import getcallargs
from typing import Any

import gevent
from gevent.event import AsyncResult
from pyinfra import logger
from pyinfra.api import FactBase, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.host import Host
from pyinfra.api.state import State, StateStage
from pyinfra.connectors.util import make_unix_command_for_host
from pyinfra.context import ctx_state
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from facts.managed import ManagedState, PathStates

# The global arguments that change what a fact's command reads (who runs it, where, how).
_COMMAND_ARGUMENTS = ("_sudo", "_sudo_user", "_use_sudo_login", "_preserve_sudo_env", "_su_user", "_use_su_login",
                      "_su_shell", "_preserve_su_env", "_doas", "_doas_user", "_dzdo", "_dzdo_user",
                      "_shell_executable", "_env", "_chdir")
_RUN_ONLY = ("_timeout", "_get_pty", "_stdin", "_success_exit_codes")  # the connector's, not the command's
_MARK = "@@pgcascade-run-fact"

# (fact class, {fact kwargs and global arguments}) per host: what the run's steps will ask for.
Declared = list[tuple[type[FactBase], dict[str, Any]]]


class _RunFacts:
    """One run's declaration and snapshots (per pyinfra State)."""

    def __init__(self, declare: Callable[[str], Declared]):
        self.declare = declare
        self.snapshots: dict[str, AsyncResult] = {}
        self.stage: StateStage | None = None
        self.live_reads = 0
        self.served = 0


_RUNS: weakref.WeakKeyDictionary[State, _RunFacts] = weakref.WeakKeyDictionary()


def declare_run_facts(declare: Callable[[str], Declared]) -> None:
    """Register, once per run, the function that lists a host's facts (by inventory name)."""
    state = ctx_state.get()
    if state is not None and state not in _RUNS:
        _RUNS[state] = _RunFacts(declare)


def _split(state: State, host: Host, cls: type[FactBase], kwargs: dict, inherit: bool) -> tuple[dict, dict]:
    """(fact kwargs with their defaults, global arguments), as pyinfra's get_fact sees them."""
    merged = dict(host.current_op_global_arguments or {}) if inherit else {}
    merged.update(kwargs)
    arguments, _ = pop_global_arguments(state, host, merged)
    global_kwargs: dict[str, Any] = dict(arguments)
    fact_kwargs = {k: v for k, v in kwargs.items() if k not in global_kwargs}
    if fact_kwargs:
        fact_kwargs = getcallargs(cls().command, **fact_kwargs)
        fact_kwargs.pop("self", None)
    if cls.shell_executable:
        global_kwargs["_shell_executable"] = cls.shell_executable
    return fact_kwargs, global_kwargs


def _key(cls: type[FactBase], fact_kwargs: dict, global_kwargs: dict) -> str | None:
    try:
        return json.dumps([cls.name, fact_kwargs, [[k, global_kwargs.get(k)] for k in _COMMAND_ARGUMENTS]],
                          sort_keys=True)
    except TypeError:  # an argument that is not plain data: always read live
        return None


def _section_command(state: State, host: Host, fact: FactBase, fact_kwargs: dict, global_kwargs: dict) -> str:
    """The fact's command as get_fact runs it (some facts keep what command() was given for process())."""
    command = fact.command(**fact_kwargs) if callable(fact.command) else fact.command
    requires = fact.requires_command(**fact_kwargs) if callable(fact.requires_command) else fact.requires_command
    if requires:
        command = StringCommand("if", "command", "-v", requires, ">/dev/null", "2>&1;", "then", "(", command, ");",
                                "else", "exit", "127;", "fi")
    if not isinstance(command, StringCommand):
        command = StringCommand(command)
    connector = {k: v for k, v in global_kwargs.items() if k in CONNECTOR_ARGUMENT_KEYS and k not in _RUN_ONLY}
    return make_unix_command_for_host(state, host, command, **connector).get_raw_value()


def _read_snapshot(state: State, host: Host, declared: Declared) -> dict[str, Any]:
    """Every declared fact of the host in one command: {key: processed value} (failed ones left out)."""
    sections = []
    for cls, kwargs in declared:
        fact_kwargs, global_kwargs = _split(state, host, cls, kwargs, inherit=False)
        key = _key(cls, fact_kwargs, global_kwargs)
        if key is not None:
            fact = cls()
            sections.append((key, fact, _section_command(state, host, fact, fact_kwargs, global_kwargs)))
    # The sections run side by side (most of their time is waiting: psql's connection, sudo), each
    # into its own file; then each one's lines, prefixed with "|" (awk ends a last line without a
    # newline), and its exit status.
    run = [f"( {command} ) </dev/null >\"$d/{i}\" 2>/dev/null; echo $? >\"$d/{i}.rc\" &"
           for i, (_, _, command) in enumerate(sections)]
    show = [f"echo '{_MARK} {i}'; awk '{{print \"|\" $0}}' \"$d/{i}\"; echo \"{_MARK} {i} rc=$(cat \"$d/{i}.rc\")\""
            for i in range(len(sections))]
    script = "\n".join(["d=$(mktemp -d) || exit 0", *run, "wait", *show, 'rm -rf "$d"', "true"])
    status, output = host.run_shell_command(StringCommand("bash", "-c", shlex.quote(script)),
                                            _sudo=False, _su_user=None, _doas=False, _dzdo=False)
    if not status:
        return {}
    lines: dict[int, list[str]] = {}
    codes: dict[int, str] = {}
    current = None
    for line in output.stdout_lines:
        if line.startswith(_MARK):
            words = line.split()
            if len(words) == 3 and words[2].startswith("rc="):
                codes[int(words[1])] = words[2][3:]
                current = None
            else:
                current = int(words[1])
                lines[current] = []
        elif current is not None and line.startswith("|"):
            lines[current].append(line[1:])
    values: dict[str, Any] = {}
    for i, (key, fact, _) in enumerate(sections):
        if codes.get(i) != "0":
            continue
        try:
            values[key] = fact.process(lines[i]) if lines[i] else fact.default()
        except Exception:  # noqa: BLE001 - read live instead: get_fact reports it as it always did
            continue
    message = f"{host.print_prefix}Loaded {len(values)} of {len(sections)} declared facts in one command"
    (logger.info if state.print_fact_info else logger.debug)(message)
    return values


def _anything_changed(state: State) -> bool:
    """Has any operation, on any host, run a command in this run?"""
    for ops in state.ops.values():
        for data in ops.values():
            if data.operation_meta.executed:
                return True
    return False


def _snapshot(state: State, run: _RunFacts, name: str) -> dict[str, Any]:
    # Prepared with a prompt (or --dry) then executed: the execution reads again.
    if run.stage != state.current_stage and state.check_for_changes:
        run.snapshots.clear()
    run.stage = state.current_stage
    if name not in run.snapshots:  # every host at once: the other hosts' steps ask soon after
        for target in [h for h in state.inventory if h in state.activated_hosts and h.name not in run.snapshots]:
            result: AsyncResult = AsyncResult()
            run.snapshots[target.name] = result
            gevent.spawn(lambda t=target, r=result: r.set(_safe_read(state, t, run.declare(t.name))))
    return run.snapshots[name].get()


def _safe_read(state: State, host: Host, declared: Declared) -> dict[str, Any]:
    try:
        return _read_snapshot(state, host, declared) if declared else {}
    except Exception:  # noqa: BLE001 - the live reads say what is wrong, as they did without a snapshot
        return {}


# Facts that map each name they are given to its state: a read of some names is served from a
# declared read of more of them (with the same other arguments).
_BY_NAME = {PathStates.name: "paths", SystemdStatus.name: "services", SystemdEnabled.name: "services"}


def _part_by_name(field: str, declared: dict, value: Any, wanted: dict) -> Any:
    if {k: v for k, v in declared.items() if k != field} != {k: v for k, v in wanted.items() if k != field}:
        return None
    names = set(wanted.get(field) or [])
    if not names <= set(declared.get(field) or []):
        return None
    return {item: state for item, state in value.items() if item in names}


def _part_of_managed_state(declared: dict, value: Any, wanted: dict) -> Any:
    """ManagedState: each part of it depends on its own arguments only (the server's part on the
    setting names, port and role; the keys on home; ...)."""
    same = ("setting_names", "port", "role")
    if any(declared.get(k) != wanted.get(k) for k in same):
        return None
    paths, units = set(wanted.get("paths") or []), set(wanted.get("units") or [])
    if not (paths <= set(declared.get("paths") or []) and units <= set(declared.get("units") or [])):
        return None
    part = {**ManagedState.default(), "heartbeat": value["heartbeat"], "now": value["now"],
            "postgres": value["postgres"],
            "paths": {p: v for p, v in value["paths"].items() if p in paths},
            "units": {u: v for u, v in value["units"].items() if u in units}}
    for field, parts in (("home", ("authorized_keys", "public_key")), ("vip", ("vip",)),
                         ("failover_view", ("failover_view",))):
        if wanted.get(field) == declared.get(field):
            part.update({name: value[name] for name in parts})
        elif wanted.get(field):  # another one than declared: read it
            return None
    return part


def _covering(snapshot: dict[str, Any], cls: type[FactBase], fact_kwargs: dict, global_kwargs: dict):
    """The part of a declared read that answers this one (None: there is none)."""
    if cls.name in _BY_NAME:
        field = _BY_NAME[cls.name]

        def part(declared: dict, value: Any) -> Any:
            return _part_by_name(field, declared, value, fact_kwargs)
    elif cls is ManagedState:
        def part(declared: dict, value: Any) -> Any:
            return _part_of_managed_state(declared, value, fact_kwargs)
    else:
        return None
    arguments = [[k, global_kwargs.get(k)] for k in _COMMAND_ARGUMENTS]
    for key, value in snapshot.items():
        name, declared_kwargs, declared_arguments = json.loads(key)
        if name == cls.name and declared_arguments == arguments:
            found = part(declared_kwargs, value)
            if found is not None:
                return found
    return None


def read_fact(target: Host, cls: type[FactBase], **kwargs: Any) -> Any:
    """`target.get_fact(cls, **kwargs)`, from the run's snapshot while nothing has changed."""
    state = ctx_state.get()
    run = _RUNS.get(state) if state is not None else None
    if run is None or state is None or _anything_changed(state) or target not in state.activated_hosts:
        return _live(run, target, cls, kwargs)
    # Inside an operation a fact inherits its global arguments (pyinfra's get_fact does the same).
    fact_kwargs, global_kwargs = _split(state, target, cls, kwargs, inherit=True)
    key = _key(cls, fact_kwargs, global_kwargs)
    if key is None:
        return _live(run, target, cls, kwargs)
    snapshot = _snapshot(state, run, target.name)
    if key in snapshot:
        run.served += 1
        return snapshot[key]
    covered = _covering(snapshot, cls, fact_kwargs, global_kwargs)
    if covered is not None:
        run.served += 1
        return covered
    return _live(run, target, cls, kwargs)


def _live(run: _RunFacts | None, target: Host, cls: type[FactBase], kwargs: dict) -> Any:
    if run is not None:
        run.live_reads += 1
    return target.get_fact(cls, **kwargs)


def read_counts() -> tuple[int, int]:
    """(facts served from the snapshot, facts read live) in this run so far."""
    state = ctx_state.get()
    run = _RUNS.get(state) if state is not None else None
    return (run.served, run.live_reads) if run else (0, 0)

