"""bench/idle.py's arithmetic: cgroup CPU microseconds over a window -> percent of one core."""
from bench.idle import percent_of_a_core


def test_percent_of_a_core_per_host_and_busy_services_only():
    before = {("l", "pg1", "host"): 1_000_000, ("l", "pg1", "ha.service"): 0, ("l", "pg1", "cron.service"): 5,
              ("l", "pg1", "gone.service"): 0}
    after = {("l", "pg1", "host"): 4_000_000, ("l", "pg1", "ha.service"): 2_400_000, ("l", "pg1", "cron.service"): 5}
    assert percent_of_a_core(before, after, 60) == {"l": {"pg1": {"host": 5.0, "services": {"ha.service": 4.0}}}}


def test_cgroups_of_a_host_services_systemd_and_sessions(tmp_path, monkeypatch):
    import bench.idle as idle

    monkeypatch.setattr(idle, "UNIFIED", tmp_path)
    payload = tmp_path / "pgl/l/pg1/payload"
    for name in ("system.slice/heartbeat.service", "system.slice/system-postgresql.slice", "system.slice/x.mount",
                 "init.scope", "user.slice/user-103.slice/session-1.scope"):
        (payload / name).mkdir(parents=True)
    assert sorted(idle.cgroups_of("l", "pg1")) == ["heartbeat.service", "host", "init.scope", "system-postgresql.slice",
                                                  "user.slice"]
