"""``mra audit``: a holder's trail, a jurisdiction's decisions, and tamper evidence, all read from the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx
from mra.commands._output import _, shown_time, working
from mra.core.plugins import load_registry
from mra.services.audit import (
    AUDITED_TOPICS,
    complete_view,
    export_columns,
    export_decisions,
    resolve_topics,
    trail,
    verify,
    write_export,
)

__all__ = ["COMMANDS"]

TAMPERING_EXIT = 4
"""Exit status when ``audit verify`` finds evidence of tampering."""

_timeout = click.option(
    "--timeout", type=float, default=600, show_default=True, help="Give up after this many seconds."
)


@click.group()
def audit() -> None:
    """Audit from the log: trails, decision exports, and the publishers' hash chains."""


@audit.command("trail")
@click.argument("holder_id")
@_timeout
@json_option
@pass_ctx
def audit_trail(ctx: Ctx, holder_id: str, timeout: float, as_json: bool) -> None:
    """Every event about HOLDER_ID across the topics, in event-time order, with where it stands in the log, the
    decisions made and the clause each rests on (catalogue events only where they touch the holder's rows)."""
    runtime = ctx.runtime()
    transport = runtime.connect(client_id="mra-audit")
    try:
        with working(_("reading the log"), quiet=as_json):
            data = trail(transport, runtime.topics, holder_id, timeout=timeout)
    finally:
        transport.close()

    def text(d: dict[str, Any]) -> str:
        rows = f", rows {', '.join(d['entries'])}" if d["entries"] else ""
        lines = [f"holder {holder_id}: {len(d['events'])} events{rows}"]
        for e in d["events"]:
            where = f"{e['topic']}[{e['partition']}]@{e['offset']}"
            lines.append(f"  {shown_time(e['time'])}  {where:<20} {e['summary']}")
            for x in e["decisions"]:
                if x["outcome"] == "ineligible" and x["reasons"]:
                    lines.append(f"  {'':<20}  {'':<20}   {x['code']}: because {'; '.join(x['reasons'])}")
            if e["copies"]:
                lines.append(f"  {'':<20}  {'':<20}   also at {', '.join(e['copies'])}")
        lines.append(f"standing decisions ({len(d['standing'])}):")
        lines += [
            f"  {x['jurisdiction']} {x['code']} on {x['entry_id']}: {x['outcome']}, under {x['clause']}"
            for x in d["standing"]
        ]
        return "\n".join(lines)

    emit(data, as_json, text)


@audit.command("export")
@jurisdiction_option()
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write: FILE.jsonl (JSON Lines, English field codes) or FILE.csv (UTF-8 with BOM, Chinese "
    "headers; see docs/audit.md).",
)
@_timeout
@json_option
@pass_ctx
def audit_export(ctx: Ctx, jurisdiction: str, to: Path, timeout: float, as_json: bool) -> None:
    """The jurisdiction's decisions, active and withdrawn, from the benefits topic: reasons, clause, inputs,
    edition and rule version of each."""
    load_registry().jurisdiction(jurisdiction)
    runtime = ctx.runtime()
    transport = runtime.connect(client_id="mra-audit")
    try:
        rows = export_decisions(transport, runtime.topics, jurisdiction, timeout=timeout)
    finally:
        transport.close()
    fmt = write_export(rows, to)
    data: dict[str, Any] = {
        "jurisdiction": jurisdiction,
        "to": str(to),
        "format": fmt,
        "decisions": len(rows),
        "active": sum(r["status"] == "active" for r in rows),
        "withdrawn": sum(r["status"] == "withdrawn" for r in rows),
    }
    if fmt == "csv":
        data["columns"] = [{"code": code, "header": header} for code, header in export_columns(rows)]
    emit(
        data,
        as_json,
        lambda d: f"wrote {d['decisions']} {jurisdiction} decisions ({d['active']} active, {d['withdrawn']} withdrawn) "
        f"to {d['to']} as {d['format']}",
    )


@audit.command("verify")
@click.option(
    "--topic",
    "topic_names",
    multiple=True,
    help=f"A topic to verify, logical ({', '.join(AUDITED_TOPICS)}) or physical (repeatable; default: all of them).",
)
@_timeout
@json_option
@pass_ctx
def audit_verify(ctx: Ctx, topic_names: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Walk the topics from the beginning to the end and check the publishers' stamps: every content hash, and
    every epoch's chain (seq 0, 1, 2, … each naming the previous one's hash). Exit status 4 on evidence of
    tampering; a redelivery (same id and content) is reported, not counted as tampering."""
    runtime = ctx.runtime()
    transport = runtime.connect(client_id="mra-audit")
    try:
        names = resolve_topics(transport, runtime.topics, topic_names)
        from mra.services.keys import load_trust

        trust = load_trust(ctx.state_dir)
        with working(_("walking the topics"), quiet=as_json):
            result = verify(transport, names, complete=complete_view(names), timeout=timeout, trust=trust)
    finally:
        transport.close()
    data = result.as_dict()

    def text(d: dict[str, Any]) -> str:
        bad = d["tampering"]
        lines = [
            f"verified {d['records']} records ({d['stamped']} stamped) in {', '.join(d['topics'])}: "
            f"{d['epochs']} publisher epoch(s) of {len(d['publishers'])} publisher(s)",
            "no evidence of tampering" if not bad else f"{bad} finding(s) of tampering",
        ]
        if not d["complete"]:
            lines.append("  (not every event topic was read: a gap may be an event on another topic)")
        for f in d["findings"]:
            mark = "TAMPERING" if f["tampering"] else "note"
            lines.append(f"  {mark:<9} {f['kind']:<14} {f['where']}: {f['detail']}")
        return "\n".join(lines)

    emit(data, as_json, text)
    if result.tampering:
        raise SystemExit(TAMPERING_EXIT)


COMMANDS: list[click.Command] = [audit]
