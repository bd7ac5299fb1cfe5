"""What every command shares: the state directory, the broker address, and output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from mra.services.runtime import Runtime

__all__ = ["Ctx", "current_state_dir", "emit", "json_option", "jurisdiction_option", "pass_ctx"]

F = TypeVar("F", bound=Callable[..., Any])


def default_state_dir() -> Path:
    """``MRA_STATE_DIR``, else the per-user data directory (XDG on Linux)."""
    env = os.environ.get("MRA_STATE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mra"


@dataclass
class Ctx:
    """Per-invocation settings, resolved once in the top-level group."""

    state_dir: Path
    bootstrap: str | None

    def ensure_state_dir(self) -> Path:
        from mra.services.files import private_dir

        return private_dir(self.state_dir)

    def provision_local(self) -> dict[str, Any] | None:
        """Secure on first use: a state directory with no trust store gets every identity's key and a verifying
        trust store (for a local deployment: ``broker start``, ``up``, ``demo``). Says so on stderr."""
        from mra.core.plugins import load_registry
        from mra.services.keys import ensure_keys, standard_identities

        made = ensure_keys(self.ensure_state_dir(), standard_identities(load_registry().jurisdictions))
        if made is not None:
            click.echo(
                f"generated signing keys for {len(made['generated'])} publishers and a trust store "
                f"({made['trust_store']}): events are signed and verified ({made['mode']})",
                err=True,
            )
        return made

    def runtime(self) -> Runtime:
        from mra.services.runtime import Runtime

        return Runtime(self.ensure_state_dir(), self.bootstrap)


pass_ctx = click.make_pass_decorator(Ctx)


def current_state_dir() -> Path:
    """The state directory of the running command (``--state-dir``), for commands that only read from it."""
    context = click.get_current_context(silent=True)
    obj = context.find_object(Ctx) if context else None
    return obj.state_dir if obj else default_state_dir()


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def store_option(f: F) -> F:
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="The bureau's read model: sqlite:///PATH, or postgresql://… shared by every instance of the bureau "
        "(also MRA_STORE; default: SQLite in the state directory).",
    )(f)


def jurisdiction_option(
    required: bool = True, help: str = "Jurisdiction: code, Chinese name or abbreviation (beijing, 北京, 京, …)."
) -> Callable[[F], F]:
    from mra.commands._input import JURISDICTION

    return click.option("--jurisdiction", "-j", "jurisdiction", type=JURISDICTION, required=required, help=help)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON, or as text made by ``text``."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    if text is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    elif isinstance(text, str):
        click.echo(text)
    else:
        click.echo(text(data))


def is_tty() -> bool:
    return sys.stderr.isatty()
