"""``mra report``: a clerks' report of a jurisdiction's decisions, as Excel, PDF, HTML or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx
from mra.commands._output import _
from mra.core.errors import ValidationFailed
from mra.core.plugins import load_registry
from mra.i18n import normalize
from mra.services.catalogues import imported_editions
from mra.services.report import aggregate, load_records
from mra.services.report_files import FORMATS, write_report

__all__ = ["COMMANDS"]

_DAY = click.DateTime(["%Y-%m-%d"])


@click.command("report")
@jurisdiction_option()
@click.option("--from", "start", type=_DAY, help="First day counted (YYYY-MM-DD, China Standard Time).")
@click.option("--until", "until", type=_DAY, help="Last day counted, included.")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write: FILE.xlsx, FILE.pdf, FILE.html or FILE.csv (UTF-8 with BOM).",
)
@click.option("--lang", "report_lang", type=click.Choice(["zh_CN", "en"]),
              help="Language of headers, labels and charts. Default: mra's own --lang where given, else zh_CN.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Give up after this many seconds.")
@json_option
@pass_ctx
def report(
    ctx: Ctx,
    jurisdiction: str,
    start: datetime | None,
    until: datetime | None,
    to: Path,
    report_lang: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Count the jurisdiction's benefit decisions by catalogue list, field, holder category and month, by
    outcome, with charts: read from the log (benefits and holders topics), written for a clerk."""
    root = click.get_current_context().find_root().params.get("lang")
    lang = report_lang or (normalize(root) if root else None) or "zh_CN"  # a document for a Chinese bureau
    if to.suffix.lower() not in FORMATS:
        raise ValidationFailed(f"--to {to}: give a {', '.join(FORMATS)} file")
    registry = load_registry()
    info = registry.jurisdiction(jurisdiction)
    runtime = ctx.runtime()
    transport = runtime.connect(client_id="mra-report")
    try:
        records = load_records(transport, runtime.topics, registry, jurisdiction,
                               editions=imported_editions(runtime.state_dir), timeout=timeout)
    finally:
        transport.close()
    result = aggregate(
        records,
        jurisdiction=jurisdiction,
        jurisdiction_name=info.name_zh if lang.startswith("zh") else info.name_en,
        start=start.date() if start else None,
        until=until.date() if until else None,
        lang=lang,
    )
    fmt = write_report(result, to, lang=lang, generated=datetime.now(UTC),
                       source=f"{runtime.topics.name('benefits')}, {runtime.topics.name('holders')}")
    data: dict[str, Any] = {"to": str(to), "format": fmt, **result.as_dict()}

    def text(d: dict[str, Any]) -> str:
        t = d["totals"]
        return _(
            "wrote {jurisdiction}'s report to {to} as {format}: {total} decisions ({eligible} eligible, "
            "{conditional} conditional, {advisory} advisory, {ineligible} ineligible; {withdrawn} withdrawn since) "
            "for {holders} holders"
        ).format(jurisdiction=jurisdiction, to=d["to"], format=d["format"], **t)

    emit(data, as_json, text)


COMMANDS: list[click.Command] = [report]
