"""``mra dlq``: inspect the records consumers set aside, and re-drive them once the cause is fixed."""

from __future__ import annotations

from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._output import _, shown_time, table
from mra.core.errors import MraError, ValidationFailed
from mra.events.bus import PublishError
from mra.services.dlq import DeadLetterEntry, RedriveLog, find, read_dead_letters, redrive

__all__ = ["COMMANDS", "dlq"]


def _entries(ctx: Ctx) -> tuple[list[DeadLetterEntry], Any]:
    runtime = ctx.runtime()
    try:
        transport = runtime.connect("mra-dlq")
        return read_dead_letters(transport, runtime.topics), transport
    except PublishError as e:
        raise MraError(str(e)) from None


def _cut(text: str, n: int) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


@click.group("dlq")
def dlq() -> None:
    """Dead letters: records a consumer could not read or apply, with the reason; re-drive them once fixed."""


@dlq.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include dead letters already re-driven.")
@json_option
@pass_ctx
def list_(ctx: Ctx, show_all: bool, as_json: bool) -> None:
    """Every dead letter: where it is (PARTITION:OFFSET), why, and the event it holds."""
    entries, transport = _entries(ctx)
    transport.close()
    log = RedriveLog.at(ctx.ensure_state_dir(), ctx.runtime().topics)
    try:
        rows = [e.summary() | {"redriven_at": log.when(e)} for e in entries]
    finally:
        log.close()
    if not show_all:
        rows = [r for r in rows if r["redriven_at"] is None]

    def text(data: list[dict[str, Any]]) -> str:
        if not data:
            return "no dead letters" + ("" if show_all else " waiting (--all shows those re-driven)")
        shown = [
            {
                "ref": r["ref"],
                "at": shown_time(r["dead_lettered_at"]),
                "from": f"{r['original_topic']}[{r['original_partition']}]@{r['original_offset']}",
                "type": _cut(r["type"] or "-", 44),
                "id": _cut(r["id"] or "-", 38),
                "reason": _cut(r["reason"], 100) + (" " + _("(re-driven)") if r["redriven_at"] else ""),
            }
            for r in data
        ]
        return table(
            shown,
            [("ref", "REF"), ("at", _("set aside")), ("from", _("from")), ("type", _("type")), ("id", "ID"),
             ("reason", _("reason"))],
            total=_("{n} dead letter(s)").format(n=len(shown)),
        )

    emit(rows, as_json, text)


@dlq.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def show(ctx: Ctx, ref: str, as_json: bool) -> None:
    """One dead letter (REF is PARTITION:OFFSET from `mra dlq list`): its headers, body and reason."""
    entries, transport = _entries(ctx)
    transport.close()
    entry = find(entries, ref)
    log = RedriveLog.at(ctx.ensure_state_dir(), ctx.runtime().topics)
    try:
        data = entry.details() | {"redriven_at": log.when(entry)}
    finally:
        log.close()

    def text(d: dict[str, Any]) -> str:
        lines = [
            f"dead letter {d['ref']} in {d['topic']}, set aside {d['dead_lettered_at'] or '(time unknown)'}"
            + (f" by {d['consumer']}" if d["consumer"] else ""),
            f"  reason    {d['reason']}",
            f"  from      {d['original_topic']}[{d['original_partition']}]@{d['original_offset']}",
            f"  event     {d['type'] or '-'}  id {d['id'] or '-'}  time {d['event_time'] or '-'}",
            f"  key       {d['key']}",
            f"  re-driven {d['redriven_at'] or 'no'}",
            "  headers",
            *[f"    {k}: {_cut(v, 200)}" for k, v in d["headers"]],
            f"  body ({d['size']} bytes" + (", only the start is kept here)" if d["truncated"] else ")"),
            *["    " + line for line in d["body"].splitlines()],
        ]
        return "\n".join(lines)

    emit(data, as_json, text)


@dlq.command("replay")
@click.argument("refs", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Re-drive every dead letter not re-driven yet.")
@click.option("--dry-run", is_flag=True, help="Say what would be re-driven; publish nothing.")
@json_option
@pass_ctx
def replay(ctx: Ctx, refs: tuple[str, ...], every: bool, dry_run: bool, as_json: bool) -> None:
    """Re-publish dead letters' original records to their original topics (REF... or --all), once each.

    Consumers dedupe by event id: those that applied an event skip it, the one that set it aside applies it.
    """
    if bool(refs) == every:
        raise ValidationFailed("name the dead letters to re-drive (PARTITION:OFFSET ...) or pass --all, not both")
    entries, transport = _entries(ctx)
    runtime = ctx.runtime()
    log = RedriveLog.at(ctx.ensure_state_dir(), runtime.topics)
    try:
        chosen = entries if every else [find(entries, r) for r in dict.fromkeys(refs)]
        try:
            results = redrive(transport, runtime.topics, chosen, log, dry_run=dry_run)
        except PublishError as e:
            raise MraError(f"nothing re-driven: {e}") from None
    finally:
        log.close()
        transport.close()
    data = {"dry_run": dry_run, "results": [r.as_dict() for r in results]}

    def text(d: dict[str, Any]) -> str:
        if not d["results"]:
            return "no dead letters to re-drive"
        return "\n".join(
            f"{r['ref']:<9} {r['status']:<14} {r['type'] or '-'} {r['id'] or '-'}: {r['detail']}" for r in d["results"]
        )

    emit(data, as_json, text)
    if any(r.status == "refused" for r in results):
        raise MraError("some dead letters cannot be re-driven (see above)")


COMMANDS: list[click.Command] = [dlq]
