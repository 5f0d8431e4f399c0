"""operations.managed_files: the commands that create, rewrite and fix a managed file, run by a
local shell (an upload is a plain write, as SFTP's into an existing file)."""
from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from pathlib import Path

from pyinfra.api import StringCommand
from pyinfra.api.command import FileUploadCommand

from operations.managed_files import file_commands
from planner.registry import FileEntry

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def run(commands: list) -> None:
    for command in commands:
        if isinstance(command, FileUploadCommand):
            with open(command.dest, "r+b") as target:  # an existing file: its mode and owner stay
                target.truncate()
                target.write(command.src.getvalue())
        else:
            assert isinstance(command, StringCommand)
            subprocess.run(["sh", "-c", command.get_raw_value()], check=True)


def observed(path: Path) -> dict:
    st = path.stat()
    return {"owner": pwd.getpwuid(st.st_uid).pw_name, "group": grp.getgrgid(st.st_gid).gr_name,
            "mode": oct(stat.S_IMODE(st.st_mode))[2:], "sha256": None}


def test_a_new_file_is_created_with_its_mode_in_a_new_directory_in_three_steps(tmp_path):
    entry = FileEntry(str(tmp_path / "a/b/secret.conf"), owner=ME, group=MY_GROUP, mode="0600", content="pass=1\n")
    commands, what = file_commands(entry, None)
    assert what == f"install {entry.path}"
    assert len(commands) == 3  # the directory and the empty 0600 file, the content, its mode and owner
    run(commands)
    assert Path(entry.path).read_text() == "pass=1\n"
    assert observed(Path(entry.path))["mode"] == "600"


def test_a_wrong_mode_is_fixed_in_one_command_and_a_right_one_needs_none(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o666)
    entry = FileEntry(str(path), owner=ME, group=MY_GROUP, mode="0640", content="x")
    state = {**observed(path), "sha256": "3"}  # content differs too: rewrite, then attributes
    commands, what = file_commands(entry, state)
    assert what == f"rewrite {path}"
    run(commands)
    assert observed(path)["mode"] == "640"
    commands, what = file_commands(entry, {**observed(path), "sha256": None})
    assert what == f"rewrite {path}"
    fixed, _ = file_commands(FileEntry(str(path), owner=ME, group=MY_GROUP, mode="0600"), observed(path))
    assert len(fixed) == 1
    run(fixed)
    assert observed(path)["mode"] == "600"
    assert file_commands(FileEntry(str(path), owner=ME, group=MY_GROUP, mode="0600"), observed(path)) == ([], None)
