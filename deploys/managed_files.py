"""Each host's managed files of one concern, from the registry (planner.registry.entries).

Files that hold a secret go through ensure_private_file (0600 from the start, never diffed);
the others through files.put of the rendered content (mode and owner enforced); a file the
registry wants absent is removed.
"""
from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.operations import files

from deploys.context import Context
from deploys.hostrules_package import package_contents
from operations.private_files import ensure_private_file
from planner import registry


def template_vars(ctx: Context, template: str) -> dict:
    """A template's variables on this host, as the registry renders it."""
    return registry.file_variables(ctx.topology, ctx.node.name, ctx.secrets, package_contents())[template]()


def host_registry(ctx: Context) -> registry.HostRegistry:
    return registry.entries(ctx.topology, ctx.node.name, ctx.secrets, hostrules=package_contents())


def put_managed_files(ctx: Context, concern: str) -> dict:
    """Install the host's managed files of `concern`; returns {template or path: operation}."""
    ops = {}
    wanted = host_registry(ctx).files_of(concern)
    for entry in host.loop(wanted):  # one pyinfra operation per file, in the same order on every host
        key = entry.template or entry.path
        if not entry.present:
            ops[key] = files.file(name=f"no {entry.path}", path=entry.path, present=False)
        elif entry.content is None:
            continue  # made on the host (an ssh key): its own operation
        elif entry.secret:
            ops[key] = ensure_private_file(name=f"{entry.path} (private)", dest=entry.path, content=entry.content,
                                           user=entry.owner, group=entry.group)
        else:
            ops[key] = files.put(name=entry.path, src=StringIO(entry.content), dest=entry.path, user=entry.owner,
                                 group=entry.group, mode=entry.mode)
    return ops
