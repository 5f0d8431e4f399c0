"""The lab network: one bridge per lab on a subnet the machine does not route, a netns per host.

Lab traffic stays on the bridge: the hosts get no default route, the bridge has no uplink and
the lab refuses to start when the machine forwards packets.
"""
from __future__ import annotations

import ipaddress
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .shell import LabError, ok, run

LAB_RANGE = ipaddress.IPv4Network("198.51.100.0/24")
# Once 198.51.100.128/25 is full (many labs at once: parallel test runs), labs take /27s of
# TEST-NET-3, also never routed; it is still checked against the machine's routes.
OVERFLOW_RANGE = ipaddress.IPv4Network("203.0.113.0/24")
MACHINE_NETWORK = ipaddress.IPv4Network("192.0.2.0/24")  # these machines' own network: never ours
DEFAULT_SUBNETS = {"demo": "198.51.100.0/26", "test": "198.51.100.64/26"}


@dataclass(frozen=True)
class Addressing:
    subnet: ipaddress.IPv4Network

    @property
    def bridge_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def vip(self) -> str:
        return str(self.subnet.network_address + 10)

    def host_ip(self, index: int) -> str:  # index from 1
        address = self.subnet.network_address + 10 + index
        if address >= self.subnet.broadcast_address:
            raise LabError(f"subnet {self.subnet} has no room for host number {index}")
        return str(address)


def bridge_name(lab: str) -> str:
    return f"pgl-{lab}"


def netns_name(lab: str, host: str) -> str:
    return f"pgl-{lab}-{host}"


def veth_name(lab: str, host: str) -> str:
    return f"v{lab}-{host}"  # at most 15 characters: lab and host names are at most 6


def _routed_networks() -> list[tuple[ipaddress.IPv4Network, str]]:
    """Every IPv4 network the machine has an address or a route on, with the device."""
    found = []
    for entry in json.loads(run(["ip", "-j", "-4", "addr"]).stdout):
        for info in entry.get("addr_info", []):
            net = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            found.append((net, entry["ifname"]))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout):
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("type") in ("local", "broadcast"):
            continue
        found.append((ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False), route.get("dev", "?")))
    return found


def choose_subnet(lab: str, requested: str | None, taken: list[str], last: bool = False) -> ipaddress.IPv4Network:
    """The lab's subnet: requested, the lab's default, or the next free /27 of 198.51.100.128/25
    (then of 203.0.113.0/24); with `last`, the last free one (for a lab whose snapshot keeps the
    subnet for later: labs that come and go take the first ones)."""
    if requested:
        candidates = [ipaddress.IPv4Network(requested)]
    elif lab in DEFAULT_SUBNETS:
        candidates = [ipaddress.IPv4Network(DEFAULT_SUBNETS[lab])]
    else:
        # Other labs take /27s outside the default labs' subnets, so those stay free for them.
        reserved = [ipaddress.IPv4Network(net) for net in DEFAULT_SUBNETS.values()]
        pool = [*LAB_RANGE.subnets(new_prefix=27), *OVERFLOW_RANGE.subnets(new_prefix=27)]
        candidates = [net for net in (reversed(pool) if last else pool)
                      if str(net) not in taken and not any(net.overlaps(r) for r in reserved)]
        if not candidates:
            raise LabError("no free /27 left in 198.51.100.128/25 or 203.0.113.0/24: give --subnet, "
                           "or take a lab down")
    bridge = bridge_name(lab)
    routed = [(net, dev) for net, dev in _routed_networks() if dev != bridge]
    if not requested and lab not in DEFAULT_SUBNETS:
        # A free /27 may still be routed: a lab of another state directory, say.
        candidates = [c for c in candidates if not any(net.overlaps(c) for net, _dev in routed)] or candidates
    subnet = candidates[0]
    if subnet.overlaps(MACHINE_NETWORK):
        raise LabError(f"subnet {subnet} overlaps {MACHINE_NETWORK}, this machine's own network: choose another")
    for net, dev in routed:
        if net.overlaps(subnet):
            raise LabError(
                f"subnet {subnet} overlaps {net} on {dev}, which this machine already uses: "
                f"give another with --subnet (default {LAB_RANGE} is for labs only)"
            )
    return subnet


def check_no_forwarding() -> None:
    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
        raise LabError(
            "this machine forwards IPv4 packets (net.ipv4.ip_forward=1): lab traffic could leave the "
            "box. Run `sysctl -w net.ipv4.ip_forward=0` first"
        )


def ensure_bridge(lab: str, addressing: Addressing) -> None:
    bridge = bridge_name(lab)
    if not ok(["ip", "link", "show", bridge]):
        # A fixed MAC: by default a bridge takes its lowest port's, so a crashed host would
        # change it and stall the main machine's ssh sessions to the others.
        mac = "02:01:" + ":".join(f"{int(octet):02x}" for octet in addressing.bridge_ip.split("."))
        run(["ip", "link", "add", bridge, "address", mac, "type", "bridge"])
        run(["sysctl", "-q", "-w", f"net.ipv6.conf.{bridge}.disable_ipv6=1"])
        run(["ip", "addr", "add", f"{addressing.bridge_ip}/{addressing.subnet.prefixlen}", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def delete_bridge(lab: str) -> None:
    delete_link_cuts(lab)
    if ok(["ip", "link", "show", bridge_name(lab)]):
        run(["ip", "link", "del", bridge_name(lab)])


def host_mac(ip: str) -> str:
    """A fixed MAC per address: after a restart the neighbours' ARP caches are still right (and a
    cut link, matched on MACs, stays cut)."""
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def netns_exists(lab: str, host: str) -> bool:
    return Path("/run/netns", netns_name(lab, host)).exists()


def ensure_host_network(lab: str, host: str, ip: str, prefix: int) -> None:
    """The host's netns, its veth pair plugged into the bridge, and its address."""
    ns, veth = netns_name(lab, host), veth_name(lab, host)
    if netns_exists(lab, host):
        return
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", host_mac(ip), "netns", ns])
    run(["sysctl", "-q", "-w", f"net.ipv6.conf.{veth}.disable_ipv6=1"])
    run(["ip", "link", "set", veth, "master", bridge_name(lab), "up"])
    inside = ["ip", "netns", "exec", ns]
    run([*inside, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
    run([*inside, "ip", "link", "set", "lo", "up"])
    run([*inside, "ip", "addr", "add", f"{ip}/{prefix}", "dev", "eth0"])
    run([*inside, "ip", "link", "set", "eth0", "up"])


def delete_host_network(lab: str, host: str) -> None:
    """Deleting the netns deletes its veth and every address in it (the VIP too)."""
    if netns_exists(lab, host):
        run(["ip", "netns", "del", netns_name(lab, host)])
    if ok(["ip", "link", "show", veth_name(lab, host)]):
        run(["ip", "link", "del", veth_name(lab, host)], check=False, quiet=True)  # may go with the netns


def partition(lab: str, host: str) -> None:
    """Unplug the host from the bridge: its link stays up, but nothing reaches it or leaves it."""
    run(["ip", "link", "set", veth_name(lab, host), "nomaster"])


def heal(lab: str, host: str) -> None:
    run(["ip", "link", "set", veth_name(lab, host), "master", bridge_name(lab), "up"])


def shape(lab: str, host: str, rate: str | None) -> None:
    """The host's link limited to `rate` (tc's units: 1gbit, 100mbit) in both directions, as a
    real NIC would be; None: unlimited again. A token bucket on each end of the veth pair: the
    bridge's side limits what reaches the host, the host's eth0 what leaves it."""
    ends = [["tc"], ["ip", "netns", "exec", netns_name(lab, host), "tc"]]
    devices = [veth_name(lab, host), "eth0"]
    for tc, device in zip(ends, devices):
        if rate is None:
            run([*tc, "qdisc", "del", "dev", device, "root"], check=False, quiet=True)
        else:
            # burst: at least one timer tick's worth of bytes at the rate (1 Gbit/s at HZ 100: 1.25 MB)
            run([*tc, "qdisc", "replace", "dev", device, "root", "tbf", "rate", rate, "burst", "2mb",
                 "latency", "50ms"])


def is_partitioned(lab: str, host: str) -> bool:
    proc = run(["ip", "-j", "link", "show", veth_name(lab, host)], check=False, quiet=True)
    if proc.returncode != 0:
        return False
    return json.loads(proc.stdout)[0].get("master") != bridge_name(lab)


# Link cuts: the frames one host sends to another dropped by the lab's bridge (nftables, bridge
# family, in the main machine's namespace: nothing on the hosts can see or undo it). Matched on
# the two hosts' MACs, so the cut covers every address a host holds (the VIP too) and unicast ARP:
# the two hosts stop hearing each other while both still reach every other host. One direction
# only is a one-way link fault: the other host's frames still arrive, until its ARP entry for the
# first one expires (the ARP replies are among the dropped frames), as on a real one-way fault.
CUT_CHAIN = "forward"


def _have_nft() -> bool:
    """Without nft (a machine set up before cuts existed) no cut can have been made."""
    return shutil.which("nft") is not None


def cut_table(lab: str) -> str:
    return f"pgl-{lab}"


def cut_rule(source: str, target: str) -> str:
    """The nft comment naming a cut direction (the rule's identity when mended)."""
    return f"{source}>{target}"


def _cut_rules(lab: str) -> list[dict]:
    if not _have_nft():
        return []
    proc = run(["nft", "-j", "-a", "list", "chain", "bridge", cut_table(lab), CUT_CHAIN], check=False, quiet=True)
    if proc.returncode != 0:
        return []
    return [item["rule"] for item in json.loads(proc.stdout)["nftables"] if "rule" in item]


def link_cuts(lab: str) -> list[tuple[str, str]]:
    """(source, target) of every cut direction of the lab's links, sorted."""
    found = []
    for rule in _cut_rules(lab):
        source, _, target = rule.get("comment", "").partition(">")
        if source and target:
            found.append((source, target))
    return sorted(found)


def cut_link(lab: str, hosts: dict[str, str], source: str, target: str) -> None:
    """Drop what `source` sends to `target` (hosts: name -> address). Idempotent."""
    if not _have_nft():
        raise LabError("cutting a link needs nft (the nftables package): run `make setup`")
    if (source, target) in link_cuts(lab):
        return
    table = cut_table(lab)
    run(["nft", "add", "table", "bridge", table])
    run(["nft", "add", "chain", "bridge", table, CUT_CHAIN,
         "{ type filter hook forward priority 0; policy accept; }"])
    run(["nft", "add", "rule", "bridge", table, CUT_CHAIN, "ether", "saddr", host_mac(hosts[source]),
         "ether", "daddr", host_mac(hosts[target]), "drop", "comment", f'"{cut_rule(source, target)}"'])


def mend_link(lab: str, source: str, target: str) -> None:
    """What `source` sends to `target` reaches it again. Idempotent."""
    for rule in _cut_rules(lab):
        if rule.get("comment") == cut_rule(source, target):
            run(["nft", "delete", "rule", "bridge", cut_table(lab), CUT_CHAIN, "handle", str(rule["handle"])])


def delete_link_cuts(lab: str) -> None:
    if _have_nft():
        run(["nft", "delete", "table", "bridge", cut_table(lab)], check=False, quiet=True)


def leftover_cut_tables() -> list[str]:
    """The bridge tables of labs (pgl-*) still in the kernel (gc runs after every lab is down)."""
    if not _have_nft():
        return []
    proc = run(["nft", "-j", "list", "tables", "bridge"], check=False, quiet=True)
    if proc.returncode != 0:
        return []
    return [item["table"]["name"] for item in json.loads(proc.stdout)["nftables"]
            if "table" in item and item["table"]["name"].startswith("pgl-")]
