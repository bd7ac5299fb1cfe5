"""``mra broker``: the local broker on loopback: Tansu (memory storage, the default) or Apache Kafka (durable)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._output import shown_time
from mra.events.broker import ENGINES, BrokerInfo, broker_status, info_dict, log_record_count, start_broker, stop_broker

__all__ = ["COMMANDS"]


@click.group()
def broker() -> None:
    """Start, stop and inspect the local broker (for development; production uses --bootstrap)."""


TANSU_NOTE = "Tansu keeps its log in memory: `mra broker stop` loses every topic (use --engine kafka for a durable log)"


def _data(info: BrokerInfo) -> dict[str, object]:
    """What ``--json`` says of a broker: times as ISO 8601 (the user's zone), never epoch seconds."""
    data = info_dict(info)
    if isinstance(data.get("started_at"), int | float):
        data["started_at"] = shown_time(datetime.fromtimestamp(float(str(data["started_at"])), UTC))
    return data


def _describe(info: BrokerInfo) -> str:
    if info.kind == "kafka":
        nodes = len(info.brokers or ())
        return (
            f"Apache Kafka ({nodes} broker{'s' if nodes != 1 else ''}) running at {info.bootstrap}; "
            f"its log is kept under the state directory (logs: {info.log})"
        )
    return f"broker running at {info.bootstrap} (pid {info.pid}). {TANSU_NOTE}"


@broker.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="tansu (in memory, instant; the default) or kafka (Apache Kafka in KRaft mode, log on disk). "
    "A state directory that holds a Kafka log starts Kafka again.",
)
@click.option(
    "--brokers",
    type=click.IntRange(1, 9),
    default=None,
    help="Kafka only: number of brokers (1: durable single machine; 3: replication factor 3, min.insync.replicas=2).",
)
@json_option
@pass_ctx
def start(ctx: Ctx, port: int | None, engine: str | None, brokers: int | None, as_json: bool) -> None:
    """Start the local broker, or report the one already running."""
    info = start_broker(ctx.ensure_state_dir(), port=port, engine=engine, brokers=brokers)
    ctx.runtime().connect()  # topics exist from the start
    made = ctx.provision_local()
    data = _data(info) | {"keys_generated": made["generated"] if made else []}
    if info.kind == "tansu":
        data["note"] = TANSU_NOTE
    emit(data, as_json, _describe(info))


@broker.command()
@json_option
@pass_ctx
def stop(ctx: Ctx, as_json: bool) -> None:
    """Stop the local broker. Tansu's memory storage goes with it; Kafka's log stays in the state directory."""
    info = broker_status(ctx.state_dir)
    lost = log_record_count(info.bootstrap) if info.running and info.kind == "tansu" and info.bootstrap else None
    stopped = stop_broker(ctx.state_dir)
    data: dict[str, object] = {"stopped": stopped, "running": False, "kind": info.kind}
    if lost:
        data["records_lost"] = lost
        click.echo(f"warning: Tansu's log held {lost} record(s) in memory; they are lost", err=True)
    emit(data, as_json, "broker stopped" if stopped else "no broker was running")


@broker.command()
@json_option
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Say whether the local broker runs, where, and for how long."""
    info = broker_status(ctx.state_dir)
    data = _data(info)
    since = ""
    if info.running and info.started_at:
        data["uptime_s"] = round(time.time() - info.started_at, 1)
        since = f" since {data['started_at']}"
    if not info.running:
        text = "not running"
    elif info.kind == "kafka":
        lines = [f"Apache Kafka running at {info.bootstrap}{since}"]
        for b in info.brokers or ():
            state = f"running (pid {b['pid']})" if b["running"] else "down"
            lines.append(f"  broker {b['node_id']} {b['bootstrap']}: {state}")
        text = "\n".join(lines)
    else:
        text = f"running at {info.bootstrap} (pid {info.pid}){since}; Tansu, log in memory"
    emit(data, as_json, text)


COMMANDS: list[click.Command] = [broker]
