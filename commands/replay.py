"""``mra replay``: rebuild a bureau's read model from the log, for audit."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx
from mra.core.errors import MraError
from mra.core.plugins import load_registry
from mra.services.bureau import BureauStore
from mra.services.bureaus import bureau_db
from mra.services.replay import behind, compare, replay

__all__ = ["COMMANDS"]


@click.command("replay")
@jurisdiction_option()
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the rebuilt read model (default: a new temporary one). Never the live one.",
)
@click.option("--compare", "do_compare", is_flag=True, help="Diff the rebuilt read model against the live one.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Give up after this many seconds.")
@json_option
@pass_ctx
def replay_cmd(ctx: Ctx, jurisdiction: str, into: Path | None, do_compare: bool, timeout: float, as_json: bool) -> None:
    """Read the catalogue, verification and holder topics from the beginning into a fresh read model,
    running the same rules with nothing published; with --compare, report every difference from the live one."""
    runtime = ctx.runtime()
    registry = load_registry()
    live_path = bureau_db(runtime, jurisdiction)
    if into is not None and (into / f"{jurisdiction}.db").resolve() == live_path.resolve():
        raise MraError("--into must not be the live read model's directory")
    try:
        result = replay(runtime, jurisdiction, registry=registry, into=into, timeout=timeout)
    except FileExistsError as e:
        raise MraError(str(e)) from None
    data: dict[str, object] = {
        "jurisdiction": jurisdiction,
        "into": str(result.path),
        "events": result.stats.polled,
        "applied": result.stats.applied,
        "dead_lettered": result.stats.dead_lettered,
        "caught_up": result.stats.idle,
        "seconds": round(result.stats.seconds, 2),
        "counts": result.store.counts(),
    }
    differences = None
    if do_compare:
        if not live_path.exists():
            raise MraError(
                f"no live read model for {jurisdiction} at {live_path}: run `mra bureau run -j {jurisdiction}`"
            )
        live = BureauStore(live_path, jurisdiction, registry)
        differences = compare(live, result.store)
        lagging = behind(live, result.store)
        data["live_behind"] = lagging
        live.close()
        data["differences"] = [asdict(d) for d in differences]
    result.store.close()

    def text(d: dict[str, object]) -> str:
        lines = [f"replayed {d['events']} events for {jurisdiction} into {d['into']} in {d['seconds']}s; {d['counts']}"]
        if differences is not None:
            lines.append(
                "no differences from the live read model"
                if not differences
                else f"{len(differences)} difference(s) from the live read model:"
            )
            lines += [
                f"  {x.holder_id} {x.code} {x.field}: live={x.live!r} replayed={x.replayed!r}" for x in differences
            ]
            if d.get("live_behind"):
                lines.append(
                    f"the live read model is behind the log (run `mra bureau run -j {jurisdiction} --until-idle`): "
                    + "; ".join(d["live_behind"])  # type: ignore[arg-type]
                )
        return "\n".join(lines)

    emit(data, as_json, text)
    if differences:
        raise SystemExit(4)


COMMANDS: list[click.Command] = [replay_cmd]
