"""``mra broker``: the local development broker (Tansu, memory storage, loopback only)."""

from __future__ import annotations

import time

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.events.broker import broker_status, info_dict, start_broker, stop_broker

__all__ = ["COMMANDS"]


@click.group()
def broker() -> None:
    """Start, stop and inspect the local broker (for development; production uses --bootstrap)."""


@broker.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
@json_option
@pass_ctx
def start(ctx: Ctx, port: int | None, as_json: bool) -> None:
    """Start the local broker, or report the one already running."""
    info = start_broker(ctx.ensure_state_dir(), port=port)
    ctx.runtime().connect()  # topics exist from the start
    emit(info_dict(info), as_json, f"broker running at {info.bootstrap} (pid {info.pid})")


@broker.command()
@json_option
@pass_ctx
def stop(ctx: Ctx, as_json: bool) -> None:
    """Stop the local broker. Its memory storage goes with it."""
    stopped = stop_broker(ctx.state_dir)
    emit({"stopped": stopped, "running": False}, as_json, "broker stopped" if stopped else "no broker was running")


@broker.command()
@json_option
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Say whether the local broker runs, where, and for how long."""
    info = broker_status(ctx.state_dir)
    data = info_dict(info)
    if info.running and info.started_at:
        data["uptime_s"] = round(time.time() - info.started_at, 1)
    text = f"running at {info.bootstrap} (pid {info.pid})" if info.running else "not running"
    emit(data, as_json, text)


COMMANDS: list[click.Command] = [broker]
