"""Where this host stands in the cluster: /etc/pgcascade/hostrules.json, written by the deploy
(planner.settings.hostrules_config). PGCASCADE_HOSTRULES_CONFIG names another file (tests)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

PATH = "/etc/pgcascade/hostrules.json"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    role: str


@dataclass(frozen=True)
class Config:
    self_name: str
    version: int
    cluster: str
    port: int
    bin_directory: str
    data_directory: str
    socket_directory: str
    hosts: List[Host]  # every cluster host, this one included
    ha_peer: Optional[str] = None  # the other heartbeat node, on a heartbeat node
    ha_preferred: Optional[str] = None  # haresources's preferred node (the resource group is its "local" one)
    syncset_path: str = "/var/lib/postgresql/pgcascade/syncset.json"
    runtime_directory: str = "/run/pgcascade"
    primary_flag: str = "/run/pgcascade/primary-allowed"
    hand_over_marker: str = "/run/pgcascade/handing-over"  # ha-watch's hand-over under way (hostrules.release)
    known_hosts: str = "/var/lib/postgresql/.ssh/known_hosts"
    ssh_timeout: float = 3
    probe_timeout: float = 0.5
    vip_address: str = ""
    vip_prefix: int = 32
    vip_interface: str = ""
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return f"postgresql@{self.version}-{self.cluster}"

    def others(self) -> List[Host]:
        return [h for h in self.hosts if h.name != self.self_name]

    def host(self, name: str) -> Optional[Host]:
        return next((h for h in self.hosts if h.name == name), None)

    def peer(self) -> Host:
        """The other heartbeat node; only a heartbeat node has one."""
        peer = self.host(self.ha_peer) if self.ha_peer else None
        if peer is None:
            raise ValueError(f"{self.self_name} has no heartbeat peer in its hostrules.json: it is no heartbeat node")
        return peer

    def witnesses(self) -> List[Host]:
        """The cluster hosts that run no heartbeat: neither this node nor its peer."""
        return [h for h in self.others() if h.name != self.ha_peer]

    def timing(self, name: str, default: float) -> float:
        return float(self.timings.get(name, default))


def from_dict(data: dict) -> Config:
    data = {k: v for k, v in data.items() if not k.startswith("_")}
    data["hosts"] = [Host(**h) for h in data["hosts"]]
    data["self_name"] = data.pop("self")
    return Config(**data)


def load(path: Optional[str] = None) -> Config:
    path = path or os.environ.get("PGCASCADE_HOSTRULES_CONFIG") or PATH
    with open(path) as f:
        return from_dict(json.load(f))
