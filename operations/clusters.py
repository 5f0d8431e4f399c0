"""Cluster administration: list, create, start, stop and drop clusters, and the `clean` reset.

Ad-hoc operations on the Debian clusters of a host (pg_lsclusters, pg_createcluster,
pg_ctlcluster, pg_dropcluster), run with the pyinfra CLI::

    pyinfra INVENTORY operations.clusters.list_clusters
    pyinfra INVENTORY operations.clusters.create_cluster version=15 cluster=reports port=5440 --limit pg3
    pyinfra INVENTORY operations.clusters.stop_cluster version=15 cluster=reports   (start_cluster)
    pyinfra INVENTORY operations.clusters.drop_cluster version=15 cluster=reports confirm=reports
    pyinfra INVENTORY operations.clusters.clean version=15 cluster=main confirm=main --limit pg3

Each reads its facts inside the operation (live state at execute time) and says what it does or
why it does nothing, in one line per host that shows without -v. create, start, stop and drop
are idempotent; clean always resets. drop_cluster and clean destroy data: both need
confirm=<cluster name>, and both refuse a running cluster that standbys stream from unless
force=true is given too.

start and stop go through pg_ctlcluster, which as root hands them to systemctl
(postgresql@<version>-<cluster>), and stops a cluster running outside systemd itself.
"""
from __future__ import annotations

import functools
import re

from pyinfra import host, logger, state
from pyinfra.api import FunctionCommand, OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.clusters import PgClusters
from operations.plans import preparing
from operations.postgres import pg_state, wait_ready
from planner.pgstate import ReplicationRow

CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
LOCALE_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
STOP_MODES = ("smart", "fast", "immediate")
DEFAULT_LOCALE = "C.UTF-8"  # what Debian's own main cluster gets; pyinfra's ssh session is POSIX
GERUNDS = {"drop": "dropping", "clean": "cleaning"}


# -- pure helpers (unit-tested) ----------------------------------------------------------------


def format_clusters(clusters: list[dict]) -> list[str]:
    """pg_lsclusters' table (without the owner column), aligned."""
    if not clusters:
        return ["no PostgreSQL clusters"]
    rows = [["Ver", "Cluster", "Port", "Status", "Data directory", "Log file"]]
    for c in clusters:
        rows.append([str(c["version"]), c["cluster"], "?" if c["port"] is None else str(c["port"]),
                     c["status"], c["data_directory"] or "?", c["log_file"] or "?"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [" ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]


def describe_standbys(rows: list[ReplicationRow]) -> str:
    """pg_stat_replication rows (PgState["replication"]) in a DBA's words."""
    return ", ".join(
        f"{r['application_name'] or '?'} ({r['client_addr'] or 'local'}, {r['state']}, {r['sync_state']})"
        for r in rows
    )


def find_cluster(clusters: list[dict], version: int, cluster: str) -> dict | None:
    return next((c for c in clusters if c["version"] == version and c["cluster"] == cluster), None)


def check_arguments(version, cluster, port=None, force=False) -> None:
    """Bad input raises OperationValueError before any fact is read."""
    if isinstance(version, bool) or not isinstance(version, int) or not 13 <= version < 100:
        raise OperationValueError(f"version must be a PostgreSQL major version (13 or later), not {version!r}")
    if not isinstance(cluster, str) or not CLUSTER_NAME_RE.match(cluster):
        raise OperationValueError(f"cluster must be a Debian cluster name such as main, not {cluster!r}")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise OperationValueError(f"port must be a number in 1..65535, not {port!r}")
    if not isinstance(force, bool):
        raise OperationValueError(f"force must be true or false, not {force!r}")


def check_locale(locale) -> None:
    if not isinstance(locale, str) or not LOCALE_RE.match(locale):
        raise OperationValueError(f"locale must be a locale name such as C.UTF-8, not {locale!r}")


def confirm_refusal(action: str, version: int, cluster: str, confirm) -> str | None:
    """Why a destructive action is refused for want of confirm=<cluster>, or None."""
    if confirm == cluster:
        return None
    given = "" if confirm is None else f" (confirm={confirm!r} does not name it)"
    return (f"{action} deletes {version}/{cluster} and all its data{given}: "
            f"add confirm={cluster} to the command to go ahead (nothing was changed)")


def _require_confirm(action: str, version: int, cluster: str, confirm) -> None:
    refusal = confirm_refusal(action, version, cluster, confirm)
    if refusal:
        raise OperationError(f"{host.name}: {refusal}")


# -- output ------------------------------------------------------------------------------------


def _say(message: str) -> None:
    """One line for this host, printed once per run without -v.

    When pyinfra checks for changes (prompt, --dry) the operation's body runs at prepare, up to
    its first command; with -y it runs only at execute. Print wherever it runs first.
    """
    if preparing() == state.should_check_for_changes():
        host.log(message)


def _nothing(reason: str) -> None:
    host.noop(reason)  # shown with -v, as everywhere else
    if not state.print_noop_info:
        _say(reason)


def _fail(state, host, reason: str) -> bool:  # noqa: ARG001
    """A step that fails this host with the reason (FunctionCommand passes state and host)."""
    host.log_styled(reason, fg="red", log_func=logger.error)
    return False


def refusals_fail_the_host(func):
    """An OperationError is the operation's refusal, with its reason.

    While preparing (prompt, --dry) it propagates: the CLI prints "Operation error ...: reason"
    and stops before anything runs. At execute (-y, where the body first runs) raising would dump
    a gevent traceback, so the refusal becomes a failing step that prints the reason in red: the
    host fails, FAIL_PERCENT=0 stops the run, and pyinfra exits 1.
    """
    @functools.wraps(func)
    def body(*args, **kwargs):
        try:
            yield from func(*args, **kwargs)
        except OperationError as error:
            if preparing():
                raise
            reason = str(error).removeprefix(f"{host.name}: ")  # the line starts with [host] already
            yield FunctionCommand(_fail, (reason,), {})
    return body


# -- facts -------------------------------------------------------------------------------------


def _existing(version: int, cluster: str) -> dict | None:
    return find_cluster(host.get_fact(PgClusters), version, cluster)


def _required(version: int, cluster: str) -> dict:
    """The cluster's pg_lsclusters row; refuses when there is none."""
    clusters = host.get_fact(PgClusters)
    found = find_cluster(clusters, version, cluster)
    if found is None:
        listed = ", ".join(f"{c['version']}/{c['cluster']}" for c in clusters) or "none"
        raise OperationError(f"{host.name}: there is no cluster {version}/{cluster} (pg_lsclusters lists: {listed})")
    return found


def _refuse_if_feeding_standbys(found: dict, action: str, force: bool) -> None:
    """Dropping a running upstream cuts off its standbys: refuse, unless force=true."""
    if not found["running"]:
        return  # a stopped cluster feeds nobody right now
    if found["port"] is None:
        raise OperationError(f"{host.name}: pg_lsclusters shows no port for {found['version']}/{found['cluster']}: "
                             "cannot check for connected standbys, so it is left alone")
    fact = pg_state(host, found["version"], found["cluster"], found["port"])
    standbys = fact["replication"]
    if not standbys:
        return
    name = f"{found['version']}/{found['cluster']}"
    them = f"{len(standbys)} connected standby" + ("s" if len(standbys) > 1 else "")
    pronoun = "them" if len(standbys) > 1 else "it"
    if force:
        _say(f"force=true: {action} {name} although it is the upstream of {them}: {describe_standbys(standbys)}")
        return
    raise OperationError(
        f"{host.name}: {name} is the upstream of {them}: {describe_standbys(standbys)}; "
        f"{GERUNDS[action]} it would cut {pronoun} off. Fail over or re-point {pronoun} first, "
        "or add force=true (nothing was changed)"
    )


def _report_fresh(state, host, version: int, cluster: str, port: int, was_standby: bool) -> bool:  # noqa: ARG001
    """After clean (a step at execute): the new cluster's identity, in the host's log."""
    fact = pg_state(host, version, cluster, port)
    recovery = "in recovery" if fact["in_recovery"] else "not in recovery"
    host.log(f"{version}/{cluster} is a fresh, empty cluster on port {port}: "
             f"system identifier {fact['system_identifier']}, {recovery}, "
             f"{'running' if fact['running'] else 'NOT running'}")
    if was_standby:
        host.log(f"{version}/{cluster} was a standby: if the inventory manages it, deploy.py clones it again")
    return bool(fact["running"])


# -- operations --------------------------------------------------------------------------------


@operation()
@refusals_fail_the_host
def list_clusters():
    """
    Print the PostgreSQL clusters of each host (pg_lsclusters); changes nothing.
    """
    for line in format_clusters(host.get_fact(PgClusters)):
        _say(line)
    host.noop("listed the clusters")
    yield from ()  # an operation is a generator, even one that never changes anything


@operation()
@refusals_fail_the_host
def create_cluster(version: int, cluster: str, port: int, locale: str = DEFAULT_LOCALE, start: bool = True):
    """
    The cluster exists on this port (pg_createcluster), and is started once created.

    Nothing to do when it exists on this port; refused when it exists on another port, or when
    another cluster uses the port.

    + version: PostgreSQL major version (15)
    + cluster: cluster name
    + port: its port
    + locale: locale and encoding of the new cluster (default C.UTF-8, i.e. UTF8)
    + start: start it after creating it (default true)
    """
    check_arguments(version, cluster, port)
    if port is None:
        raise OperationValueError("port is required (port=5440, say)")
    check_locale(locale)
    if not isinstance(start, bool):
        raise OperationValueError(f"start must be true or false, not {start!r}")
    clusters = host.get_fact(PgClusters)
    name = f"{version}/{cluster}"
    found = find_cluster(clusters, version, cluster)
    if found is not None:
        if found["port"] != port:
            raise OperationError(f"{host.name}: {name} already exists, on port {found['port']}, not {port}: "
                                 "nothing was changed (drop it first, or ask for its port)")
        hint = "" if found["running"] else "; start it with operations.clusters.start_cluster"
        _nothing(f"{name} already exists on port {port} ({found['status']}){hint}")
        return
    taken = [f"{c['version']}/{c['cluster']}" for c in clusters if c["port"] == port]
    if taken:
        raise OperationError(f"{host.name}: port {port} is already used by {', '.join(taken)}: pick another port")
    _say(f"create {name} on port {port} (locale {locale})" + (" and start it" if start else ""))
    yield StringCommand("pg_createcluster", "--port", str(port), "--locale", locale, str(version), cluster)
    if start:
        yield StringCommand("pg_ctlcluster", str(version), cluster, "start")
        yield wait_ready(port)


@operation()
@refusals_fail_the_host
def start_cluster(version: int, cluster: str):
    """
    The cluster runs (pg_ctlcluster start, i.e. systemctl start postgresql@<version>-<cluster>).

    + version: PostgreSQL major version
    + cluster: cluster name
    """
    check_arguments(version, cluster)
    found = _required(version, cluster)
    name = f"{version}/{cluster}"
    if found["running"]:
        _nothing(f"{name} is already running (port {found['port']}, {found['status']})")
        return
    _say(f"start {name} (port {found['port']})")
    yield StringCommand("pg_ctlcluster", str(version), cluster, "start")
    if found["port"] is not None:
        yield wait_ready(found["port"])


@operation()
@refusals_fail_the_host
def stop_cluster(version: int, cluster: str, mode: str | None = None):
    """
    The cluster is stopped (pg_ctlcluster stop, i.e. systemctl stop postgresql@<version>-<cluster>).

    + version: PostgreSQL major version
    + cluster: cluster name
    + mode: smart, fast or immediate (default: systemd's, fast); a mode bypasses systemctl
    """
    check_arguments(version, cluster)
    if mode is not None and mode not in STOP_MODES:
        raise OperationValueError(f"mode must be one of {', '.join(STOP_MODES)}, not {mode!r}")
    found = _required(version, cluster)
    name = f"{version}/{cluster}"
    if not found["running"]:
        _nothing(f"{name} is already stopped ({found['status']})")
        return
    _say(f"stop {name} (port {found['port']}{', ' + mode + ' mode' if mode else ''})")
    yield StringCommand("pg_ctlcluster", str(version), cluster, "stop", *(["-m", mode] if mode else []))


@operation()
@refusals_fail_the_host
def drop_cluster(version: int, cluster: str, confirm: str | None = None, force: bool = False):
    """
    The cluster does not exist: stopped and dropped with its data (pg_dropcluster --stop).

    Needs confirm=<cluster>. Refused while standbys stream from it, unless force=true.

    + version: PostgreSQL major version
    + cluster: cluster name
    + confirm: the cluster name again, to confirm that its data goes
    + force: drop it even though standbys are connected to it
    """
    check_arguments(version, cluster, force=force)
    _require_confirm("drop_cluster", version, cluster, confirm)
    found = _existing(version, cluster)
    name = f"{version}/{cluster}"
    if found is None:
        _nothing(f"{name} does not exist: nothing to drop")
        return
    _refuse_if_feeding_standbys(found, "drop", force)
    _say(f"drop {name} (port {found['port']}, {found['status']}): "
         f"{'stop it, ' if found['running'] else ''}delete its data directory {found['data_directory']} "
         f"and its configuration /etc/postgresql/{version}/{cluster}")
    yield StringCommand("pg_dropcluster", "--stop", str(version), cluster)


@operation(is_idempotent=False)
@refusals_fail_the_host
def clean(version: int, cluster: str, confirm: str | None = None, force: bool = False,
          locale: str = DEFAULT_LOCALE):
    """
    A fresh, empty cluster in place of this one, on the same port.

    stop -m immediate, pg_dropcluster, pg_createcluster, start, then the new cluster's identity
    is printed. Needs confirm=<cluster>. Refused while standbys stream from it, unless force=true.

    + version: PostgreSQL major version
    + cluster: cluster name
    + confirm: the cluster name again, to confirm that its data goes
    + force: clean it even though standbys are connected to it
    + locale: locale and encoding of the new cluster (default C.UTF-8, i.e. UTF8)
    """
    check_arguments(version, cluster, force=force)
    _require_confirm("clean", version, cluster, confirm)
    check_locale(locale)
    found = _required(version, cluster)
    name = f"{version}/{cluster}"
    port = found["port"]
    if port is None:
        raise OperationError(f"{host.name}: pg_lsclusters shows no port for {name}: clean it by hand")
    _refuse_if_feeding_standbys(found, "clean", force)
    default_data = f"/var/lib/postgresql/{version}/{cluster}"
    data = found["data_directory"] or default_data
    _say(f"clean {name} (port {port}, {found['status']}): "
         f"{'stop -m immediate, ' if found['running'] else ''}drop it with its data directory {data}, "
         f"create a fresh empty cluster on port {port} (locale {locale}), start it")
    if found["running"]:
        yield StringCommand("pg_ctlcluster", str(version), cluster, "stop", "-m", "immediate")
    yield StringCommand("pg_dropcluster", str(version), cluster)
    yield StringCommand("pg_createcluster", "--port", str(port), "--locale", locale,
                        *(["--datadir", QuoteString(data)] if data != default_data else []), str(version), cluster)
    yield StringCommand("pg_ctlcluster", str(version), cluster, "start")
    yield wait_ready(port)
    yield FunctionCommand(_report_fresh, (version, cluster, port, found["recovery"]), {})
