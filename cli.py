"""The ``mra`` command: how bureaus, employers and operators use mra.

Each area's commands live in ``mra.commands``; this module only assembles them and turns expected
failures into one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from mra import __version__
from mra.commands._common import Ctx, default_state_dir
from mra.commands._output import _, localize, set_language, to_json
from mra.core.errors import MraError
from mra.i18n import normalize

__all__ = ["cli", "main"]


_VALUE_OPTIONS = {"--state-dir", "--bootstrap", "--lang"}


def _explicit_language(args: list[str]) -> str | None:
    """``--lang`` among the options before the command (the only place it is read), or None."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--lang":
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
        if arg in _VALUE_OPTIONS:
            i += 2
            continue
        if not arg.startswith("-"):
            return None
        i += 1
    return None


class _Localized(click.Group):
    """The top-level group: before reading anything, fix the language (``--lang``, else the environment) and
    show help and click's own texts in it."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        if parent is None:
            localize(self, set_language(_explicit_language(list(args))))
        return super().make_context(info_name, args, parent, **extra)


def _language(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and normalize(value) is None:
        raise click.BadParameter(_("choose zh_CN or en"), ctx, param)
    return value


@click.group(
    cls=_Localized, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
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
@click.option(
    "--lang",
    metavar="zh_CN|en",
    is_eager=True,
    callback=_language,
    help="Language of messages and help (zh_CN or en). Default: from LC_ALL, LC_MESSAGES, LANG, LANGUAGE; else en. "
    "--json output keeps its English codes.",
)
@click.pass_context
def cli(ctx: click.Context, state_dir: str | None, bootstrap: str | None, lang: str | None) -> None:
    """mra: mutual recognition of international professional qualifications across 京津冀."""
    from pathlib import Path

    ctx.obj = Ctx(state_dir=Path(state_dir) if state_dir else default_state_dir(), bootstrap=bootstrap)


def _register() -> None:
    from mra.commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become a message and an exit code, never a traceback. Under ``--json``
    the message is ``{"error": …}`` on stdout instead, with the same exit code.

    Everything mra writes under its state directory is its owner's alone, whatever umask it was started with."""
    os.umask(os.umask(0o077) | 0o077)
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args

    def fail(message: str, code: int) -> None:
        if as_json:
            click.echo(to_json({"error": message, "exit_code": code}))
        else:
            click.echo(_("Error: {message}").format(message=message), err=True)
        sys.exit(code)

    try:
        code = cli.main(args=args, prog_name="mra", standalone_mode=False)
        if isinstance(code, int) and code:  # ctx.exit(n) comes back as a return value here
            sys.exit(code)
    except click.exceptions.Abort:
        fail(_("Aborted."), 130)
    except click.UsageError as e:
        if as_json:
            fail(e.format_message(), e.exit_code)
        e.show()
        sys.exit(e.exit_code)
    except click.ClickException as e:
        fail(e.format_message(), e.exit_code)
    except MraError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail(_("Interrupted."), 130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except RecursionError:
        click.echo("Error: the input is nested too deeply to read", err=True)
        sys.exit(2)
    except Exception as e:  # no input may end in a traceback; MRA_DEBUG=1 shows one for a bug report
        if os.environ.get("MRA_DEBUG"):
            raise
        click.echo(f"Error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unexpected failure'} "
                   "(MRA_DEBUG=1 shows where)", err=True)  # fmt: skip
        sys.exit(70)


if __name__ == "__main__":
    main()
