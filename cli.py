"""The ``mra`` command: how bureaus, employers and operators use mra.

Each area's commands live in ``mra.commands``; this module only assembles them and turns expected
failures into one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import os
import sys

import click

from mra import __version__
from mra.commands._common import Ctx, default_state_dir
from mra.core.errors import MraError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="mra")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    envvar="MRA_STATE_DIR",
    help="Where local state lives (broker, read models, keys). Default: $MRA_STATE_DIR or ~/.local/share/mra.",
)
@click.option(
    "--bootstrap",
    envvar="MRA_BOOTSTRAP_SERVERS",
    help="Kafka bootstrap servers of a real cluster. Default: $MRA_BOOTSTRAP_SERVERS, else the local broker.",
)
@click.pass_context
def cli(ctx: click.Context, state_dir: str | None, bootstrap: str | None) -> None:
    """mra: mutual recognition of international professional qualifications across 京津冀."""
    from pathlib import Path

    ctx.obj = Ctx(state_dir=Path(state_dir) if state_dir else default_state_dir(), bootstrap=bootstrap)


def _register() -> None:
    from mra.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become a message and an exit code, never a traceback.

    Everything mra writes under its state directory is its owner's alone, whatever umask it was started with."""
    os.umask(os.umask(0o077) | 0o077)
    try:
        code = cli.main(args=argv, prog_name="mra", standalone_mode=False)
        if isinstance(code, int) and code:  # ctx.exit(n) comes back as a return value here
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except MraError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
