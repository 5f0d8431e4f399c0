"""Each host's managed files of one concern, from the registry (planner.registry.entries): one
operation per group of files with the same follow-up (a reload, a restart of ha-watch...), so
the follow-ups can depend on it. Secrets are created 0600 first and never diffed.
"""
from __future__ import annotations

from pyinfra import host

from deploys.context import Context
from deploys.hostrules_package import package_contents
from operations.managed_files import ensure_managed_files
from planner import registry


def template_vars(ctx: Context, template: str) -> dict:
    """A template's variables on this host, as the registry renders it."""
    return registry.file_variables(ctx.topology, ctx.this_node.name, ctx.secrets, package_contents())[template]()


def host_registry(ctx: Context) -> registry.HostRegistry:
    return ctx.registry


def put_managed_files(ctx: Context, concern: str) -> dict:
    """Install the host's managed files and directories of `concern`, one operation per follow-up
    group (registry.ON_CHANGE_ORDER, the same order on every host); returns {on_change: operation}."""
    reg = host_registry(ctx)
    ops = {}
    directories = list(reg.directories_of(concern))
    for on_change in host.loop(registry.ON_CHANGE_ORDER):
        group = [f for f in reg.files_of(concern) if f.on_change == on_change]
        if not group and not (directories and on_change == registry.ON_CHANGE_ORDER[0]):
            continue
        ops[on_change] = ensure_managed_files(
            name=f"{concern} files: {on_change}", files=group,
            directories=directories if on_change == registry.ON_CHANGE_ORDER[0] else [])
    return ops
