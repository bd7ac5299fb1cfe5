"""``mra platform``: run the verification platform service (附件2) and see where it stands."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._output import _, shown_time, table
from mra.core.errors import MraError
from mra.events.bus import PublishError
from mra.services.platform import SETTINGS, Platform, PlatformPaths, PlatformStore, load_settings
from mra.services.platform.settings import keep_register

__all__ = ["COMMANDS", "platform"]


@click.group("platform")
def platform() -> None:
    """The verification platform service: consume requests, ask issuers, publish results."""


@platform.command("run")
@click.option(
    "--until-idle", is_flag=True, help="Stop once every request has been handled and nothing is left to read."
)
@click.option(
    "--register",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The issuer register (JSON or CSV) mra's own connector reads; kept in the platform's settings for later "
    "runs. Default: the settings file's, else platform/issuer-register.json in the state dir.",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--rebuild", is_flag=True, help="Delete the read model first and rebuild it from the topic.")
@json_option
@pass_ctx
def run(ctx: Ctx, until_idle: bool, register: Path | None, timeout: float | None, rebuild: bool, as_json: bool) -> None:
    """Run the platform. Deferred requests are asked again on every run, and when due while it runs."""
    state = ctx.ensure_state_dir()
    if register is not None:
        keep_register(state, register)
    settings = load_settings(state)
    runtime = ctx.runtime()
    try:
        transport = runtime.connect("mra-platform")
    except PublishError as e:
        raise MraError(str(e)) from None
    service: Platform | None = None
    try:
        if rebuild:
            service = Platform(transport, runtime.topics, state, settings=settings)
            service.relay()  # nothing written but unpublished is lost with the read model
            service.close()
            PlatformPaths(state).drop_read_model()
        service = Platform(transport, runtime.topics, state, settings=settings)

        def stop(signum: int, frame: FrameType | None) -> None:
            assert service is not None
            service.stop()

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            stats = service.run(until_idle=until_idle, timeout=timeout)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except PublishError as e:
        raise MraError(f"the platform could not publish: {e}") from None
    finally:
        if service is not None:
            service.close()
        transport.close()
    data = {k: v for k, v in vars(stats).items()}
    text = (
        f"read {stats.consumed} event(s); asked {stats.asked} issuer(s): {stats.verified} verified, "
        f"{stats.rejected} rejected, {stats.deferred} deferred; {stats.open} request(s) open"
        + "".join(f"\n  {e}" for e in stats.errors)
    )
    emit(data, as_json, text)
    if stats.errors:
        raise MraError("the platform stopped before it was idle")


@platform.command("status")
@json_option
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """What the platform's read model holds: requests by status, open and deferred ones, unpublished results."""
    store = PlatformStore(PlatformPaths(ctx.ensure_state_dir()).read_model)
    try:
        open_rows = store.open_requests()
        data: dict[str, Any] = {
            "requests": store.counts(),
            "revoked_codes": store.revoked_count(),
            "open": [
                {
                    "request_id": r["request_id"],
                    "status": r["status"],
                    "attempts": r["attempts"],
                    "retry_at": r["retry_at"],
                    "detail": r["detail"],
                }
                for r in open_rows
            ],
            "unpublished": len(store.unsent()),
            "events_applied": store.applied_count(),
        }
    finally:
        store.close()

    def text(d: dict[str, Any]) -> str:
        counts = [{"status": k, "n": v} for k, v in sorted(d["requests"].items())]
        lines = [
            table(
                counts,
                [("status", _("requests")), ("n", _("count"))],
                total=_("{n} request(s); revoked codes: {revoked}; events read: {events}").format(
                    n=sum(c["n"] for c in counts), revoked=d["revoked_codes"], events=d["events_applied"]
                ),
            )
        ]
        if d["open"]:
            rows = [
                {
                    "request_id": r["request_id"],
                    "status": r["status"],
                    "attempts": r["attempts"],
                    "retry_at": shown_time(r["retry_at"]),
                    "detail": r["detail"] or "",
                }
                for r in d["open"]
            ]
            lines += [
                "",
                table(
                    rows,
                    [("request_id", _("open request")), ("status", _("status")), ("attempts", _("attempts")),
                     ("retry_at", _("retry at")), ("detail", _("detail"))],
                    sort=lambda r: (r["retry_at"], r["request_id"]),
                ),
            ]
        if d["unpublished"]:
            lines.append(
                _("{n} result(s) not yet published: `mra platform run` publishes them").format(n=d["unpublished"])
            )
        return "\n".join(lines)

    emit(data, as_json, text)


@platform.command("settings")
@json_option
@pass_ctx
def settings_(ctx: Ctx, as_json: bool) -> None:
    """The platform's settings: the notice publishes no turnaround or code format, so these are mra's defaults."""
    current = load_settings(ctx.state_dir)
    rows = [
        {"key": s.key, "default": s.default, "value": current.value(s.key), "description": s.description, "why": s.why}
        for s in SETTINGS
    ]
    settings_file = PlatformPaths(ctx.state_dir).settings
    data = {
        "settings": rows,
        "file": str(settings_file),
        "file_exists": settings_file.exists(),
        "register": str(current.issuer_register),
        "register_exists": bool(current.issuer_register and current.issuer_register.is_file()),
    }

    def text(d: dict[str, Any]) -> str:
        lines = [f"{r['key']} = {r['value']}\n    {r['description']}\n    why: {r['why']}" for r in d["settings"]]
        file_note = "" if d["file_exists"] else " (not written yet: every value is mra's default)"
        register_note = (
            ""
            if d["register_exists"]
            else " (no such file: give one with `mra platform run --register FILE` or `mra up --register FILE`)"
        )
        return "\n".join(
            [*lines, f"settings file: {d['file']}{file_note}", f"issuer register: {d['register']}{register_note}"]
        )

    emit(data, as_json, text)


COMMANDS: list[click.Command] = [platform]
