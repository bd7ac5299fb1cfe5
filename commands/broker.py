"""``mra broker``: the local development broker."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
