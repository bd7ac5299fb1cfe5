"""Writing a clerks' report (:class:`mra.services.report.Report`) as Excel, PDF, HTML or CSV, with its charts.

Charts are drawn by matplotlib with a font that has Chinese glyphs (Debian's ``fonts-noto-cjk``); Excel files get
native Excel bar charts over their own cells, so a clerk can restyle them. The CSV carries a byte-order mark so
that Excel reads it as UTF-8.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from mra.core.errors import MraError, ValidationFailed
from mra.services.labels import CATEGORY, DIMENSIONS, EXPORT_HEADERS, OUTCOME, REPORT, STATUS, label
from mra.services.report import CST, DIMENSION_ORDER, OUTCOMES, Report, Row

__all__ = ["FORMATS", "chart_pngs", "table_headers", "write_report"]

FORMATS = (".xlsx", ".pdf", ".html", ".csv")

_COLOURS = {"eligible": "#2e7d32", "conditional": "#f9a825", "advisory": "#1565c0", "ineligible": "#9e9e9e"}
_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei",
                 "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")


def table_headers(dimension: str, lang: str) -> list[str]:
    """The header of a dimension's table: the dimension, each outcome, total, withdrawn, holders."""
    return [
        label(DIMENSIONS, dimension, lang),
        *(label(OUTCOME, o, lang) for o in OUTCOMES),
        label(REPORT, "total", lang),
        label(REPORT, "withdrawn", lang),
        label(REPORT, "holders", lang),
    ]


def _cells(row: Row) -> list[str | int]:
    return [row.label, *(row.outcomes[o] for o in OUTCOMES), row.total, row.withdrawn, row.holders]


def _title(report: Report, lang: str) -> str:
    return label(REPORT, "title", lang).format(jurisdiction=report.jurisdiction_name)


def _period(report: Report, lang: str) -> str:
    start = report.start.isoformat() if report.start else label(REPORT, "from_start", lang)
    until = report.until.isoformat() if report.until else label(REPORT, "to_end", lang)
    return f"{start} – {until}"


def _stamp(t: datetime) -> str:
    return t.astimezone(CST).replace(microsecond=0).isoformat()


def _meta(report: Report, lang: str, generated: datetime, source: str) -> list[tuple[str, str | int]]:
    return [
        (label(REPORT, "period", lang), _period(report, lang)),
        (label(REPORT, "generated", lang), _stamp(generated)),
        (label(REPORT, "source", lang), source),
        (label(REPORT, "decisions", lang), report.totals.total),
        (label(REPORT, "withdrawn", lang), report.totals.withdrawn),
        (label(REPORT, "holders", lang), report.totals.holders),
    ]


# --- charts -----------------------------------------------------------------------------------------------------


@cache
def _font_family() -> str:
    """A font family with Chinese glyphs, registering the system's CJK fonts with matplotlib if its cache
    predates them; a clear error where there is none."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in known:
            return family
    for path in font_manager.findSystemFonts():
        if any(word in Path(path).name for word in ("CJK", "wqy", "DroidSansFallback", "uming")):
            font_manager.fontManager.addfont(path)
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in known:
            return family
    raise MraError("the report's charts need a font with Chinese glyphs: install Debian's fonts-noto-cjk "
                   "(apt-get install fonts-noto-cjk)")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["font.family"] = [_font_family()]
    matplotlib.rcParams["axes.unicode_minus"] = False
    matplotlib.rcParams["pdf.fonttype"] = 3
    return plt


def _chart(plt: Any, rows: Sequence[Row], dimension: str, lang: str) -> Any:
    """A horizontal bar per row, stacked by outcome."""
    height = max(3.0, 0.45 * len(rows) + 2.0)
    fig, ax = plt.subplots(figsize=(8.0, height), dpi=110)
    labels = [r.label for r in rows]
    left = [0] * len(rows)
    for o in OUTCOMES:
        values = [r.outcomes[o] for r in rows]
        ax.barh(labels, values, left=left, color=_COLOURS[o], label=label(OUTCOME, o, lang))
        left = [a + b for a, b in zip(left, values, strict=True)]
    if not rows:
        ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)
    ax.invert_yaxis()
    ax.set_xlabel(label(REPORT, "decisions", lang))
    ax.set_title(f"{label(DIMENSIONS, dimension, lang)} · {label(REPORT, 'decisions', lang)}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(rows) < 4 else -0.12), ncol=len(OUTCOMES),
              fontsize=8, frameon=False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def chart_pngs(report: Report, lang: str = "zh_CN") -> dict[str, bytes]:
    """One PNG bar chart per dimension, by outcome."""
    plt = _pyplot()
    out: dict[str, bytes] = {}
    for dimension in DIMENSION_ORDER:
        fig = _chart(plt, report.tables[dimension], dimension, lang)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        out[dimension] = buf.getvalue()
    return out


# --- formats ------------------------------------------------------------------------------------------------------


def _csv(report: Report, path: Path, lang: str) -> None:
    """One table: the total first, then each dimension's rows, the dimension named in the first column."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow([label(REPORT, "dimension", lang), label(REPORT, "key", lang), *table_headers("list", lang)[1:]])
        w.writerow([label(REPORT, "total", lang), *_cells(report.totals)])
        for dimension in DIMENSION_ORDER:
            for row in report.tables[dimension]:
                w.writerow([label(DIMENSIONS, dimension, lang), *_cells(row)])


def _xlsx(report: Report, path: Path, lang: str, generated: datetime, source: str) -> None:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = label(REPORT, "summary", lang)
    ws.append([_title(report, lang)])
    ws["A1"].font = Font(bold=True, size=14)
    for name, value in _meta(report, lang, generated, source):
        ws.append([name, value])
    ws.append([])
    ws.append([label(REPORT, "key", lang), *table_headers("list", lang)[1:]])
    ws.append([label(REPORT, "total", lang), *_cells(report.totals)[1:]])
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 28
    for dimension in DIMENSION_ORDER:
        sheet = wb.create_sheet(label(DIMENSIONS, dimension, lang))
        sheet.append(table_headers(dimension, lang))
        rows = report.tables[dimension]
        for row in rows:
            sheet.append(_cells(row))
        sheet.append([label(REPORT, "total", lang), *_cells(report.totals)[1:]])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
        sheet.column_dimensions["A"].width = 36
        if dimension == "field":
            sheet.cell(row=sheet.max_row + 2, column=1, value=label(REPORT, "field_note", lang))
        if rows:
            chart = BarChart()
            chart.type = "bar"
            chart.grouping = "stacked"
            chart.overlap = 100
            chart.title = f"{label(DIMENSIONS, dimension, lang)} · {label(REPORT, 'decisions', lang)}"
            data = Reference(sheet, min_col=2, max_col=1 + len(OUTCOMES), min_row=1, max_row=1 + len(rows))
            chart.add_data(data, titles_from_data=True)
            chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=1 + len(rows)))
            chart.height = max(7.5, 0.8 * len(rows) + 3)
            chart.width = 18
            sheet.add_chart(chart, "J2")
    details = wb.create_sheet(label(REPORT, "decisions_sheet", lang))
    details.append([
        *(label(EXPORT_HEADERS, k, lang) for k in ("decision_id", "holder_id", "code", "outcome", "status",
                                                    "entry_id")),
        *(label(DIMENSIONS, d, lang) for d in ("list", "field", "category")),
        label(EXPORT_HEADERS, "decided_at", lang),
    ])
    for r in report.records:
        details.append([
            r.decision_id, r.holder_id, r.code, label(OUTCOME, r.outcome, lang), label(STATUS, r.status, lang),
            r.entry_id, r.list, "、".join(r.fields), label(CATEGORY, r.category, lang), _stamp(r.decided_at),
        ])
    wb.save(path)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str | int]], total: Sequence[str | int]) -> str:
    def tr(cells: Sequence[str | int], tag: str = "td") -> str:
        return "<tr>" + "".join(
            f'<{tag} class="n">{c}</{tag}>' if isinstance(c, int) else f"<{tag}>{html.escape(str(c))}</{tag}>"
            for c in cells
        ) + "</tr>"

    body = "".join(tr(r) for r in rows)
    return (f"<table><thead>{tr(headers, 'th')}</thead><tbody>{body}</tbody>"
            f'<tfoot>{tr(total, "th")}</tfoot></table>')


def _html(report: Report, path: Path, lang: str, generated: datetime, source: str, charts: dict[str, bytes]) -> None:
    title = html.escape(_title(report, lang))
    meta = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in _meta(report, lang, generated, source))
    total = [label(REPORT, "total", lang), *_cells(report.totals)[1:]]
    sections = []
    for dimension in DIMENSION_ORDER:
        name = html.escape(label(DIMENSIONS, dimension, lang))
        table = _html_table(table_headers(dimension, lang), [_cells(r) for r in report.tables[dimension]], total)
        note = f'<p class="note">{html.escape(label(REPORT, "field_note", lang))}</p>' if dimension == "field" else ""
        png = base64.b64encode(charts[dimension]).decode()
        sections.append(
            f'<section id="{dimension}"><h2>{name}</h2>{table}{note}'
            f'<img alt="{name}" src="data:image/png;base64,{png}"></section>'
        )
    page = f"""<!doctype html>
<html lang="{'zh-CN' if lang.startswith('zh') else 'en'}">
<head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
thead th, tfoot th {{ background: #f0f0f0; }}
img {{ max-width: 100%; }}
.note {{ font-size: 0.9em; color: #555; }}
</style></head>
<body>
<h1>{title}</h1>
<table class="meta">{meta}</table>
{''.join(sections)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def _pdf(report: Report, path: Path, lang: str, generated: datetime, source: str) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    plt = _pyplot()
    per_page = 22
    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.text(0.08, 0.94, _title(report, lang), fontsize=16, weight="bold")
        y = 0.9
        for name, value in _meta(report, lang, generated, source):
            fig.text(0.08, y, f"{name}: {value}", fontsize=10)
            y -= 0.025
        _pdf_table(fig, [0.08, 0.45, 0.84, 0.22], table_headers("list", lang),
                   [_cells(r) for r in report.tables["list"]], report, label(REPORT, "total", lang))
        pdf.savefig(fig)
        plt.close(fig)
        for dimension in DIMENSION_ORDER:
            rows = report.tables[dimension]
            chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
            for n, chunk in enumerate(chunks):
                fig = plt.figure(figsize=(8.27, 11.69))
                fig.text(0.08, 0.95, label(DIMENSIONS, dimension, lang), fontsize=14, weight="bold")
                _pdf_table(fig, [0.08, 0.55, 0.84, 0.37], table_headers(dimension, lang),
                           [_cells(r) for r in chunk], report if n == len(chunks) - 1 else None,
                           label(REPORT, "total", lang))
                if dimension == "field":
                    fig.text(0.08, 0.52, label(REPORT, "field_note", lang), fontsize=8)
                pdf.savefig(fig)
                plt.close(fig)
            chart = _chart(plt, rows, dimension, lang)
            pdf.savefig(chart)
            plt.close(chart)


def _pdf_table(fig: Any, box: list[float], headers: list[str], rows: list[list[str | int]],
               report: Report | None, total_label: str) -> None:
    ax = fig.add_axes(box)
    ax.axis("off")
    body = [[str(c) for c in r] for r in rows]
    if report is not None:
        body.append([str(c) for c in [total_label, *_cells(report.totals)[1:]]])
    if not body:
        return
    table = ax.table(cellText=body, colLabels=headers, loc="upper left", cellLoc="center",
                     colWidths=[0.3] + [0.1] * (len(headers) - 1))
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)


def write_report(report: Report, path: Path, *, lang: str = "zh_CN", generated: datetime, source: str) -> str:
    """Write the report where ``path`` says, in the format its suffix names; returns the format."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationFailed(f"--to {path}: give a {', '.join(FORMATS)} file")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if suffix == ".csv":
            _csv(report, path, lang)
        elif suffix == ".xlsx":
            _xlsx(report, path, lang, generated, source)
        elif suffix == ".html":
            _html(report, path, lang, generated, source, chart_pngs(report, lang))
        else:
            _pdf(report, path, lang, generated, source)
    except ModuleNotFoundError as e:
        raise MraError(f"{suffix} reports need {e.name}: install mra with its report extra "
                       "(pip install 'mra[report]')") from None
    return suffix[1:]
