"""python -m lab up [--from SNAP] | down | status | snapshot SNAP | snapshots | ssh HOST |
exec HOST -- CMD | crash | pause | resume | partition | heal | cut A B | mend A B | restart HOST |
shape HOST RATE | gc"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import labs, machines, network, snapshots
from .paths import DEFAULT_LAB
from .shell import LabError


def _ssh_args(desc: dict, entry: dict) -> list[str]:
    return ["ssh", "-i", desc["ssh_key"], "-o", f"UserKnownHostsFile={desc['known_hosts']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{entry['ip']}"]


def _running(lab: str, host: str) -> dict:
    desc = labs.load(lab)
    labs.host_entry(desc, host)
    if not machines.leader(lab, host):
        raise LabError(f"{host} is not running (see `python -m lab status --name {lab}`)")
    return desc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("--name", default=DEFAULT_LAB, help=f"the lab (default {DEFAULT_LAB!r}, or $PGCASCADE_LAB)")
    named = argparse.ArgumentParser(add_help=False)  # --name also after the verb
    named.add_argument("--name", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="verb", required=True)

    def add_parser(verb: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(verb, parents=[named], **kwargs)

    p_up = add_parser("up", help="build what is missing and boot every host (idempotent)")
    p_up.add_argument("--hosts", type=int, default=3)
    p_up.add_argument("--backup", action="store_true", help="the last host is the backup repository host (pgBackRest)")
    p_up.add_argument("--with-packages", action="store_true",
                      help="hosts with the cluster's packages pre-installed (a cached layer): the deploy skips apt")
    p_up.add_argument("--subnet", help="default 198.51.100.0/26 (demo), .64/26 (test), else the next free /27 of .128/25; "
                                           "'last': the last free one (a lab to snapshot keeps it)")
    p_up.add_argument("--from", dest="snapshot", metavar="SNAP",
                      help="boot the hosts from a snapshot (its subnet, hosts and keys; seconds, no deploy)")
    p_up.add_argument("--only", metavar="HOST,...", help="with --from: boot only these hosts (`restart HOST` boots the others)")
    p_snap = add_parser("snapshot", help="power the lab off without a failover and save its disks as SNAP")
    p_snap.add_argument("snapshot", metavar="SNAP")
    p_snap.add_argument("--remove", action="store_true", help="delete the snapshot SNAP instead")
    add_parser("snapshots", help="every snapshot: subnet, hosts, fresh or stale, labs booted from it")
    add_parser("down", help="remove the lab: nothing left running or mounted")
    add_parser("status", help="each host: address and state")
    add_parser("describe", help="the lab's description (JSON)")
    add_parser("gc", help="remove every lab and any leftover")
    for verb, help_text in [("ssh", "an interactive shell on HOST"), ("crash", "power cut: all processes and addresses gone"),
                            ("pause", "freeze every process (a hung machine)"), ("resume", "unfreeze"),
                            ("partition", "cut the host's network"), ("heal", "restore it"),
                            ("restart", "boot again on the same disk")]:
        add_parser(verb, help=help_text).add_argument("host")
    for verb, help_text in [("cut", "cut the link between hosts A and B (each still reaches the others)"),
                            ("mend", "mend it")]:
        p_link = add_parser(verb, help=help_text)
        p_link.add_argument("a", metavar="A")
        p_link.add_argument("b", metavar="B")
        p_link.add_argument("--one-way", action="store_true", help="only what A sends to B")
    p_shape = add_parser("shape", help="limit the host's link to RATE both ways (tc: 1gbit, 100mbit); 'none' lifts it")
    p_shape.add_argument("host")
    p_shape.add_argument("rate")
    p_exec = add_parser("exec", help="run CMD on HOST (inside its namespaces, no network needed)")
    p_exec.add_argument("host")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    lab = args.name
    try:
        if args.verb == "up":
            if args.snapshot:
                if args.with_packages:
                    raise LabError("--with-packages with --from: a snapshot's hosts have what their deploy installed")
                if args.subnet:
                    raise LabError("--subnet with --from: a snapshot's hosts keep the snapshot's subnet")
                desc = snapshots.up_from(lab, args.snapshot, args.only.split(",") if args.only else None)
            else:
                desc = labs.up(lab, args.hosts, args.subnet, backup=args.backup, with_packages=args.with_packages)
            for name, ip, state in labs.status(lab):
                print(f"{name}\t{ip}\t{state}")
            print(f"inventory: PGCASCADE_LAB={lab} pyinfra inventories/lab.py ...  (VIP {desc['vip']})")
        elif args.verb == "snapshot":
            if args.remove:
                snapshots.remove(args.snapshot)
            else:
                snapshots.snapshot(lab, args.snapshot)
        elif args.verb == "snapshots":
            for snap in snapshots.all_snapshots():
                meta = snapshots.load(snap)
                stale = snapshots.stale_reasons(meta["key"], snapshots.current_key(len(meta["hosts"])))
                print(f"{snap}\t{meta['subnet']}\t{len(meta['hosts'])} hosts\t"
                      f"{'stale: ' + '; '.join(stale) if stale else 'fresh'}\t"
                      f"labs: {', '.join(snapshots.users(snap)) or '-'}")
        elif args.verb == "down":
            labs.down(lab)
        elif args.verb == "gc":
            for item in labs.gc():
                print(f"removed {item}")
        elif args.verb == "status":
            for name, ip, state in labs.status(lab):
                print(f"{name}\t{ip}\t{state}")
            for source, target in network.link_cuts(lab):
                print(f"link\t{source} -> {target}\tcut")
        elif args.verb == "describe":
            print(json.dumps(labs.load(lab), indent=2))
        elif args.verb == "ssh":
            desc = _running(lab, args.host)
            os.execvp("ssh", _ssh_args(desc, labs.host_entry(desc, args.host)))
        elif args.verb == "exec":
            _running(lab, args.host)
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            leader = machines.leader(lab, args.host)
            os.execvp("nsenter", ["nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
                                  *(cmd or ["/bin/bash", "-l"])])
        elif args.verb == "crash":
            labs.host_entry(labs.load(lab), args.host)
            machines.crash(lab, args.host)
        elif args.verb == "pause":
            _running(lab, args.host)
            machines.pause(lab, args.host)
        elif args.verb == "resume":
            _running(lab, args.host)
            machines.thaw(lab, args.host)
        elif args.verb == "partition":
            _running(lab, args.host)
            network.partition(lab, args.host)
        elif args.verb == "heal":
            labs.host_entry(labs.load(lab), args.host)
            network.heal(lab, args.host)
        elif args.verb in ("cut", "mend"):
            desc = labs.load(lab)
            hosts = {args.a: labs.host_entry(desc, args.a)["ip"], args.b: labs.host_entry(desc, args.b)["ip"]}
            if args.a == args.b:
                raise LabError(f"{args.a} twice: a link joins two hosts")
            directions = [(args.a, args.b)] if args.one_way else [(args.a, args.b), (args.b, args.a)]
            for source, target in directions:
                if args.verb == "cut":
                    network.cut_link(lab, hosts, source, target)
                else:
                    network.mend_link(lab, source, target)
        elif args.verb == "shape":
            _running(lab, args.host)
            network.shape(lab, args.host, None if args.rate == "none" else args.rate)
        elif args.verb == "restart":
            labs.restart(lab, args.host)
    except LabError as error:
        print(f"lab: error: {error}", file=sys.stderr)
        return 1
    return 0
