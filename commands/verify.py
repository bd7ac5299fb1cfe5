"""``mra verify``: an employer's request to the verification platform (附件2), its status, and the public check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._output import _, shown_time, text_width
from mra.core.errors import MraError, ValidationFailed
from mra.core.hookspecs import PluginConfig
from mra.core.limits import json_too_large
from mra.core.plugins import load_registry
from mra.events.bus import PublishError
from mra.events.schemas import Event
from mra.i18n.terms import N_
from mra.services.platform import (
    PUBLISHER,
    check_code,
    load_settings,
    prepare,
    publish_submission,
    request_status,
    revoke_code,
)

__all__ = ["COMMANDS", "verify"]


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MraError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MraError(f"{path} is a directory, not a request file") from None
    except UnicodeDecodeError:
        raise MraError(f"{path} is not UTF-8 text") from None
    except OSError as e:
        raise MraError(f"{path} cannot be read: {e.strerror or e}") from None
    problem = json_too_large(text)
    if problem:
        raise MraError(f"{path} is not read: {problem}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MraError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None


def _publisher_error(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


@click.group("verify")
def verify() -> None:
    """Certificate verification (京人社事业发〔2025〕11号 附件2): submit, follow, check and revoke."""


@verify.command("submit")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The request: employer, holder and certificate, as JSON (see examples/request.json).",
)
@json_option
@pass_ctx
def submit(ctx: Ctx, path: Path, as_json: bool) -> None:
    """Submit a verification request; print its id, status and expected completion time.

    An invalid request is refused with every reason, and the refusal is recorded on the bus. Submitting the
    same file again gives the same request (and publishes it again if the first attempt could not).
    """
    raw = _read_json(path)
    state = ctx.ensure_state_dir()
    registry = load_registry(config=PluginConfig(state_dir=state))
    sub = prepare(raw, state_dir=state, registry=registry, settings=load_settings(state), now=datetime.now(UTC))
    problem, problem_code = "", 1
    try:
        runtime = ctx.runtime()
        transport = runtime.connect("mra-verify")
        try:
            publish_submission(sub, runtime.publisher(transport, PUBLISHER))
        finally:
            transport.close()
    except (MraError, PublishError) as e:
        problem = _publisher_error(e)
        problem_code = int(getattr(e, "exit_code", 1))
    data = sub.as_dict() | {"published": not problem}
    if sub.status == "refused":
        if as_json:
            emit(data, True)
        note = [f"(the refusal is kept here but could not be recorded on the bus: {problem})"] if problem else []
        raise ValidationFailed(f"request {sub.request_id} refused", [*sub.reasons, *note])
    if problem:
        error = MraError(
            f"request {sub.request_id} is accepted and kept here, but could not be published: {problem}. "
            "Submit the same file again to publish it."
        )
        error.exit_code = problem_code  # 75 when the cluster did not answer: trying again can help
        raise error

    def text(d: dict[str, Any]) -> str:
        again = " " + _("(submitted before)") if d["resubmitted"] else ""
        return "\n".join(
            [
                _("request {request_id}: {status}").format(request_id=d["request_id"], status=_status(d["status"]))
                + again,
                _field(_("entry"), d["entry_id"]),
                _field(_("expected by"), f"{shown_time(d['expected_by'])}  ({d['turnaround_source']})"),
            ]
        )

    emit(data, as_json, text)


_STATUSES = {
    "submitted": N_("submitted"),
    "accepted": N_("accepted"),
    "deferred": N_("deferred"),
    "verified": N_("verified"),
    "rejected": N_("rejected"),
    "refused": N_("refused"),
    "valid": N_("valid"),
    "revoked": N_("revoked"),
    "unknown": N_("unknown"),
    "mistyped": N_("mistyped"),
}


def _status(code: str) -> str:
    """A request's or a code's status for people; ``--json`` keeps the code."""
    return _(_STATUSES[code]) if code in _STATUSES else code


def _field(label: str, value: object) -> str:
    """One ``label  value`` line, labels aligned whatever their language."""
    return f"  {label}{' ' * max(1, 13 - text_width(label))}{value}"


def _status_text(d: dict[str, Any]) -> str:
    lines = [
        _("request {request_id}: {status}").format(request_id=d["request_id"], status=_status(d["status"]))
        + (" " + _("(code revoked)") if d.get("revoked") else "")
    ]

    def add(label: str, value: object) -> None:
        if value not in (None, "", [], 0):
            lines.append(_field(label, value))

    add(_("entry"), d.get("entry_id"))
    add(_("issuer"), d.get("issuer"))
    add(_("holder"), d.get("holder"))
    add(_("holder id"), d.get("holder_id"))
    add(_("employer"), d.get("employer"))
    expected = d.get("expected_by")
    add(_("expected by"), f"{shown_time(expected)}  ({d.get('turnaround_source')})" if expected else None)
    for r in d.get("reasons") or []:
        add(_("reason"), r)
    add(_("reason"), d.get("reason"))
    add(_("detail"), d.get("detail"))
    add(_("attempts"), d.get("attempts"))
    add(_("retry at"), shown_time(d.get("retry_at")))
    add(_("code"), d.get("verification_code"))
    add(_("verified at"), shown_time(d.get("verified_at")))
    add(_("revoked at"), shown_time(d.get("revoked_at")))
    add(_("note"), d.get("note"))
    lines.append(f"  {d['disclaimer']}")
    return "\n".join(lines)


@verify.command("status")
@click.argument("request_id")
@json_option
@pass_ctx
def status(ctx: Ctx, request_id: str, as_json: bool) -> None:
    """Where a request stands, as far as the platform has processed it."""
    emit(request_status(ctx.state_dir, request_id), as_json, _status_text)


def _check_text(d: dict[str, Any]) -> str:
    head = f"{d['code']}: {_status(d['status'])}" + (f" ({d['detail']})" if d.get("detail") else "")
    if d["status"] not in ("valid", "revoked"):
        return head
    name = f"{d['entry_id']} {d['entry_name']}" if d.get("entry_name") else d["entry_id"]
    expires = d["certificate_expires"] or _("does not expire")
    if d["certificate_expired"]:
        expires += " " + _("(expired)")
    return "\n".join(
        [
            head,
            _field(_("certificate"), name),
            _field(_("issuer"), d["issuer"]),
            _field(_("holder"), d["holder"] or _("(not held here)")),
            _field(
                _("verified"),
                _("{day} by the {platform} platform").format(day=d["verified_at"][:10], platform=d["verified_by"]),
            ),
            _field(_("expires"), expires),
            f"  {d['disclaimer']}",
        ]
    )


@verify.command("check")
@click.argument("code")
@json_option
@pass_ctx
def check(ctx: Ctx, code: str, as_json: bool) -> None:
    """Check a verification code: valid, revoked, unknown, or mistyped. Exits 0 only when valid."""
    result = check_code(ctx.state_dir, code, registry=load_registry())
    emit(result, as_json, _check_text)
    if result["status"] != "valid":
        raise SystemExit(1)  # the answer is printed; the status says it is not a valid code


@verify.command("revoke")
@click.argument("code")
@click.option("--reason", required=True, help="Why the issuer withdrew the certificate.")
@json_option
@pass_ctx
def revoke(ctx: Ctx, code: str, reason: str, as_json: bool) -> None:
    """Record that an issuer withdrew a verified certificate; its code then checks as revoked."""

    def publish(data: Event, event_id: str, at: datetime) -> None:
        runtime = ctx.runtime()
        try:
            transport = runtime.connect("mra-verify")
            try:
                publisher = runtime.publisher(transport, PUBLISHER)
                publisher.publish(data, id=event_id, time=at)
                publisher.flush()
            finally:
                transport.close()
        except PublishError as e:
            raise MraError(f"the revocation could not be published: {_publisher_error(e)}") from None

    result = revoke_code(ctx.state_dir, code, reason, datetime.now(UTC), publish)
    text = (
        f"{result['code']}: revoked (published; the platform applies it on its next run)"
        if result["published"]
        else f"{result['code']}: already revoked on {str(result['revoked_at'])[:10]}"
    )
    emit(result, as_json, text)


COMMANDS: list[click.Command] = [verify]
