"""``mra up``: the platform and every bureau, long-running, for trying things by hand."""

from __future__ import annotations

import threading

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.core.plugins import load_registry
from mra.events.broker import broker_status, start_broker
from mra.services.bureaus import open_bureau
from mra.services.platform import Platform

__all__ = ["COMMANDS"]


@click.command("up")
@click.option("--jurisdictions", help="Comma-separated bureaus to run (default: every loaded jurisdiction).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="The web door's port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The web door's address.")
@click.option("--no-web", is_flag=True, help="Do not serve the web door.")
@json_option
@pass_ctx
def up(ctx: Ctx, jurisdictions: str | None, port: int, host: str, no_web: bool, as_json: bool) -> None:
    """Start the local broker if needed, then run the verification platform, the bureaus and the web door (as
    `mra serve`) until Ctrl-C. Submit requests in the browser, or from another terminal (`mra verify submit`,
    `mra employment start`)."""
    state = ctx.ensure_state_dir()
    if not ctx.bootstrap and not broker_status(state).running:
        info = start_broker(state)
        click.echo(f"started the local broker at {info.bootstrap} (stop it with `mra broker stop`)", err=True)
    runtime = ctx.runtime()
    registry = load_registry()
    codes = [j.strip() for j in jurisdictions.split(",")] if jurisdictions else sorted(registry.jurisdictions)
    for code in codes:
        registry.jurisdiction(code)
    platform = Platform(runtime.connect("mra-platform"), runtime.topics, state, registry=registry)
    bureaus = [open_bureau(runtime, j, registry=registry) for j in codes]
    stops = [platform.stop_event, *(b.processor.stop_event for b in bureaus)]
    runs = [platform.run, *(b.run for b in bureaus)]
    threads = [threading.Thread(target=run, name=f"mra-{i}", daemon=True) for i, run in enumerate(runs)]
    for t in threads:
        t.start()
    web = None
    if not no_web:
        from mra.web.server import WebServer

        web = WebServer(state, ctx.bootstrap, host, port)
        web.start()
        click.echo(f"web door at {web.address} (OpenAPI at {web.address}openapi.json)", err=True)
    click.echo(
        f"platform and bureaus {', '.join(codes)} running on {runtime.resolve_bootstrap()}; Ctrl-C to stop", err=True
    )
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.5)
    except KeyboardInterrupt:
        click.echo("stopping…", err=True)
    finally:
        if web is not None:
            web.stop()
        for s in stops:
            s.set()
        for t in threads:
            t.join(10)
        platform.close()
        for b in bureaus:
            b.close()
    emit({"stopped": True, "bureaus": codes}, as_json, "stopped")


COMMANDS: list[click.Command] = [up]
