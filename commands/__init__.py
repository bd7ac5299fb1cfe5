"""The command groups of the ``mra`` CLI, one module per area.

A module listed in ``MODULES`` exposes ``COMMANDS``, the click commands it adds at the top level.
"""

from __future__ import annotations

from importlib import import_module

import click

__all__ = ["COMMANDS"]

MODULES = [
    "broker",
    "demo",
    "up",
    "bureau",
    "replay",
    "audit",
    "report",
    "catalogue",
    "benefits",
    "plugins",
    "verify",
    "platform",
    "dlq",
    "keys",
    "holder_privacy",
    "access",
    "serve",
    "contracts",
]

COMMANDS: list[click.Command] = [c for m in MODULES for c in import_module(f"mra.commands.{m}").COMMANDS]
