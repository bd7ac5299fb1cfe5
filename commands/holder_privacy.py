"""``mra holder id`` and ``mra holder erase``: a holder's pseudonym, and the erasure of their personal data.

Both join the ``holder`` group of :mod:`mra.commands.bureau`; importing this module (it is listed in ``MODULES``)
adds them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._input import COUNTRY
from mra.commands.bureau import holder
from mra.core.errors import MraError, ValidationFailed
from mra.core.models import holder_category
from mra.events.bus import PublishError
from mra.services.platform import DOCUMENT_TYPES, PUBLISHER
from mra.services.privacy import DEFAULT_REASON, erase_holder, holder_pseudonym, read_pseudonym_key

__all__ = ["COMMANDS"]


@holder.command("id")
@click.option("--document-type", required=True, type=click.Choice(list(DOCUMENT_TYPES)), help="Identity document.")
@click.option("--document-number", required=True, help="The document's number.")
@click.option(
    "--nationality", required=True, type=COUNTRY, help="ISO country code or country name: CN, HK, MO, TW, GB, 英国, …"
)
@json_option
@pass_ctx
def holder_id(ctx: Ctx, document_type: str, document_number: str, nationality: str, as_json: bool) -> None:
    """The holder id the platform gives this identity document (needs the platform's key in the state dir)."""
    try:
        holder_category(nationality)
    except ValueError:
        raise ValidationFailed("--nationality must be an ISO country code such as CN, HK, MO, TW, GB") from None
    if not document_number.strip():
        raise ValidationFailed("--document-number is empty")
    ident = holder_pseudonym(read_pseudonym_key(ctx.state_dir), document_type, document_number, nationality)
    emit({"holder_id": ident}, as_json, ident)


@holder.command("erase")
@click.argument("holder_id")
@click.option(
    "--reason", default=DEFAULT_REASON, show_default=True, help="Why (recorded on the log: nothing personal)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def holder_erase(ctx: Ctx, holder_id: str, reason: str, yes: bool, as_json: bool) -> None:
    """Destroy the holder's data key: their sealed personal fields read as erased everywhere, for good.

    Decisions already recorded stand; no new decision is made for the holder. Irreversible (except by restoring a
    key backup taken before, which keeps this erasure when restored into this state dir).
    """
    if not yes:
        click.confirm(f"Erase the personal data of {holder_id}? This cannot be undone", abort=True, err=True)
    runtime = ctx.runtime()
    try:
        transport = runtime.connect("mra-erase")
    except PublishError as e:
        raise MraError(str(e)) from None
    try:
        publisher = runtime.publisher(transport, PUBLISHER)
        result = erase_holder(
            ctx.state_dir,
            holder_id.strip(),
            transport=transport,
            topics=runtime.topics,
            publisher=publisher,
            now=datetime.now(UTC),
            reason=reason.strip() or DEFAULT_REASON,
        )
    except PublishError as e:
        raise MraError(
            f"{holder_id}'s data key is destroyed, but the erasure could not be published: {e}. "
            "Run the same command again to publish it."
        ) from None
    finally:
        transport.close()
    again = " (already erased; the erasure event was published again)" if result["already_erased"] else ""
    emit(
        result,
        as_json,
        f"{holder_id} erased at {result['erased_at']}{again}; {result['decisions_kept']} recorded decision(s) kept",
    )


COMMANDS: list[click.Command] = []
