"""Executable files the unit tests write (scripts under test, stubs of the commands they call)."""
from __future__ import annotations

import stat


def write_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
