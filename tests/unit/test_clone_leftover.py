"""operations.standby.stop_leftover_copy, run by a local shell: an interrupted clone's
pg_basebackup still copying into the data directory is stopped; nothing else is."""
from __future__ import annotations

import getpass
import subprocess
import sys
import time

from operations.standby import stop_leftover_copy


def fake_copy(data: str) -> subprocess.Popen:
    """A process whose command line reads like the clone's pg_basebackup into `data`."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pg_basebackup",
                             "--no-password", "-D", data, "-X", "stream"])


def test_the_copy_into_this_data_directory_is_stopped_and_another_is_left(tmp_path):
    ours, other = fake_copy(f"{tmp_path}/main"), fake_copy(f"{tmp_path}/main2")
    try:
        time.sleep(0.2)
        command = stop_leftover_copy(f"{tmp_path}/main", user=getpass.getuser()).get_raw_value()
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert ours.wait(timeout=5) is not None
        assert other.poll() is None
        # Nothing left to stop: it succeeds at once.
        assert subprocess.run(["sh", "-c", command], timeout=30).returncode == 0
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()
