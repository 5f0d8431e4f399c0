"""The Patroni peer's files (bench/peers/patroni_files.py): timing rules, and what each host gets."""
import json

import pytest

from bench.peers import patroni_files as pf

MEMBERS = [pf.Member("pg1", "10.0.0.1"), pf.Member("pg2", "10.0.0.2"), pf.Member("pg3", "10.0.0.3")]


@pytest.mark.parametrize("timing, problems", [
    (pf.DEFAULTS, []),
    (pf.FASTEST, []),
    ({"ttl": 19, "loop_wait": 1, "retry_timeout": 3}, ["ttl 19 is below Patroni's minimum 20"]),
    ({"ttl": 20, "loop_wait": 0, "retry_timeout": 3}, ["loop_wait 0 is below Patroni's minimum 1"]),
    ({"ttl": 20, "loop_wait": 1, "retry_timeout": 2}, ["retry_timeout 2 is below Patroni's minimum 3"]),
    ({"ttl": 20, "loop_wait": 10, "retry_timeout": 6}, ["loop_wait + 2 * retry_timeout = 22 exceeds ttl 20"]),
])
def test_timing_rules(timing, problems):
    assert pf.timing_problems(timing) == problems


def test_fastest_is_the_smallest_accepted_timing():
    for key in pf.FASTEST:
        smaller = {**pf.FASTEST, key: pf.FASTEST[key] - 1}
        assert pf.timing_problems(smaller), f"{key} could go lower"


def config(me=MEMBERS[1], timing=pf.FASTEST):
    return json.loads(pf.patroni_config(me, MEMBERS, subnet="10.0.0.0/27", replication_password="r",
                                        superuser_password="s", timing=timing))


def test_patroni_config_is_synchronous_with_the_timing_and_every_etcd_member():
    c = config()
    assert c["name"] == "pg2" and c["restapi"]["connect_address"] == "10.0.0.2:8008"
    assert c["bootstrap"]["dcs"]["synchronous_mode"] is True
    assert {k: c["bootstrap"]["dcs"][k] for k in pf.FASTEST} == pf.FASTEST
    assert c["etcd"]["hosts"] == ["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"]
    assert "host all all 10.0.0.0/27 scram-sha-256" in c["postgresql"]["pg_hba"]


def test_patroni_config_refuses_a_timing_patroni_would_refuse():
    with pytest.raises(ValueError, match="exceeds ttl"):
        config(timing={"ttl": 20, "loop_wait": 10, "retry_timeout": 10})


def test_patroni_config_is_byte_identical_for_identical_input():
    args = dict(subnet="10.0.0.0/27", replication_password="r", superuser_password="s", timing=pf.DEFAULTS)
    assert pf.patroni_config(MEMBERS[0], MEMBERS, **args) == pf.patroni_config(MEMBERS[0], MEMBERS, **args)


def test_etcd_member_of_a_static_cluster_with_the_v2_api():
    text = pf.etcd_defaults(MEMBERS[2], MEMBERS)
    assert 'ETCD_NAME="pg3"' in text
    assert ('ETCD_INITIAL_CLUSTER="pg1=http://10.0.0.1:2380,pg2=http://10.0.0.2:2380,pg3=http://10.0.0.3:2380"'
            in text)
    assert 'ETCD_ENABLE_V2="true"' in text


def test_vip_manager_follows_the_leader_key_for_this_host():
    text = pf.vip_manager_defaults(MEMBERS[0], MEMBERS, "10.0.0.9", 27, "eth0")
    assert f'VIP_KEY="{pf.leader_key()}"' in text and pf.leader_key() == "/service/peers/leader"
    assert 'VIP_HOST="pg1"' in text and 'VIP_IP="10.0.0.9"' in text and 'VIP_MASK="27"' in text
    assert 'VIP_ENDPOINT="http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379"' in text


from bench.peers.cluster import Peer, live_problem, view_problem  # noqa: E402

DESC = {"hosts": [{"name": m.name, "ip": m.address} for m in MEMBERS]}


def member(name, role, state="running", timeline=2, lag=0):
    return {"name": name, "role": role, "state": state, "timeline": timeline, "lag": lag}


HEALTHY = [member("pg1", "leader"), member("pg2", "sync_standby"), member("pg3", "replica")]


@pytest.mark.parametrize("members, problem", [
    (HEALTHY, None),
    ([member("pg1", "leader"), member("pg2", "replica"), member("pg3", "replica")], "no synchronous standby yet"),
    ([member("pg1", "leader"), member("pg2", "sync_standby")], "2 of 3 members registered"),
    ([member("pg1", "replica"), member("pg2", "sync_standby"), member("pg3", "replica")], "leaders: []"),
    ([member("pg1", "leader"), member("pg2", "sync_standby"), member("pg3", "replica", state="starting")],
     "not running: ['pg3']"),
    ([member("pg1", "leader"), member("pg2", "sync_standby"), member("pg3", "replica", timeline=1)],
     "not caught up: ['pg3']"),
])
def test_peer_health_from_patronis_cluster_view(members, problem):
    assert view_problem(members, 3) == problem


def test_a_view_that_names_another_leader_than_the_leader_key_is_stale():
    assert view_problem(HEALTHY, 3, leader="pg3") == "leaders: ['pg1'] (the leader key names pg3)"


def primary(*replicas, timeline=2):
    return {"state": "running", "role": "master", "timeline": timeline,
            "replication": [{"application_name": name, "state": "streaming", "sync_state": sync}
                            for name, sync in replicas]}


def replica(timeline=2, state="running"):
    return {"state": state, "role": "replica", "timeline": timeline}


SYNC = {"leader": "pg1", "sync_standby": "pg2"}


@pytest.mark.parametrize("sync, statuses, problem", [
    (SYNC, {"pg1": primary(("pg2", "sync"), ("pg3", "async")), "pg2": replica(), "pg3": replica()}, None),
    # a new leader with no standby yet: /sync still the former leader's (its view looks healthy)
    ({"leader": "pg3", "sync_standby": "pg1"}, {"pg1": primary(), "pg2": replica(), "pg3": replica()},
     "the /sync key is {'leader': 'pg3', 'sync_standby': 'pg1'}, not a synchronous standby of pg1"),
    ({"leader": "pg1", "sync_standby": None}, {"pg1": primary(), "pg2": replica(), "pg3": replica()},
     "the /sync key is {'leader': 'pg1', 'sync_standby': None}, not a synchronous standby of pg1"),
    # a demoted former leader that never followed (no primary_conninfo, not rewound)
    (SYNC, {"pg1": primary(("pg2", "sync")), "pg2": replica(), "pg3": replica(timeline=1)},
     "not streaming from pg1: ['pg3']"),
    (SYNC, {"pg1": primary(("pg2", "potential"), ("pg3", "async")), "pg2": replica(), "pg3": replica()},
     "['pg2'] named in /sync but not synchronous on pg1"),
    (SYNC, {"pg1": primary(("pg2", "sync"), ("pg3", "async")), "pg2": replica(), "pg3": replica(timeline=None)},
     "not replicas on pg1's timeline 2: ['pg3: running replica timeline None']"),
])
def test_peer_health_from_the_live_state(sync, statuses, problem):
    assert live_problem("pg1", sync, statuses) == problem


def test_peer_health_reads_the_leader_keys_member_not_the_first_that_answers(monkeypatch):
    peer = Peer(DESC)
    asked = []
    monkeypatch.setattr(peer, "leader_key", lambda exclude=(): {"value": "pg1"})
    monkeypatch.setattr(peer, "members", lambda exclude=(), only=None: asked.append(only) or HEALTHY)
    monkeypatch.setattr(peer, "_key", lambda key, exclude=(): {"value": json.dumps(SYNC)})
    statuses = {"pg1": primary(("pg2", "sync"), ("pg3", "async")), "pg2": replica(), "pg3": replica()}
    monkeypatch.setattr(peer, "status", lambda name: statuses[name])
    assert peer.healthy() is None and asked == ["pg1"]
