"""Replay: rebuild a bureau's read model from the log into a fresh store, and compare it with the live one."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mra.core.models import BenefitDecision
from mra.core.plugins import Registry
from mra.events.bus import Transport
from mra.events.consumer import RunStats
from mra.services.bureau import BureauStore
from mra.services.bureaus import open_bureau
from mra.services.runtime import Runtime

__all__ = ["Difference", "ReplayResult", "behind", "compare", "replay"]


@dataclass(frozen=True)
class Difference:
    holder_id: str
    code: str
    field: str
    live: object
    replayed: object


@dataclass
class ReplayResult:
    store: BureauStore
    stats: RunStats
    path: Path


def replay(
    runtime: Runtime,
    jurisdiction: str,
    *,
    registry: Registry | None = None,
    transport: Transport | None = None,
    into: Path | None = None,
    timeout: float | None = 600,
) -> ReplayResult:
    """Read every fact topic from the beginning into a fresh read model; nothing is published."""
    target = into or Path(tempfile.mkdtemp(prefix=f"mra-replay-{jurisdiction}-"))
    target.mkdir(parents=True, exist_ok=True)
    db = target / f"{jurisdiction}.db"
    if db.exists():
        raise FileExistsError(f"{db} exists: a replay goes into a fresh read model")
    bureau = open_bureau(
        runtime, jurisdiction, registry=registry, transport=transport, group=False, db=db, publish=False
    )
    stats = bureau.processor.run(until_idle=True, timeout=timeout)
    bureau.processor.close()
    return ReplayResult(bureau.store, stats, db)


def behind(live: BureauStore, replayed: BureauStore) -> list[str]:
    """Partitions where the live read model has not yet read as far as the replay: its differences are lag."""
    mine = live.positions()
    return [
        f"{topic}[{partition}]: live at {mine.get((topic, partition), 0)}, log read to {offset}"
        for (topic, partition), offset in sorted(replayed.positions().items())
        if mine.get((topic, partition), 0) < offset
    ]


def _by_key(decisions: list[BenefitDecision]) -> dict[tuple[str, str, str], BenefitDecision]:
    return {(d.holder_id, d.certificate_key, d.code): d for d in decisions}


def compare(live: BureauStore, replayed: BureauStore) -> list[Difference]:
    """Every difference between the two stores' current decisions (holder, benefit, field, live vs replayed)."""
    a, b = _by_key(live.active_decisions()), _by_key(replayed.active_decisions())
    out: list[Difference] = []
    for key in sorted(a.keys() | b.keys()):
        holder, _, code = key
        if key not in b:
            out.append(Difference(holder, code, "decision", a[key].outcome.value, None))
        elif key not in a:
            out.append(Difference(holder, code, "decision", None, b[key].outcome.value))
        else:
            left, right = json.loads(a[key].model_dump_json()), json.loads(b[key].model_dump_json())
            for name in sorted(left.keys() | right.keys()):
                if left.get(name) != right.get(name):
                    out.append(Difference(holder, code, name, left.get(name), right.get(name)))
    return out
