"""``mra up``: the platform and every bureau, long-running, for trying things by hand.

It prints one line per thing a person waits for (requests accepted, verified, rejected; decisions for a
holder; dead letters), read from the log, and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from mra.commands._common import Ctx, json_option, pass_ctx, store_option
from mra.commands._output import _, shown_time, to_json
from mra.core.errors import MraError
from mra.core.plugins import load_registry
from mra.events.broker import broker_status, start_broker
from mra.i18n.terms import outcome_label
from mra.services.activity import Activity
from mra.services.bureaus import open_bureau
from mra.services.platform import Platform
from mra.services.platform.settings import keep_register

__all__ = ["COMMANDS", "activity_text"]

_ORDER = ("eligible", "conditional", "advisory", "ineligible", "withdrawn")


def activity_text(entry: dict[str, Any]) -> str:
    """One activity entry as a line for people, in the language in force."""
    at = shown_time(entry["at"])
    kind = entry["kind"]
    rid = entry.get("request_id", "")
    if kind == "request_accepted":
        what = _("request {request_id} accepted").format(request_id=rid)
    elif kind == "request_refused":
        what = _("request {request_id} refused: {reasons}").format(
            request_id=rid, reasons="; ".join(entry.get("reasons") or [])
        )
    elif kind == "request_verified":
        what = _("request {request_id} verified: code {code}, holder {holder_id}").format(
            request_id=rid, code=entry.get("verification_code", ""), holder_id=entry.get("holder_id", "")
        )
    elif kind == "request_rejected":
        what = _("request {request_id} rejected: {reason}").format(
            request_id=rid, reason=" ".join(x for x in (entry.get("reason"), entry.get("detail")) if x)
        )
    elif kind == "request_deferred":
        what = _("request {request_id} deferred: {detail}").format(request_id=rid, detail=entry.get("detail", ""))
    elif kind == "certificate_revoked":
        what = _("certificate {code} revoked: {reason}").format(
            code=entry.get("verification_code", ""), reason=entry.get("reason", "")
        )
    elif kind == "decisions":
        counts = entry.get("outcomes") or {}
        withdrawn = _("withdrawn")
        parts = [
            f"{counts[k]} {withdrawn if k == 'withdrawn' else outcome_label(k, _lang())}"
            for k in sorted(counts, key=lambda k: (_ORDER.index(k) if k in _ORDER else len(_ORDER), k))
        ]
        what = _("{jurisdiction} decided for holder {holder_id}: {counts}").format(
            jurisdiction=entry.get("jurisdiction", ""), holder_id=entry.get("holder_id", ""), counts=", ".join(parts)
        )
    elif kind == "dead_letter":
        what = _("dead letter from {topic}[{partition}]@{offset} ({consumer}): {reason}").format(
            topic=entry.get("topic", ""),
            partition=entry.get("partition", ""),
            offset=entry.get("offset", ""),
            consumer=entry.get("consumer", "") or "?",
            reason=entry.get("reason", ""),
        )
    else:
        what = kind
    return f"{at}  {what}"


def _lang() -> str:
    from mra.commands._output import current_language

    lang: str = current_language()
    return lang


def _guarded(name: str, run: Callable[[], object], stopping: threading.Event, errors: list[str]) -> Callable[[], None]:
    """A thread body that never ends in a traceback: an error after the stop was asked is the stop itself."""

    def body() -> None:
        try:
            run()
        except Exception as e:
            if not stopping.is_set():
                errors.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                stopping.set()

    return body


@click.command("up")
@click.option("--jurisdictions", help="Comma-separated bureaus to run (default: every loaded jurisdiction).")
@click.option(
    "--register",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The issuer register (JSON or CSV) the platform reads; kept in the platform's settings for later runs.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="The web door's port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The web door's address.")
@click.option("--no-web", is_flag=True, help="Do not serve the web door.")
@store_option
@json_option
@pass_ctx
def up(
    ctx: Ctx,
    jurisdictions: str | None,
    register: Path | None,
    port: int,
    host: str,
    no_web: bool,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Start the local broker if needed, then run the verification platform, the bureaus and the web door (as
    `mra serve`) until Ctrl-C or SIGTERM, printing one line per request accepted, verified or rejected, per
    holder's decisions and per dead letter. Submit requests in the browser, or from another terminal (`mra verify
    submit`, `mra employment start`)."""
    state = ctx.ensure_state_dir()
    if register is not None:
        keep_register(state, register)
    registry = load_registry()
    codes = sorted(registry.jurisdictions)
    if jurisdictions:
        codes = [j.strip() for j in jurisdictions.split(",") if j.strip()]
    for code in codes:
        registry.jurisdiction(code)
    if not ctx.bootstrap and not broker_status(state).running:
        info = start_broker(state)
        click.echo(
            _("started the local broker at {bootstrap} (stop it with `mra broker stop`)").format(
                bootstrap=info.bootstrap
            ),
            err=True,
        )
    if not ctx.bootstrap:
        ctx.provision_local()  # secure on first use: keys and a verifying trust store for a local deployment
    runtime = ctx.runtime()
    stopping = threading.Event()
    errors: list[str] = []

    def show(entry: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(entry, ensure_ascii=False, default=str))
        else:
            click.echo(activity_text(entry))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    platform: Platform | None = None
    bureaus: list[Any] = []
    activity: Activity | None = None
    threads: list[threading.Thread] = []
    web: Any = None
    try:
        activity = Activity(runtime.transport("mra-activity"), runtime.topics, show)
        platform = Platform(runtime.connect("mra-platform"), runtime.topics, state, registry=registry)
        bureaus = [open_bureau(runtime, j, registry=registry, store_url=store_url) for j in codes]
        stops = [platform.stop_event, activity.stop_event, *(b.processor.stop_event for b in bureaus)]
        runs: list[tuple[str, Callable[[], object]]] = [
            ("platform", platform.run),
            ("activity", activity.run),
            *((f"bureau {b.jurisdiction}", b.run) for b in bureaus),
        ]
        threads = [
            threading.Thread(target=_guarded(name, run, stopping, errors), name=f"mra-{name}", daemon=True)
            for name, run in runs
        ]
        for t in threads:
            t.start()
        if not no_web:
            from mra.web.server import WebServer

            web = WebServer(state, ctx.bootstrap, host, port)
            web.start()
            click.echo(
                _("web door at {address} (OpenAPI at {address}openapi.json)").format(address=web.address), err=True
            )
        click.echo(
            _("platform and bureaus {codes} running on {bootstrap}; Ctrl-C to stop").format(
                codes=", ".join(codes), bootstrap=runtime.resolve_bootstrap()
            ),
            err=True,
        )
        while not stopping.wait(0.5) and all(t.is_alive() for t in threads):
            pass
        click.echo(_("stopping…"), err=True)
        stopping.set()
        for s in stops:
            s.set()
        for t in threads:
            t.join(30)
    finally:
        stopping.set()
        if web is not None:
            try:
                web.stop()
            except Exception as e:
                errors.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
        for closer in [*(b.close for b in bureaus), *([platform.close] if platform else [])]:
            try:
                closer()
            except Exception as e:  # closing after a failure: say so, do not mask the first error
                errors.append(str(e).splitlines()[0] if str(e) else type(e).__name__)
        if activity is not None:
            with contextlib.suppress(Exception):
                activity.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if errors:
        raise MraError(_("stopped after an error: {errors}").format(errors="; ".join(errors)))
    if as_json:
        click.echo(to_json({"stopped": True, "bureaus": codes}))
    else:
        click.echo(_("stopped"), err=True)


COMMANDS: list[click.Command] = [up]
