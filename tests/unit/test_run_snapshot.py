"""operations.run_snapshot: the declared facts read in one command, served until the run's first
change, and read live otherwise; PathStates' and ManagedState's shell parts, run here."""
from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host, ctx_state
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Command

import operations.run_snapshot as snapshot
from facts.managed import ManagedState, PathStates, parse_managed_state, unit_records


@pytest.fixture
def local(tmp_path):
    """A pyinfra state with the one @local host, preparing, and files to read."""
    inventory = Inventory((["@local"], {}))
    state = State(inventory, Config())
    connect_all(state)
    (tmp_path / "a").write_text("one\ntwo")  # no newline at the end
    host = inventory.get_host("@local")
    with ctx_state.use(state), ctx_host.use(host):
        state.current_stage = StateStage.Prepare
        yield SimpleNamespace(state=state, host=host, dir=tmp_path)


def declare(local, facts):
    snapshot.declare_run_facts(lambda name: facts)


def test_declared_facts_are_served_from_one_read_and_others_are_read_live(local):
    a, b = str(local.dir / "a"), str(local.dir / "b")
    declare(local, [(FileContents, {"path": a}), (PathStates, {"paths": [a, b, str(local.dir)]}),
                    (Command, {"command": "echo hi"})])
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["one", "two"]
    assert snapshot.read_fact(local.host, Command, command="echo hi") == "hi"
    assert list(snapshot.read_fact(local.host, PathStates, paths=[a, b])) == [a]  # a part of the declared paths
    assert snapshot.read_counts() == (3, 0)
    assert snapshot.read_fact(local.host, Command, command="echo other") == "other"  # not declared
    assert snapshot.read_counts() == (3, 1)


def test_a_failed_section_is_read_live_and_fails_as_get_fact_does(local):
    declare(local, [(Command, {"command": "echo out; exit 3"})])
    assert snapshot.read_fact(local.host, Command, command="echo out; exit 3", _ignore_errors=True) is None
    assert snapshot.read_counts() == (0, 1)


def test_the_snapshot_is_the_state_when_it_was_read_and_a_prompted_run_reads_again(local):
    a = str(local.dir / "a")
    declare(local, [(FileContents, {"path": a})])
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["one", "two"]
    (local.dir / "a").write_text("three\n")
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["one", "two"]
    local.state.check_for_changes = False  # -y: prepared and executed in one go
    local.state.current_stage = StateStage.Execute
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["one", "two"]
    local.state.check_for_changes = True  # a prompt (or --dry) between: the execution reads again
    local.state.current_stage = StateStage.Disconnect
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["three"]


def test_after_the_first_change_anywhere_every_read_is_live(local, monkeypatch):
    a = str(local.dir / "a")
    declare(local, [(FileContents, {"path": a})])
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["one", "two"]
    (local.dir / "a").write_text("changed\n")
    ran = SimpleNamespace(operation_meta=SimpleNamespace(executed=True))
    monkeypatch.setattr(local.state, "ops", {local.host: {"op": ran}})
    assert snapshot.read_fact(local.host, FileContents, path=a) == ["changed"]


def test_without_a_declaration_facts_are_read_live(local):
    assert snapshot.read_fact(local.host, Command, command="echo live") == "live"


def managed(**parts):
    return {**ManagedState.default(), "now": 5.0, "heartbeat": None, "postgres": {"in_recovery": False}, **parts}


DECLARED = {"paths": ["/p", "/q"], "units": ["u.service"], "setting_names": ["port"], "port": 5432,
            "role": "replicator", "home": "/var/lib/postgresql", "vip": "10.0.0.9", "failover_view": ""}
VALUE = managed(paths={"/p": {"type": "file"}, "/q": {"type": "directory"}}, units={"u.service": {"active": "active"}},
                authorized_keys=["k"], public_key="q", vip=True)


@pytest.mark.parametrize("wanted, expected", [
    ({**DECLARED, "paths": [], "units": [], "vip": ""},
     managed(authorized_keys=["k"], public_key="q")),  # the server's part and the keys; no VIP asked
    ({**DECLARED, "paths": ["/q"]}, {**VALUE, "paths": {"/q": {"type": "directory"}}}),
    ({**DECLARED, "paths": ["/r"]}, None),  # a path not read
    ({**DECLARED, "setting_names": ["wal_level"]}, None),  # another query
    ({**DECLARED, "home": "/root"}, None),  # another user's keys
    ({**DECLARED, "vip": "10.0.0.8"}, None),
])
def test_a_managed_state_is_served_from_a_declared_one_that_read_more(wanted, expected):
    assert snapshot._part_of_managed_state(DECLARED, VALUE, wanted) == expected


def test_path_records_read_every_path_in_a_few_commands(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").write_text("")
    (tmp_path / "dir").mkdir()
    os.symlink(tmp_path / "file", tmp_path / "link")
    os.chmod(tmp_path / "file", 0o640)
    paths = [str(tmp_path / n) for n in ("file", "empty", "dir", "link", "absent")]
    out = subprocess.run(["sh", "-c", PathStates().command(paths=paths)], capture_output=True, text=True, check=True)
    found = PathStates().process(out.stdout.splitlines())
    assert set(found) == set(paths[:4])
    assert found[paths[0]]["mode"] == "0640" and found[paths[0]]["type"] == "file"
    assert found[paths[0]]["sha256"] == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    assert found[paths[1]]["sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert found[paths[2]] == {**found[paths[2]], "type": "directory", "sha256": None}
    assert found[paths[3]] == found[paths[0]]  # followed, as [ -f ] does
    assert PathStates().process(subprocess.run(["sh", "-c", PathStates().command(paths=[])], capture_output=True,
                                               text=True).stdout.splitlines()) == {}


def test_unit_records_map_systemctl_shows_blocks_to_the_units_asked(tmp_path):
    stub = tmp_path / "systemctl"
    stub.write_text("#!/bin/sh\nprintf 'ActiveState=active\\nUnitFileState=enabled-runtime\\n\\n"
                    "ActiveState=inactive\\nUnitFileState=\\n'\n")
    stub.chmod(0o755)
    out = subprocess.run(["sh", "-c", unit_records(["postgresql@15-main.service", "heartbeat.service"])],
                         capture_output=True, text=True, check=True, env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert parse_managed_state(out.stdout.splitlines())["units"] == {
        "postgresql@15-main.service": {"enabled": "enabled-runtime", "active": "active"},
        "heartbeat.service": {"enabled": "", "active": "inactive"}}
