"""A block of lines between markers in a file others also edit (/etc/hosts): pyinfra's
files.block, asked only when the run's snapshot (operations.run_snapshot) shows the block differs."""
from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Block
from pyinfra.operations import files

from operations.run_snapshot import read_fact


@operation()
def ensure_block(path: str, content: str, marker: str):
    """
    These lines between the markers in the file (files.block when they differ).

    + path: the file
    + content: the lines, without the markers
    + marker: the markers' pattern, with {mark} for BEGIN and END
    """
    if read_fact(host, Block, path=path, marker=marker) == content.split("\n"):
        host.noop(f"{path} has the block")
        return
    yield from files.block._inner(path=path, content=content, marker=marker)
