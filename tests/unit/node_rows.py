"""Node-state test material: the one query's rows (a standby's, a primary's) and a data directory."""
from __future__ import annotations

import json

STANDBY_ROW = json.dumps({
    "in_recovery": True, "timeline": 2, "system_identifier": "7312345678901234567", "current_lsn": None,
    "receive_lsn": "0/5000148", "replay_lsn": "0/5000100",
    "primary_conninfo": "host=198.51.100.11 port=5432 user=replicator application_name=standby_1 passfile=/x",
    "synchronous_standby_names": 'FIRST 1 ("standby_2")',
    "wal_receiver": {"status": "streaming", "sender_host": "198.51.100.11", "received_tli": 2},
    "replication": [{"application_name": "standby_2", "client_addr": "198.51.100.13", "state": "streaming",
                     "sync_state": "async", "flush_lsn": "0/5000100"}]})
PRIMARY_ROW = json.dumps({
    "in_recovery": False, "timeline": 1, "system_identifier": "7312345678901234567", "current_lsn": "1/A0",
    "receive_lsn": None, "replay_lsn": None, "primary_conninfo": "", "synchronous_standby_names": "",
    "wal_receiver": None, "replication": []})


def data_dir(tmp_path):
    data = tmp_path / "data"
    (data / "pg_wal").mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    return data
