"""Render a template of templates/ by name, exactly as pyinfra's files.template does.

pyinfra 3.10 renders with ``Environment(undefined=StrictUndefined, keep_trailing_newline=True)``
and nothing else (no trim_blocks, no lstrip_blocks, no custom filters), so this helper uses the
same options: what the tests render is byte for byte what lands on the hosts. Variables passed
to files.template must not use the names files.template itself takes (``src``, ``dest``,
``user``, ...), a global argument's name (``name``, ``_*``), or ``host``/``state``/``inventory``
(pyinfra adds those); ``render`` refuses them so a clash shows up in the unit tests.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")

RESERVED_NAMES = frozenset(
    {
        # files.template's own parameters
        "src",
        "dest",
        "user",
        "group",
        "mode",
        "create_remote_dir",
        "jinja_env_kwargs",
        # pyinfra global argument without a leading underscore
        "name",
        # set by files.template for every template
        "host",
        "state",
        "inventory",
    }
)


def template_path(template_name: str) -> str:
    """Absolute path of a template, for files.template(src=...)."""
    path = os.path.join(TEMPLATE_DIR, template_name)
    if os.path.dirname(os.path.normpath(path)) != TEMPLATE_DIR or not os.path.isfile(path):
        raise ValueError(f"template {template_name!r}: no such file in {TEMPLATE_DIR}")
    return path


@functools.cache  # one environment, so each template is compiled once per process (jinja2 checks its file's mtime)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template_name: str, variables: Mapping[str, object]) -> str:
    """Render templates/<template_name> with these variables (undefined ones raise)."""
    clashes = sorted(n for n in variables if n in RESERVED_NAMES or n.startswith("_"))
    if clashes:
        raise ValueError(
            f"template {template_name}: variable name(s) {', '.join(clashes)} clash with"
            " pyinfra's files.template arguments; rename them"
        )
    template_path(template_name)
    return _environment().get_template(template_name).render(dict(variables))
