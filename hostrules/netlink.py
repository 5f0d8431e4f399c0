"""This host's IPv4 addresses read from the kernel over rtnetlink (RTM_GETADDR): what
`ip -4 addr show` prints, without a process per read (ha-watch asks every second whether the
VIP is here)."""
from __future__ import annotations

import os
import socket
import struct
from typing import List, NamedTuple, Optional

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS, IFA_LOCAL = 1, 2
NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
RTATTR = struct.Struct("=HH")  # length, type


class Address(NamedTuple):
    interface: int  # the interface's index (socket.if_nametoindex)
    address: str
    prefix: int


def _align(n: int) -> int:
    return (n + 3) & ~3


def dump_request(sequence: int) -> bytes:
    """RTM_GETADDR for every IPv4 address."""
    body = IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + body


def parse_addresses(data: bytes) -> tuple:
    """One datagram of the dump's answer -> ([Address], done): IFA_LOCAL (the address itself on a
    point-to-point link) else IFA_ADDRESS. OSError for an error message."""
    found: List[Address] = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        body = offset + NLMSGHDR.size
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            code = struct.unpack_from("=i", data, body)[0]
            raise OSError(-code, os.strerror(-code) if code else "netlink error")
        if kind == RTM_NEWADDR:
            family, prefix, _, _, index = IFADDRMSG.unpack_from(data, body)
            attrs: dict = {}
            at = body + IFADDRMSG.size
            while at + RTATTR.size <= offset + length:
                size, kind_ = RTATTR.unpack_from(data, at)
                if size < RTATTR.size:
                    break
                attrs[kind_] = data[at + RTATTR.size:at + size]
                at += _align(size)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if family == socket.AF_INET and raw is not None and len(raw) == 4:
                found.append(Address(index, socket.inet_ntoa(raw), prefix))
        offset += _align(length)
    return found, False


def ipv4_addresses(timeout: float = 2.0) -> List[Address]:
    """Every IPv4 address of this host (its network namespace); OSError when the kernel does not answer."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        sock.send(dump_request(1))
        found: List[Address] = []
        while True:
            part, done = parse_addresses(sock.recv(65536))
            found += part
            if done:
                return found


def has_address(interface: str, address: str) -> Optional[bool]:
    """Is `address` on `interface` (as `ip -4 addr show dev IF to ADDRESS/32` would list it)? None
    when the kernel could not be asked; False for an interface that does not exist."""
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        return False
    try:
        return any(a.interface == index and a.address == address for a in ipv4_addresses())
    except OSError:
        return None
