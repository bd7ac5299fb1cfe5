"""``mra serve``: the web door (HTTP API and pages) over the state dir's platform and bureaus."""

from __future__ import annotations

import click

from mra.commands._common import Ctx, pass_ctx

__all__ = ["COMMANDS", "serve"]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@pass_ctx
def serve(ctx: Ctx, host: str, port: int) -> None:
    """Serve the API (OpenAPI at /openapi.json) and the pages: employers, the public check, clerks, operators.
    Settings: web/settings.json in the state dir (see docs/web.md)."""
    from mra.services.keys import require_publishing
    from mra.services.platform import PUBLISHER
    from mra.web.server import run

    state = ctx.ensure_state_dir()
    require_publishing(state, PUBLISHER)  # it publishes employers' requests: refuse now, not at the first request
    run(state, ctx.bootstrap, host, port)


COMMANDS: list[click.Command] = [serve]
