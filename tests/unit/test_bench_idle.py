"""bench/idle.py's arithmetic: cgroup CPU microseconds over a window -> percent of one core."""
from bench.idle import percent_of_a_core


def test_percent_of_a_core_per_host_and_busy_services_only():
    before = {("l", "pg1", "host"): 1_000_000, ("l", "pg1", "ha.service"): 0, ("l", "pg1", "cron.service"): 5,
              ("l", "pg1", "gone.service"): 0}
    after = {("l", "pg1", "host"): 4_000_000, ("l", "pg1", "ha.service"): 2_400_000, ("l", "pg1", "cron.service"): 5}
    assert percent_of_a_core(before, after, 60) == {"l": {"pg1": {"host": 5.0, "services": {"ha.service": 4.0}}}}
