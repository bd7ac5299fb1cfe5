"""``mra demo``: the whole flow on the embedded broker, with a readable summary."""

from __future__ import annotations

from dataclasses import asdict

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.services.demo import DemoReport, run_demo

__all__ = ["COMMANDS"]


def _text(r: DemoReport) -> str:
    lines = ["", "Who got what, where, on which clause:"]
    for h in r.holders:
        lines.append(
            f"\n  {h['who']}  (holder {h['holder_id'][:12]}…, code {h['verification_code']}, "
            f"public check: {h.get('public_check')})"
        )
        for j in ("beijing", "tianjin", "hebei"):
            granted = h[j]
            withdrawn = h[f"{j}_withdrawn"]
            if not granted and not withdrawn:
                continue
            lines.append(f"    {j}: {len(granted)} granted or conditional now, {len(withdrawn)} withdrawn")
            lines += [f"      {d['outcome']:<11} {d['code']:<30} {d['clause']}" for d in granted]
            if withdrawn:
                codes = ", ".join(w["code"] for w in withdrawn)
                lines.append(f"      withdrawn ({withdrawn[0]['reason']}): {codes}")
    for x in r.rejected:
        lines.append(f"\n  {x['who']} ({x['entry']}): {x['status']} — {x['reason']} {x.get('detail') or ''}")
    lines.append(f"\n  verification requests on the log: {r.verification_requests} (no re-verification on a move)")
    lines.append(
        "  replay check: "
        + ", ".join(f"{j} {v['events']} events, {v['differences']} differences" for j, v in r.replay.items())
    )
    v = r.verification
    if v:
        lines.append(f"  signatures: {v['mode']}, {v['dead_lettered']} event(s) dead-lettered")
    lines.append(f"\n{'OK' if r.ok else 'FAILED'}: topics {r.topic_prefix}* on {r.bootstrap}; state in {r.state_dir}")
    return "\n".join(lines)


@click.command("demo")
@json_option
@pass_ctx
def demo(ctx: Ctx, as_json: bool) -> None:
    """Run the platform and the three bureaus through a scripted scenario on the embedded broker (or
    --bootstrap): verification, decisions, moves within 京津冀, a revocation, and a replay check."""
    say = (lambda s: None) if as_json else (lambda s: click.echo(f"· {s}", err=True))
    report = run_demo(ctx.ensure_state_dir(), ctx.bootstrap, say)
    emit(asdict(report), as_json, _text(report) if not as_json else None)
    if not report.ok:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [demo]
