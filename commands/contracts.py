"""``mra contracts``: the published event contracts (JSON Schemas, AsyncAPI) generated from the event models."""

from __future__ import annotations

from pathlib import Path

import click

from mra.core.errors import MraError
from mra.events.contracts import ContractsError, check, default_dir, write

__all__ = ["COMMANDS", "contracts"]


@click.group("contracts")
def contracts() -> None:
    """JSON Schema per event type and version, and the AsyncAPI document of the topics, in docs/contracts."""


@contracts.command("write")
@click.option("--check", "only_check", is_flag=True, help="Write nothing; exit 1 if the files differ from the models.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Contracts directory (default: docs/contracts of the source tree).",
)
def write_command(only_check: bool, directory: Path | None) -> None:
    """Generate the contracts from the event models (or check the published ones)."""
    where = directory or default_dir()
    if directory is None and not where.parent.is_dir():
        raise MraError(f"no source tree here ({where.parent} does not exist): give --dir")
    try:
        outcome = check(where) if only_check else write(where)
    except ContractsError as e:
        raise MraError(str(e)) from None
    verb = ("out of date", "stale") if only_check else ("wrote", "removed")
    for p in outcome.changed:
        click.echo(f"{verb[0]}: {where / p}")
    for p in outcome.stale:
        click.echo(f"{verb[1]}: {where / p}")
    if only_check and (outcome.changed or outcome.stale):
        raise click.exceptions.Exit(1)
    if not (outcome.changed or outcome.stale):
        click.echo(f"contracts in {where} match the event models")


COMMANDS: list[click.Command] = [contracts]
