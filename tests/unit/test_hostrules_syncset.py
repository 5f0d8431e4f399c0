"""hostrules.syncset: the generation-numbered record of the synchronous set."""
from __future__ import annotations

import json

import pytest

from hostrules import syncset


@pytest.mark.parametrize("setting, parsed", [
    ("", ("", 0, [])),
    ('FIRST 1 ("standby_1")', ("first", 1, ["standby_1"])),
    ('FIRST 1 ("standby_1", "standby_2")', ("first", 1, ["standby_1", "standby_2"])),
    ("ANY 2 (a, b, c)", ("any", 2, ["a", "b", "c"])),
    ("2 (a,b)", ("first", 2, ["a", "b"])),
    ("a, b", ("first", 1, ["a", "b"])),
    ('first 1 ("we""ird", plain)', ("first", 1, ['we"ird', "plain"])),
    ("*", ("first", 1, ["*"])),
])
def test_parse_names(setting, parsed):
    assert syncset.parse_names(setting) == parsed


def test_next_record_bumps_the_generation_only_on_a_change():
    first = syncset.next_record(None, "pg1", "7", 1, 'FIRST 1 ("standby_1")', "pg1")
    assert first["generation"] == 1 and first["synchronous"] == ["standby_1"]
    assert syncset.next_record(first, "pg1", "7", 1, 'FIRST 1 ("standby_1")', "pg1") is first
    second = syncset.next_record(first, "pg1", "7", 1, 'FIRST 1 ("standby_2")', "pg1")
    assert second["generation"] == 2 and second["synchronous"] == ["standby_2"]
    third = syncset.next_record(second, "pg2", "7", 2, 'FIRST 1 ("standby_2")', "pg2")
    assert third["generation"] == 3 and third["primary"] == "pg2"


def test_newest_and_accepts():
    a, b = {"generation": 3}, {"generation": 5}
    assert syncset.newest([a, None, b, {"nonsense": 1}]) is b
    assert syncset.newest([None]) is None
    assert syncset.accepts(None, a) and syncset.accepts(a, b)
    assert not syncset.accepts(b, a) and not syncset.accepts(b, {"generation": 5})


def test_store_and_load(tmp_path):
    path = str(tmp_path / "dir" / "syncset.json")
    assert syncset.load(path) is None
    record = syncset.next_record(None, "pg1", "7", 1, 'FIRST 1 ("standby_1")', "pg1")
    syncset.store(path, record)
    assert syncset.load(path) == record
    (tmp_path / "dir" / "syncset.json").write_text("{broken")
    assert syncset.load(path) is None
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["syncset.json"]  # no temporary file left


def test_accept_entry_point_keeps_the_newer_record(tmp_path, monkeypatch, capsys):
    config = {"self": "pg3", "version": 15, "cluster": "main", "port": 5432, "bin_directory": "/x",
              "data_directory": "/x", "socket_directory": "/x", "syncset_path": str(tmp_path / "s.json"),
              "hosts": [{"name": "pg3", "address": "10.0.0.3", "role": "downstream"}]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    monkeypatch.setenv("PGCASCADE_HOSTRULES_CONFIG", str(tmp_path / "c.json"))
    for generation, expected in ((2, "stored"), (1, "kept"), (3, "stored")):
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps({"generation": generation})))
        assert syncset.main(["accept"]) == 0
        assert capsys.readouterr().out.strip() == expected
    assert syncset.load(str(tmp_path / "s.json")) == {"generation": 3}
