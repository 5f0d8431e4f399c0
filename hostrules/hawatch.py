"""ha-watch's entry point (pgcascade-ha-watch.service on the heartbeat nodes): every interval,
observe this node (its PostgreSQL, the primary flag, the VIP, heartbeat's state and, where it
matters, the other hosts' nodes), let hostrules.watch decide, act, and write the standing
"can fail over" view (hostrules.canfailover). Decisions go to the journal (tag pgcascade) when
they change; `--checks N` runs N checks and exits (tests).

    PYTHONPATH=/usr/local/lib/pgcascade python3 -m hostrules.hawatch [--checks N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from hostrules import canfailover, delayed_standby, hostio, maypromote, netlink, timeline, watch
from hostrules import config as configlib
from hostrules.nodestate import NodeState, Session, as_postgres, postmaster_status, read_local

HB_STANDBY = "/usr/share/heartbeat/hb_standby"
HB_TAKEOVER = "/usr/share/heartbeat/hb_takeover"
HAPOSTGRES = "/etc/ha.d/resource.d/hapostgres"
RESOURCE_MANAGER = "/usr/share/heartbeat/ResourceManager"
RESOURCE_GROUP = "hapostgres"  # haresources's group, named by its first resource
HEARTBEAT_PIDFILE = "/run/heartbeat.pid"


class Units(NamedTuple):
    """What systemd says of the PostgreSQL unit and heartbeat's (one systemctl show)."""

    unit_state: str  # ActiveState of the PostgreSQL unit
    heartbeat_state: str
    heartbeat_enabled: bool
    heartbeat_entered: Optional[float]  # time.monotonic() when heartbeat last became active (None: never)
    heartbeat_process: str  # heartbeat_process() just before the read


def postmaster_ready_ago(data_directory: str) -> Optional[float]:
    """Seconds since the postmaster wrote "ready" in postmaster.pid (None: it says otherwise)."""
    status, modified = postmaster_status(data_directory)
    return max(0.0, time.time() - modified) if status == "ready" else None


class HeartbeatWords(NamedTuple):
    """What heartbeat says (two cl_status)."""

    rscstatus: str
    peer_status: str


def parse_show(text: str, count: int) -> List[Dict[str, str]]:
    """`systemctl show -p A,B unit1 unit2 ...`: one block of NAME=VALUE lines per unit, in the
    order asked, blank lines between (fewer blocks than units: empty dicts for the rest)."""
    blocks: List[Dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        name, _, value = line.partition("=")
        blocks[-1][name] = value.strip()
    blocks = [b for b in blocks if b]
    return (blocks + [{} for _ in range(count)])[:count]


def unit_properties(units: List[str], props: List[str]) -> List[Dict[str, str]]:
    out = hostio.run(["systemctl", "show", "-p", ",".join(props), *units], timeout=5) or ""
    return parse_show(out, len(units))


def heartbeat_process() -> str:
    """heartbeat's master process as 'PID START' (start time in clock ticks since boot, from
    /proc), '' when none runs: a restart changes it even when the pid comes back."""
    try:
        with open(HEARTBEAT_PIDFILE) as f:
            pid = f.read().strip()
        with open(f"/proc/{int(pid)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return ""
    return f"{pid} {fields[19]}" if len(fields) > 19 and fields[0] != "Z" else ""


def monotonic_seconds(usec: str) -> Optional[float]:
    """systemd's *TimestampMonotonic (microseconds, 0: never) -> time.monotonic() seconds."""
    return int(usec) / 1e6 if usec.isdigit() and usec != "0" else None


def read_units(c: configlib.Config, process: str) -> Units:
    unit, heartbeat = unit_properties([c.unit, "heartbeat"], ["ActiveState", "UnitFileState",
                                                              "ActiveEnterTimestampMonotonic"])
    return Units(unit.get("ActiveState", ""), heartbeat.get("ActiveState", ""),
                 heartbeat.get("UnitFileState") == "enabled",
                 monotonic_seconds(heartbeat.get("ActiveEnterTimestampMonotonic", "")), process)


def read_heartbeat_words(c: configlib.Config) -> HeartbeatWords:
    return HeartbeatWords(cl_status("rscstatus"), cl_status("nodestatus", c.peer().name))


def heartbeat_settled(c: configlib.Config, units: Units) -> bool:
    return (units.heartbeat_entered is not None
            and time.monotonic() - units.heartbeat_entered >= c.timing("reclaim_after", watch.RECLAIM_AFTER))


def cl_status(*args: str) -> str:
    """heartbeat's answer ('' when it gives none); cl_status exits non-zero for a dead node."""
    return (hostio.run(["cl_status", *args], timeout=3, any_status=True) or "").strip()


def vip_here(c: configlib.Config) -> bool:
    here = netlink.has_address(c.vip_interface, c.vip_address)
    if here is not None:
        return here
    out = hostio.run(["ip", "-o", "-4", "addr", "show", "dev", c.vip_interface, "to", f"{c.vip_address}/32"],
                     timeout=5)
    return bool(out and out.strip())


def relaxed_path(c: configlib.Config) -> str:
    """Where relax-sync remembers the setting it emptied (next to the synchronous-set record: the
    ALTER SYSTEM it made outlives a reboot, so does this)."""
    return os.path.join(os.path.dirname(c.syncset_path), "sync-relaxed.json")


def load_relaxed(c: configlib.Config) -> Optional[dict]:
    try:
        with open(relaxed_path(c)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def sql(c: configlib.Config, *statements: str) -> bool:
    argv = [os.path.join(c.bin_directory, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", c.socket_directory, "-p", str(c.port), "-d", "postgres"]
    for statement in statements:
        argv += ["-c", statement]
    return hostio.run(as_postgres(argv), timeout=10) is not None


def write_syncset(c: configlib.Config) -> None:
    """The new synchronous set, recorded on every reachable host (as postgres, like the deploy's)."""
    hostio.run(as_postgres(["env", f"PYTHONPATH={hostio.LIB_DIRECTORY}", "python3", "-m", "hostrules.syncset",
                            "write", "--ssh-timeout", str(c.ssh_timeout)]), timeout=4 * c.ssh_timeout + 10)


def hapostgres_running() -> bool:
    """Does a process run hapostgres? (every process's command line, read with two system calls
    each: this runs at every check)"""
    needle = HAPOSTGRES.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{pid}/cmdline", os.O_RDONLY)
        except OSError:
            continue
        try:
            if needle in os.read(fd, 4096):
                return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def read_processes() -> Dict[int, delayed_standby.Process]:
    """Every process's parent and argv, from /proc (those that vanish meanwhile are skipped)."""
    processes: Dict[int, delayed_standby.Process] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # comm may hold spaces and parentheses
        processes[int(name)] = delayed_standby.Process(ppid, tuple(a for a in argv if a))
    return processes


def disarm_delayed_standby() -> List[int]:
    """Kill heartbeat's delayed hb_standby (hostrules.delayed_standby); the pids killed."""
    killed = []
    for pid in delayed_standby.armed(read_processes()):
        try:
            os.kill(pid, 9)
            killed.append(pid)
        except OSError:
            pass
    return killed


class Watcher:
    def __init__(self, c: configlib.Config, background: bool = True):
        self.c = c
        self.memory = watch.Memory()
        self.checks = 0
        self.others: Dict[str, NodeState] = {}
        self.last = time.monotonic()
        self.session = Session(c.bin_directory, c.port, c.socket_directory)
        self.streams: Dict[str, hostio.NodeStream] = {}
        self.units: Optional[Units] = None
        self.units_at = 0.0
        self.words: Optional[HeartbeatWords] = None
        self.words_at = 0.0
        self.words_reused = False  # this check's words are an earlier check's
        self.scanned_at = 0.0  # when /proc was last scanned for heartbeat's delayed hb_standby
        self.last_reason = ""  # the last check's verdict's reason (a wait is said when it starts)
        if background:
            # The other hosts' states, each streamed over its own ssh session: a host that does
            # not answer never delays the local checks, and an idle cluster forks nothing.
            interval = c.timing("watch_interval", 1)
            max_age = c.ssh_timeout + interval
            self.streams = {h.name: hostio.NodeStream(c, h.address, interval, max_age) for h in c.others()}

    def refresh_others(self) -> None:
        if self.streams:
            self.others = {name: stream.state() for name, stream in self.streams.items()}

    def peer_is_standby(self, local: NodeState) -> bool:
        peer = self.others.get(self.c.ha_peer or "")
        return peer is not None and peer.state == "standby" and peer.system_identifier == local.system_identifier

    def say(self, message: str) -> None:
        hostio.log("ha-watch", message)

    def observe(self, fresh: bool = False) -> watch.Observation:
        """This check's observation; heartbeat's and systemd's words are read again when
        watch.reread_words says so (or `fresh`), else those of an earlier check."""
        c = self.c
        # hapostgres and the flag first: a promotion that ends between the two reads is then seen
        # either as still running or as done, never as a flagged standby (which hands over).
        hapostgres = hapostgres_running()
        flag = os.path.exists(c.primary_flag)
        read_at = time.monotonic()
        local = read_local(c.bin_directory, c.data_directory, c.port, c.socket_directory,
                           timeout=watch.LOCAL_READ_TIMEOUT, session=self.session)
        unanswered_for = time.monotonic() - read_at if local.state == "unresponsive" else 0.0
        down = flag and local.state != "primary"
        vip = vip_here(c)
        own = c.host(c.self_name)
        deposition = None
        if local.state in ("primary", "stopped-primary"):
            deposition = timeline.successor_verdict(local, self.others, {h.name: h.address for h in c.hosts})
        primary_elsewhere = any(s.state == "primary" and s.system_identifier == local.system_identifier
                                for s in self.others.values())
        cluster_answers = bool(local.system_identifier) and any(
            s.system_identifier == local.system_identifier for s in self.others.values())
        units, words = self.read_words_if_due(fresh, local, flag, vip, primary_elsewhere)
        return watch.Observation(
            local=local, flag=flag, vip_here=vip, unit_state=units.unit_state, heartbeat_state=units.heartbeat_state,
            heartbeat_enabled=units.heartbeat_enabled, heartbeat_settled=heartbeat_settled(c, units),
            rscstatus=words.rscstatus, peer_status=words.peer_status,
            hapostgres_running=hapostgres, ready_ago=postmaster_ready_ago(c.data_directory) if down else None,
            deposition=deposition, primary_elsewhere=primary_elsewhere,
            preferred_here=c.ha_preferred in (None, c.self_name), cluster_answers=cluster_answers,
            relaxed=load_relaxed(c), hosts_total=len(c.hosts), inventory_master=own.role == "master" if own else True,
            hosts_reached=1 + sum(1 for s in self.others.values() if s.state != "unreachable"),
            peer_standby=self.peer_is_standby(local),
            unanswered_for=unanswered_for)

    def read_words_if_due(self, fresh: bool, local: NodeState, flag: bool, vip: bool,
                          primary_elsewhere: bool) -> Tuple[Units, HeartbeatWords]:
        """systemd's and heartbeat's words for this check: read now when watch.reread_words says
        so (or `fresh`), else those of an earlier check (self.words_reused)."""
        process = heartbeat_process()
        now = time.monotonic()
        units, words = self.units, self.words
        if fresh or units is None or words is None:
            heartbeat_due = units_due = True
        else:
            heartbeat_due, units_due = watch.reread_words(
                watch.steady(local, flag, vip, primary_elsewhere, units.heartbeat_state),
                now - self.words_at, now - self.units_at, process, units.heartbeat_process)
        if units_due or units is None:
            units = self.units = read_units(self.c, process)
            self.units_at = now
        if heartbeat_due or words is None:
            words = self.words = read_heartbeat_words(self.c)
            self.words_at = now
        self.words_reused = not (units_due and heartbeat_due)
        return units, words

    def act(self, verdict, o: watch.Observation) -> None:
        c, d = self.c, verdict.decision
        last, self.last_reason = self.last_reason, verdict.reason
        if d == "none":
            if verdict.reason in watch.SAID_WAITS and verdict.reason != last:
                self.say(f"{verdict.message} [{verdict.reason}]")
            return
        self.say(f"{verdict.message} [{verdict.reason}]")
        if d == "restart-postgres":
            hostio.run(["systemctl", "reset-failed", c.unit], timeout=5)
            # Queued, not waited for: the checks go on while it starts, so a start that hangs is
            # handed over at the restart deadline and a second crash right after it is seen.
            hostio.run(["systemctl", "start", "--no-block", c.unit], timeout=5)
        elif d == "hand-over":
            self.hand_over()
        elif d == "fence":
            self.remove_flag()
            hostio.run(["systemctl", "stop", c.unit], timeout=60)
            if vip_here(c):
                self.say(f"the VIP is still here: asking heartbeat to hand the resources to {c.ha_peer}")
                hostio.run([HB_STANDBY, "all"], timeout=10)
        elif d == "reclaim":
            hostio.run([HB_TAKEOVER, "all"], timeout=10)
        elif d == "take-group":
            hostio.run([RESOURCE_MANAGER, "takegroup", RESOURCE_GROUP], timeout=120)
        elif d == "remove-vip":
            hostio.run(["ip", "-4", "addr", "del", f"{c.vip_address}/{c.vip_prefix}", "dev", c.vip_interface],
                       timeout=5)
        elif d == "retry-promotion":
            self.retry_promotion()
        elif d == "relax-sync":
            self.relax_sync(o)
        elif d == "restore-sync":
            self.restore_sync(o)
        elif d == "start-heartbeat":
            hostio.run(["systemctl", "reset-failed", "heartbeat"], timeout=5)
            hostio.run(["systemctl", "start", "heartbeat"], timeout=30)
        elif d == "restart-heartbeat":
            self.restart_heartbeat()

    def restart_heartbeat(self) -> None:
        """heartbeat killed, then started. Not `systemctl restart`: heartbeat.service stops without
        a deadline that matters (TimeoutStopSec=30min, no SIGKILL), and a heartbeat stuck in a
        transition delays its own shutdown until that transition ends ("Shutdown delayed until
        current resource activity finishes": seen on the lab, never ending). A kill runs no
        resource stop: a primary and its VIP stay here, as a stop would keep them
        (hostrules.release); a standby holds nothing to release."""
        hostio.run(["systemctl", "kill", "--signal=KILL", "heartbeat"], timeout=10)
        deadline = time.monotonic() + 5  # systemd notices the main process's death asynchronously
        while time.monotonic() < deadline and (hostio.run(
                ["systemctl", "show", "-p", "ActiveState", "--value", "heartbeat"], timeout=5) or "").strip() == "active":
            time.sleep(0.1)
        hostio.run(["systemctl", "reset-failed", "heartbeat"], timeout=5)
        hostio.run(["systemctl", "start", "heartbeat"], timeout=30)

    def remove_flag(self) -> None:
        try:
            os.unlink(self.c.primary_flag)
        except FileNotFoundError:
            pass

    def hand_over(self) -> None:
        """The flag goes, heartbeat hands the resources over (hb_standby); if it still holds them
        a few seconds later (a request it ignored), heartbeat is restarted here: its stop releases
        them and the peer takes them. The marker first: those resource stops then release at once
        instead of reading this hung or dead server again."""
        try:
            with open(self.c.hand_over_marker, "w") as f:
                f.write(f"{time.time():.0f}\n")
        except OSError as error:
            self.say(f"could not write {self.c.hand_over_marker} ({error}): the resource stops read the server")
        self.remove_flag()
        hostio.run(["systemctl", "stop", "--no-block", self.c.unit], timeout=5)
        hostio.run([HB_STANDBY, "all"], timeout=10)
        deadline = time.monotonic() + 4
        preferred_here = self.c.ha_preferred in (None, self.c.self_name)
        while time.monotonic() < deadline:
            if watch.holds_group(cl_status("rscstatus"), preferred_here) is False:
                return
            time.sleep(0.2)
        self.say(f"heartbeat still holds the resources after hb_standby: restarting heartbeat here so that "
                 f"{self.c.ha_peer} takes them")
        hostio.run(["systemctl", "restart", "heartbeat"], timeout=60)

    def relax_sync(self, o: watch.Observation) -> None:
        """The setting is remembered first: a crash between the two steps leaves a file that
        restore-sync undoes (a RESET of an unset setting changes nothing)."""
        c, path = self.c, relaxed_path(self.c)
        try:
            with open(path + ".new", "w") as f:
                json.dump({"setting": o.local.synchronous_standby_names, "at": time.time()}, f)
            os.replace(path + ".new", path)
        except OSError as error:
            self.say(f"could not remember the synchronous setting ({error}): leaving it as it is")
            return
        if not sql(c, "ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"):
            self.say("could not empty synchronous_standby_names (psql failed): tried again at the next check")
            os.unlink(path)
            return
        write_syncset(c)

    def restore_sync(self, o: watch.Observation) -> None:
        c = self.c
        statements = ["ALTER SYSTEM RESET synchronous_standby_names"]
        if o.local.state == "primary":
            statements.append("SELECT pg_reload_conf()")
        if not sql(c, *statements):  # ALTER SYSTEM works on a standby too
            self.say("could not reset synchronous_standby_names (psql failed): tried again at the next check")
            return
        try:
            os.unlink(relaxed_path(c))
        except FileNotFoundError:
            pass
        if o.local.state == "primary":
            write_syncset(c)

    def retry_promotion(self) -> None:
        """may-promote again; if it agrees, heartbeat is restarted here: with its peer dead, a
        starting heartbeat acquires every resource (hapostgres start, may-promote once more, the
        VIP). hb_takeover is no use here: heartbeat ignores it while its peer is dead."""
        verdict, answers = maypromote.gather_and_decide(self.c)
        self.say(f"{answers}: {verdict.decision} [{verdict.reason}] {verdict.message}")
        if verdict.decision != "promote":
            return
        self.say("restarting heartbeat here: with its peer dead it takes the resources once it is up")
        self.restart_heartbeat()

    def write_view(self, o: watch.Observation) -> None:
        c = self.c
        peer = c.peer()
        witnesses = {h.name: self.others.get(h.name, NodeState("unreachable")) for h in c.witnesses()}
        view = canfailover.evaluate(c.self_name, peer.name, o.local, o.flag, o.heartbeat_state, o.rscstatus,
                                    o.peer_status, witnesses, self.others.get(peer.name), peer.address, o.holds)
        view["checked_at"] = time.time()
        path = os.path.join(c.runtime_directory, "can-fail-over.json")
        tmp = path + ".new"
        try:
            with open(tmp, "w") as f:
                json.dump(view, f, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass

    def check(self) -> None:
        self.refresh_others()
        o = self.observe()
        verdict = watch.decide(o, self.memory)
        if verdict.decision != "none" and self.words_reused:
            o = self.observe(fresh=True)  # no action on words read at an earlier check
            verdict = watch.decide(o, self.memory)
        self.act(verdict, o)
        now = time.monotonic()
        if now - self.scanned_at >= delayed_standby.SCAN_EVERY:
            self.scanned_at = now
            killed = disarm_delayed_standby()
            if killed:
                self.say("disarmed heartbeat's delayed hand-over request after a failed resource start "
                         f"(ResourceManager's `sleep 30; hb_standby`, pids {' '.join(map(str, killed))}): "
                         "ha-watch retries refused promotions itself [delayed-standby-disarmed]")
        self.memory = watch.remember(o, self.memory, verdict, now - self.last)
        self.last = now
        self.checks += 1
        if self.checks % 5 == 1 or verdict.decision != "none":
            self.write_view(o)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m hostrules.hawatch")
    parser.add_argument("--checks", type=int, default=0, help="run this many checks, then exit (0: for ever)")
    args = parser.parse_args(argv)
    c = configlib.load()
    hostio.ensure_ssh_directory(c)
    watcher = Watcher(c)
    interval = c.timing("watch_interval", 1)
    n = 0
    while True:
        started = time.monotonic()
        try:
            watcher.check()
        except Exception as error:  # a check that failed is retried at the next interval, and said
            hostio.log("ha-watch", f"check failed: {error!r}")
        n += 1
        if args.checks and n >= args.checks:
            return 0
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
