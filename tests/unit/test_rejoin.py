"""plan_rejoin: only an older copy of the same cluster is rewound, onto the live primary."""
from __future__ import annotations

import re
import subprocess

import pytest

from operations.rejoin import _rewind_or_clone
from planner.rejoin import plan_rejoin
from planner.roles import with_master
from tests.unit.pg_states import AFTER_FAILOVER, OTHER_SYSID, five_hosts_topology, pg_state
from tests.unit.topologies import three


def with_(**changes):
    return {**AFTER_FAILOVER, **changes}


@pytest.mark.parametrize("target, facts, force, action, words", [
    ("pg1", AFTER_FAILOVER, False, "rejoin", "standby of pg2"),
    ("pg1", with_(pg1=pg_state("primary")), False, "rejoin", "running primary on timeline 1"),
    ("pg2", AFTER_FAILOVER, False, "refuse", "is the live primary"),
    ("pg1", with_(pg1=pg_state("stopped_primary", timeline=2)), False, "refuse", "may hold the newest"),
    ("pg1", with_(pg1=pg_state("stopped_primary", timeline=2)), True, "rejoin", "rewind"),
    ("pg1", with_(pg1=pg_state("stopped_primary", system_identifier=OTHER_SYSID)), True, "refuse", "another cluster"),
    ("pg1", with_(pg1=None), False, "refuse", "cannot be reached"),
    ("pg1", with_(pg1=pg_state("absent")), False, "refuse", "rebuild"),
    ("pg1", with_(pg2=pg_state("stopped_primary", timeline=2)), False, "refuse", "no running primary"),
    ("pg1", with_(pg1=pg_state("primary", timeline=2)), False, "refuse", "split brain"),
])
def test_plan_rejoin(target, facts, force, action, words):
    plan = plan_rejoin(five_hosts_topology(), target, facts, force=force)
    assert plan.action == action, plan.reason
    assert words in plan.reason


def test_rejoin_targets_the_swapped_topology_and_is_idempotent():
    plan = plan_rejoin(five_hosts_topology(), "pg1", AFTER_FAILOVER)
    assert plan.topology.master.name == "pg2" and plan.topology.node("pg1").upstream == "pg2"
    rejoined = with_(pg1=pg_state("standby", timeline=2, wal_receiver={
        "status": "streaming", "sender_host": plan.topology.node("pg2").address, "sender_port": 5432,
        "received_tli": 2}))
    assert plan_rejoin(five_hosts_topology(), "pg1", rejoined).action == "nothing"


# ---- the rewind-or-clone command, run by sh against stub commands --------------------------------

@pytest.mark.parametrize("method, rewinds, journal", [
    ("rewind", True, r"rejoin: pg1 rewound onto pg2 \(pg_rewind, \d+\.\d s\)"),
    ("rewind", False, r"rejoin: pg1 re-cloned from pg2 \(base backup, \d+\.\d s; method rewind; "
                      r"pg_rewind: error: could not find previous WAL record at 0/18FFE708\)"),
    ("basebackup", True, r"rejoin: pg1 re-cloned from pg2 \(base backup, \d+\.\d s; method basebackup; "
                         r"pg_rewind not tried\)"),
])
def test_rewind_or_clone_says_in_the_journal_which_way_it_went(tmp_path, method, rewinds, journal):
    now = with_master(three(), "pg2")  # pg1 rejoins under pg2
    c = now.cluster
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    data.mkdir()
    (data / "old").write_text("")
    stubs = {
        "pg_rewind": "echo 'pg_rewind: servers diverged' >&2\n" + (
            "exit 0" if rewinds else "echo 'pg_rewind: error: could not find previous WAL record at 0/18FFE708' >&2\nexit 1"),
        "pg_basebackup": f"touch {data}/cloned",
        "logger": f"shift 2; echo \"$*\" >> {tmp_path}/journal",
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    command = (_rewind_or_clone(now, "pg1", method).get_raw_value().replace("runuser -u postgres --", "")
               .replace(c.bin_directory, str(bin_dir)).replace(c.data_directory, str(data)))
    result = subprocess.run(["sh", "-c", command], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(journal, (tmp_path / "journal").read_text().strip())
    assert (data / "standby.signal").exists()
    assert (data / "cloned").exists() is (method == "basebackup" or not rewinds)
    assert (data / "old").exists() is (method == "rewind" and rewinds)  # a clone starts from an empty directory
