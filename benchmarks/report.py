"""Markdown tables from a benchmark JSON result: ``python -m benchmarks.report RESULT.json``.

The tables in docs/benchmarks.md are this module's output for docs/benchmarks.json, so the prose there
and the numbers here cannot drift apart silently.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["render"]


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _series_row(name: str, key: str, s: dict[str, Any]) -> str:
    runs = ", ".join(_num(r) for r in s["runs"])
    return f"| {name} | {key} | {_num(s['median'])} {s['unit']} | {runs} |"


def _ratio_row(name: str, key: str, fig: dict[str, Any]) -> str:
    value = fig["ratios"][key]
    target = fig["targets"].get(key, "reported")
    verdict = "—" if key not in fig["met"] else ("met" if fig["met"][key] else "**not met**")
    return f"| {name} | {key} | {value:.3f} | {target} | {verdict} |"


def render(result: dict[str, Any]) -> str:
    out: list[str] = []
    m, libs, broker = result["machine"], result["libraries"], result["broker"]
    out.append(f"- Command: `{result['command']}` (wall time {result['wall_s'] / 60:.0f} min)")
    out.append(f"- Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, {m['platform']}")
    out.append(f"- Python {result['python']['version']} ({result['python']['implementation']})")
    out.append(
        f"- Broker: {broker.get('kind')} {broker.get('version', '')} ({broker.get('storage', '')} storage, "
        "loopback, started by the benchmark)"
        if broker.get("kind") == "tansu"
        else f"- Broker: {broker}"
    )
    out.append("- Libraries: " + ", ".join(f"{k} {v}" for k, v in libs.items() if v))
    out.append("")
    out.append("Encoded message sizes (bytes):")
    out.append("")
    out.append("| event | key | value (JSON body) | headers | total |")
    out.append("|---|---:|---:|---:|---:|")
    for name, s in result["message_sizes"].items():
        out.append(f"| {name} | {s['key']} | {s['value']} | {s['headers']} | {s['total']} |")
    out.append("")
    out.append("### Ratios against the targets")
    out.append("")
    out.append("| figure | ratio | measured | target | verdict |")
    out.append("|---|---|---:|---|---|")
    for name, fig in result["figures"].items():
        for key in fig["ratios"]:
            out.append(_ratio_row(name, key, fig))
        for key, why in fig["not_measured"].items():
            out.append(f"| {name} | {key} | — | {fig['targets'].get(key, '')} | {why} |")
    out.append("")
    out.append("### Every series (median and all runs)")
    out.append("")
    out.append("| figure | series | median | runs |")
    out.append("|---|---|---:|---|")
    for name, fig in result["figures"].items():
        for key, s in fig["series"].items():
            out.append(_series_row(name, key, s))
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="markdown tables from a benchmark result")
    p.add_argument("result", type=Path)
    a = p.parse_args(argv)
    print(render(json.loads(a.result.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
