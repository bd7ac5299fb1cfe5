"""Decisions stored compactly: one row per holder and certificate, what many decisions share kept once.

A decision's rule-level fields (jurisdiction, code, outcome, clause, reasons, conditions, readings, entry, edition,
rule version, plugin) repeat for every holder the rule decides the same way, and its inputs repeat for every holder
of the same circumstances. Each distinct value of the rule-level part is stored once in ``decision_parts`` and
referred to by number. The decisions on one holder's certificate are one row of ``decision_sets``: the contexts they
were decided in (verification code, cause, time), their distinct inputs, and per decision its id, its part number,
its inputs, its context and, once withdrawn, the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mra.core.facts import StoredDecision
from mra.core.models import BenefitDecision, Outcome

__all__ = ["DecisionCodec", "SetRow"]

_SHARED = (
    "jurisdiction",
    "code",
    "outcome",
    "clause",
    "reasons",
    "conditions",
    "readings",
    "entry_id",
    "edition",
    "rule_version",
    "plugin",
)
_TUPLES = ("reasons", "conditions", "readings")

_VC = "\x1fverification_code\x1f"
Item = list[Any]  # [decision id, shared part, inputs index, context index, withdrawn reason or None]


def _short(ident: str) -> str:
    """A decision id (a UUID) in 22 characters; other ids as they are."""
    if len(ident) == 36 and ident[8] == ident[13] == ident[18] == ident[23] == "-":
        try:  # the canonical form a decision id has: its bytes without parsing a UUID
            raw = bytes.fromhex(ident[:8] + ident[9:13] + ident[14:18] + ident[19:23] + ident[24:])
        except ValueError:
            raw = b""
        if len(raw) == 16:  # 32 hex digits, nothing else
            return base64.urlsafe_b64encode(raw).decode()[:22]
    try:
        return base64.urlsafe_b64encode(uuid.UUID(ident).bytes).decode()[:22]
    except ValueError:
        return ident


def _long(short: str) -> str:
    if len(short) != 22:
        return short
    return str(uuid.UUID(bytes=base64.urlsafe_b64decode(short + "==")))


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


class SetRow:
    """The decisions on one holder's certificate, as one stored row decodes."""

    def __init__(self, holder_id: str, certificate_key: str, body: str | None = None) -> None:
        self.holder_id = holder_id
        self.certificate_key = certificate_key
        data = json.loads(body) if body else {"c": [], "i": [], "d": []}
        self.contexts: list[list[str]] = data["c"]
        self.inputs: list[list[Any]] = data["i"]  # [key list part, values]
        self.items: dict[str, Item] = {}
        self._shorts: dict[str, str] = {}  # decision id: its stored short form
        for i in data["d"]:
            ident = _long(i[0])
            self.items[ident] = [ident, *i[1:]]
            self._shorts[ident] = i[0]
        # decisions of one context share their objects: their indexes found once, by identity (each entry keeps the
        # objects it is keyed by, so that their ids stay theirs)
        self._found: dict[tuple[int, ...], tuple[tuple[object, ...], int]] = {}

    def body(self) -> str:
        shorts = self._shorts
        items = [[shorts.get(i[0]) or _short(i[0]), *i[1:]] for i in self.items.values()]
        data = {"c": self.contexts, "i": self.inputs, "d": items}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def _once(self, values: tuple[object, ...], find: Callable[[], int]) -> int:
        key = tuple(map(id, values))
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = (values, find())
        return found[1]

    def context(self, d: BenefitDecision) -> int:
        return self._once(("c", d.verification_code, d.caused_by, d.decided_at), lambda: self._context(d))

    def _context(self, d: BenefitDecision) -> int:
        ctx = [d.verification_code, d.caused_by, d.decided_at.isoformat()]
        for n, c in enumerate(self.contexts):
            if c == ctx:
                return n
        self.contexts.append(ctx)
        return len(self.contexts) - 1

    def inputs_of(self, d: BenefitDecision, keys: int) -> int:
        """The index of the decision's inputs in this row: [key list part, values]."""
        return self._once(("i", d.inputs, keys), lambda: self._inputs_of(d, keys))

    def _inputs_of(self, d: BenefitDecision, keys: int) -> int:
        values: list[Any] = list(d.inputs.values())
        for n, i in enumerate(self.inputs):
            if i == [keys, values]:
                return n
        self.inputs.append([keys, values])
        return len(self.inputs) - 1


class DecisionCodec:
    """Turns decisions into set rows and back, interning their shared parts (cached for the store's life)."""

    def __init__(self) -> None:
        self._ids: dict[Any, int] = {}
        self._parts: dict[int, dict[str, Any]] = {}

    def forget(self) -> None:
        """Drop the cache (after a rollback: part numbers handed out in it are gone)."""
        self._ids.clear()
        self._parts.clear()

    def _part(self, db: sqlite3.Connection, key: Any, make: Callable[[], dict[str, Any]]) -> int:
        found = self._ids.get(key)
        if found is not None:
            return found
        value = make()
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        h = _hash(text)
        part = next((int(r[0]) for r in db.execute(
            "SELECT part_id, body FROM decision_parts WHERE hash = ?", (h,)) if r[1] == text), None
        )  # fmt: skip
        if part is None:
            cur = db.execute("INSERT INTO decision_parts (hash, body) VALUES (?, ?)", (h, text))
            part = int(cur.lastrowid or 0)
        self._ids[key] = part
        return part

    def item(self, db: sqlite3.Connection, row: SetRow, d: BenefitDecision) -> Item:
        vc = d.verification_code
        said = [x for x in (*d.reasons, *d.conditions) if vc and vc in x]
        reasons = tuple(x.replace(vc, _VC) for x in d.reasons) if said else d.reasons
        conditions = tuple(x.replace(vc, _VC) for x in d.conditions) if said else d.conditions
        shared_key = (
            "s", d.jurisdiction, d.code, d.outcome, d.clause, reasons, conditions, d.readings, d.entry_id,
            d.edition, d.rule_version, d.plugin,
        )  # fmt: skip

        def shared_part() -> dict[str, Any]:
            out = {k: getattr(d, k) for k in _SHARED} | {"reasons": reasons, "conditions": conditions}
            return out | {"vc": True} if said else out

        shared = self._part(db, shared_key, shared_part)
        keys = self._part(db, ("k", *d.inputs), lambda: {"keys": list(d.inputs)})
        row._shorts[d.decision_id] = _short(d.decision_id)
        return [d.decision_id, shared, row.inputs_of(d, keys), row.context(d), None]

    def outcome(self, db: sqlite3.Connection, shared: int) -> Outcome:
        """The outcome a shared part says."""
        found: Outcome = self._load(db, shared)["outcome"]
        return found

    def _load(self, db: sqlite3.Connection, n: int) -> dict[str, Any]:
        found = self._parts.get(n)
        if found is None:
            found = json.loads(db.execute("SELECT body FROM decision_parts WHERE part_id = ?", (n,)).fetchone()[0])
            if "outcome" in found:
                found["outcome"] = Outcome(found["outcome"])
                for k in _TUPLES:
                    found[k] = tuple(found[k])
            self._parts[n] = found
        return found

    def decode(self, db: sqlite3.Connection, rows: Iterable[SetRow], active: bool | None) -> list[StoredDecision]:
        """The decisions of ``rows`` (active ones, withdrawn ones, or both), by id."""
        out: list[StoredDecision] = []
        for row in rows:
            times = [datetime.fromisoformat(c[2]) for c in row.contexts]
            for ident, shared, inputs, ctx, reason in row.items.values():
                if active is not None and (reason is None) != active:
                    continue
                code, cause, _ = row.contexts[ctx]
                part = self._load(db, shared)
                if "vc" in part:  # the verification code, said once in the row, not in the shared text
                    part = {k: v for k, v in part.items() if k != "vc"}
                    for k in ("reasons", "conditions"):
                        part[k] = tuple(x.replace(_VC, code) for x in part[k])
                d = BenefitDecision.model_construct(
                    decision_id=ident,
                    holder_id=row.holder_id,
                    certificate_key=row.certificate_key,
                    verification_code=code,
                    caused_by=cause,
                    decided_at=times[ctx],
                    inputs=dict(zip(self._load(db, row.inputs[inputs][0])["keys"], row.inputs[inputs][1], strict=True)),
                    **part,
                )
                out.append(StoredDecision(d, reason is None, reason))
        out.sort(key=lambda s: s.decision_id)
        return out
