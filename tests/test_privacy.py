"""Personal data on the in-memory transport: sealed fields, pseudonyms, and what erasing a holder does."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.facts import started, verified

from mra.cli import cli
from mra.core.errors import MraError, NotFound
from mra.core.models import BenefitDecision, Outcome
from mra.core.plugins import load_registry
from mra.events.benefits import decided_in
from mra.events.bus import InMemoryTransport
from mra.events.envelope import Envelope, decode
from mra.events.schemas import HolderErased, HolderRegistered
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.keys import (
    DataKeyStore,
    ErasedHolder,
    KeyPaths,
    backup_keys,
    init_keys,
    open_publisher,
    restore_keys,
    standard_identities,
)
from mra.services.platform import (
    CST,
    PUBLISHER,
    Platform,
    PlatformSettings,
    check_code,
    prepare,
    publish_submission,
    request_status,
)
from mra.services.privacy import PersonalData, erase_holder, erasure_facts, open_value, seal_value
from mra.services.replay import compare
from mra.services.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = load_registry()
REQUEST: dict[str, Any] = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
FRIDAY = datetime(2025, 10, 10, 10, 0, tzinfo=CST)


def other_request() -> dict[str, Any]:
    raw = copy.deepcopy(REQUEST)
    raw["holder"] |= {"name": "张三明", "nationality": "SG", "birth_date": "1950-03-01", "document_number": "E99"}
    raw["certificate"] |= {"number": "ACCA-2021-000777", "issued": "2021-03-15"}
    return raw


# --- sealed fields ------------------------------------------------------------------------------------------------


def test_a_sealed_field_is_deterministic_and_bound_to_its_holder_and_field() -> None:
    key = bytes(range(32))
    sealed = seal_value("k1", key, "h-1", "birth_date", "1988-04-12")
    assert sealed.startswith("mra:sealed:v1:k1:") and "1988" not in sealed
    assert seal_value("k1", key, "h-1", "birth_date", "1988-04-12") == sealed  # a re-publication is identical
    assert seal_value("k1", key, "h-1", "birth_date", "1988-04-13") != sealed
    assert open_value(key, "h-1", "birth_date", sealed) == "1988-04-12"
    for holder, field in (("h-2", "birth_date"), ("h-1", "name")):  # moved to another holder or field
        with pytest.raises(MraError, match="does not open"):
            open_value(key, holder, field, sealed)
    with pytest.raises(MraError, match="does not open"):
        open_value(bytes(32), "h-1", "birth_date", sealed)


def test_erasing_destroys_the_key_in_the_file_and_keeps_a_tombstone(tmp_path: Path) -> None:
    personal = PersonalData.at(tmp_path)
    sealed = personal.seal("h-1", "birth_date", "1988-04-12")
    kept = personal.seal("h-2", "birth_date", "1990-01-01")
    found = personal.store.get("h-1")
    assert found is not None
    key = found[1]
    assert key in KeyPaths(tmp_path).holders.read_bytes()
    personal.store.erase("h-1", datetime(2025, 12, 1, tzinfo=UTC), "asked", {"decisions": ["d1"], "ages": {}})
    assert key not in KeyPaths(tmp_path).holders.read_bytes()  # overwritten and vacuumed, not just unlinked
    with pytest.raises(ErasedHolder):
        personal.open("h-1", "birth_date", sealed)
    with pytest.raises(ErasedHolder):
        personal.seal("h-1", "name", "Jane Smith")  # no new key for an erased holder
    assert personal.shown("h-1", "birth_date", sealed) == "(erased)"
    assert personal.open("h-2", "birth_date", kept) == "1990-01-01"
    erasure = personal.store.erasure("h-1")
    assert erasure is not None and erasure["decisions"] == ["d1"] and erasure["reason"] == "asked"
    assert personal.store.erase("h-1", datetime(2026, 1, 1, tzinfo=UTC), "again", {}) is False
    personal.close()


def test_erasure_facts_are_the_decision_ids_and_ages_on_their_dates() -> None:
    def decision(ident: str, at: datetime, holder: str = "h-1") -> BenefitDecision:
        return BenefitDecision(
            decision_id=ident,
            holder_id=holder,
            jurisdiction="beijing",
            code="bj.work_permit",
            outcome=Outcome.ELIGIBLE,
            clause="x",
            entry_id="BJ2025-I-139",
            edition="2025",
            rule_version="1",
            plugin="beijing",
            decided_at=at,
        )

    born = date(1960, 5, 2)
    ids, ages = erasure_facts(
        "h-1",
        born,
        [
            decision("a", datetime(2025, 5, 1, 23, tzinfo=UTC)),  # the day before the 65th birthday
            decision("b", datetime(2025, 5, 1, 17, tzinfo=CST)),  # 09:00 UTC, the same day in UTC
            decision("c", datetime(2025, 5, 2, 7, tzinfo=CST)),  # still 1 May in UTC
            decision("d", datetime(2025, 5, 2, 16, tzinfo=UTC)),
            decision("x", datetime(2025, 5, 2, 16, tzinfo=UTC), holder="h-other"),
        ],
    )
    assert ids == ("a", "b", "c", "d")
    assert ages == {"2025-05-01": 64, "2025-05-02": 65}


# --- the holder id ------------------------------------------------------------------------------------------------


def test_an_operator_derives_the_holder_id_the_platform_gave(tmp_path: Path) -> None:
    settings = PlatformSettings(issuer_register=ROOT / "examples" / "issuer-register.json")
    sub = prepare(REQUEST, state_dir=tmp_path, registry=REGISTRY, settings=settings, now=FRIDAY)
    args = ["--state-dir", str(tmp_path), "holder", "id", "--document-type", "passport"]
    result = CliRunner().invoke(cli, [*args, "--document-number", "x 1234567", "--nationality", "gb", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"holder_id": sub.holder_id}
    other = CliRunner().invoke(cli, [*args, "--document-number", "X1234568", "--nationality", "GB"])
    assert other.exit_code == 0 and other.output.strip() not in ("", sub.holder_id)

    bad = CliRunner().invoke(cli, [*args, "--document-number", "X1234567", "--nationality", "Britain"])
    assert bad.exit_code == 2 and "unknown nationality 'Britain'" in bad.output
    no_key = ["--state-dir", str(tmp_path / "no-key"), *args[2:]]
    elsewhere = CliRunner().invoke(cli, [*no_key, "--document-number", "X1234567", "--nationality", "GB"])
    assert isinstance(elsewhere.exception, NotFound) and "no pseudonym key" in str(elsewhere.exception)
    assert not (tmp_path / "no-key" / "platform" / "holder.key").exists()  # never made up on the spot


# --- erasing a holder, end to end -----------------------------------------------------------------------------


class World:
    """The platform and the bureaus on one in-memory bus and one state dir, every event signed and verified."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.bus = InMemoryTransport()
        self.runtime = Runtime(state, topics=Topics("p.", 3))
        self.bus.ensure_topics(self.runtime.topics.all())
        init_keys(state, standard_identities(REGISTRY.jurisdictions), Mode.PER_EVENT)
        self.settings = PlatformSettings(issuer_register=ROOT / "examples" / "issuer-register.json")
        self.intake = open_publisher(state, self.bus, self.runtime.topics, "beijing-intake")
        self.bureaus = {j: self.bureau(j) for j in ("beijing", "tianjin")}

    def bureau(self, j: str, into: Path | None = None) -> Any:
        return open_bureau(
            self.runtime,
            j,
            registry=REGISTRY,
            transport=self.bus,
            group=False,
            db=into,
            publish=into is None,
        )

    def submit(self, raw: dict[str, Any]) -> Any:
        sub = prepare(raw, state_dir=self.state, registry=REGISTRY, settings=self.settings, now=FRIDAY)
        publish_submission(sub, open_publisher(self.state, self.bus, self.runtime.topics, PUBLISHER))
        return sub

    def employed(self, raw: dict[str, Any]) -> Any:
        """The holder of request ``raw``, verified by the platform, then employed in Beijing from 12 October."""
        sub = self.submit(raw)
        self.settle()
        self.employ(sub.holder_id, "beijing", date(2025, 10, 12))
        self.settle()
        return sub

    def employ(self, holder: str, j: str, on: date) -> None:
        intake = open_publisher(self.state, self.bus, self.runtime.topics, f"{j}-intake")  # each speaks for its own
        intake.publish(started(holder, j, on=on), time=datetime(on.year, on.month, on.day, 12, tzinfo=UTC))
        intake.flush()

    def settle(self) -> None:
        platform = Platform(
            self.bus,
            self.runtime.topics,
            self.state,
            registry=REGISTRY,
            settings=self.settings,
            clock=lambda: datetime(2025, 10, 11, 2, tzinfo=UTC),  # the check is done the next day
            poll_ms=10,
        )
        try:
            assert platform.run(until_idle=True, timeout=30).idle
        finally:
            platform.close()
        for b in self.bureaus.values():
            stats = b.run(until_idle=True, timeout=30)
            assert stats.idle and stats.dead_lettered == 0

    def events(self, topic: str) -> list[Envelope]:
        return [decode(r) for r in self.bus.records(self.runtime.topics.name(topic))]

    def erase(self, holder: str) -> dict[str, Any]:
        publisher = open_publisher(self.state, self.bus, self.runtime.topics, PUBLISHER)
        return erase_holder(
            self.state,
            holder,
            transport=self.bus,
            topics=self.runtime.topics,
            publisher=publisher,
            now=datetime(2025, 12, 1, tzinfo=UTC),
        )


def active(bureau: Any, holder: str) -> dict[str, tuple[str, object]]:
    return {d.code: (d.outcome.value, d.inputs.get("age")) for d in bureau.store.active_decisions(holder)}


def test_an_erased_holder_keeps_their_decisions_gets_no_new_ones_and_replays_the_same(tmp_path: Path) -> None:
    w = World(tmp_path / "state")
    jane, zhang = w.submit(REQUEST), w.submit(other_request())
    w.settle()
    w.employ(jane.holder_id, "beijing", date(2025, 10, 12))
    w.employ(zhang.holder_id, "beijing", date(2025, 10, 12))
    w.settle()
    beijing = w.bureaus["beijing"]
    before = active(beijing, jane.holder_id)
    assert before["bj.work_permit"] == ("eligible", 37)  # the age came from the sealed birth date
    assert active(beijing, zhang.holder_id)["bj.work_permit"] == ("ineligible", 75)  # over the limit
    code = request_status(w.state, jane.request_id)["verification_code"]
    published = len(w.events("benefits"))
    backup_keys(w.state, tmp_path / "before.backup")

    result = w.erase(jane.holder_id)
    assert result["decisions_kept"] == len(before) and not result["already_erased"]
    (erased,) = [e.data for e in w.events("holders") if isinstance(e.data, HolderErased)]
    assert erased.ages == {"2025-10-12": 37}
    w.settle()
    assert active(beijing, jane.holder_id) == before and len(w.events("benefits")) == published
    shown = beijing.store.holder(jane.holder_id)
    assert shown["erased"] is True and shown["birth_date"] == "erased"

    # the personal fields read as erased everywhere: the sealed birth date on the topic, the public check, status
    (registered,) = [
        e.data for e in w.events("holders") if isinstance(e.data, HolderRegistered) and e.subject == jane.holder_id
    ]
    personal = PersonalData.at(w.state)
    with pytest.raises(ErasedHolder):
        personal.open(jane.holder_id, "birth_date", registered.personal["birth_date"])
    personal.close()
    assert check_code(w.state, code, registry=REGISTRY)["holder"] == "(erased)"
    assert request_status(w.state, jane.request_id)["holder"] == "(erased)"
    assert request_status(w.state, zhang.request_id)["holder"] == "张*明"
    again = w.submit(copy.deepcopy(REQUEST) | {"reference": "a new request"})
    assert again.status == "refused" and any("erased" in r for r in again.reasons)
    assert w.erase(jane.holder_id)["already_erased"] is True  # the same event again, same id

    # the key store is lost and restored from the backup taken before the erasure: the key comes back, and
    # erasing again destroys it under the erasure already on the log, word for word
    KeyPaths(w.state).holders.unlink()
    restore_keys(w.state, tmp_path / "before.backup", force=True)
    assert PersonalData.at(w.state).shown(jane.holder_id, "birth_date", registered.personal["birth_date"]) != "(erased)"
    assert w.erase(jane.holder_id)["already_erased"] is False
    logged = [e for e in w.events("holders") if isinstance(e.data, HolderErased)]
    assert len(logged) == 3 and len({(e.id, e.hash) for e in logged}) == 1
    assert PersonalData.at(w.state).shown(jane.holder_id, "birth_date", registered.personal["birth_date"]) == "(erased)"

    # no new decision for the erased holder: a move to Tianjin decides nothing, the other holder's move does
    w.employ(jane.holder_id, "tianjin", date(2025, 12, 5))
    w.employ(zhang.holder_id, "tianjin", date(2025, 12, 5))
    w.settle()
    tianjin = w.bureaus["tianjin"]
    assert active(tianjin, jane.holder_id) == {} and active(tianjin, zhang.holder_id) != {}

    # a replay after the erasure reproduces the live decisions, from the ages the erasure event keeps
    for j, live in w.bureaus.items():
        fresh = w.bureau(j, into=tmp_path / "replay" / f"{j}.db")
        assert fresh.processor.run(until_idle=True, timeout=30).idle
        assert compare(live.store, fresh.store) == []
        fresh.close()
    assert not any(
        d.holder_id == jane.holder_id and e.time > erased.erased_at
        for e in w.events("benefits")
        for d in decided_in(e.data)
    )


def test_a_holder_erased_in_the_key_store_keeps_decisions_until_the_erasure_event_is_read(tmp_path: Path) -> None:
    w = World(tmp_path / "state")
    jane = w.employed(REQUEST)
    beijing = w.bureaus["beijing"]
    before = active(beijing, jane.holder_id)
    store = DataKeyStore.at(w.state)
    store.erase(jane.holder_id, datetime(2025, 12, 1, tzinfo=UTC), "asked", {"decisions": [], "ages": {}})
    store.close()
    platform = open_publisher(w.state, w.bus, w.runtime.topics, PUBLISHER)
    platform.publish(  # new facts for the holder, whose age can no longer be read
        verified(
            jane.holder_id,
            "BJ2025-I-047",
            request="r-2",
            key="k-2",
            code="CODE-2",
            issuer="PMI",
            at=datetime(2025, 12, 2, tzinfo=UTC),
        )
    )
    platform.flush()
    w.employ(jane.holder_id, "beijing", date(2025, 12, 3))
    stats = beijing.run(until_idle=True, timeout=30)
    assert stats.applied == 2 and stats.dead_lettered == 0
    assert active(beijing, jane.holder_id) == before  # nothing decided, nothing withdrawn: waiting for the event
    w.erase(jane.holder_id)  # the event comes: only what was recorded before may stand
    beijing.run(until_idle=True, timeout=30)
    assert active(beijing, jane.holder_id) == {}  # the tombstone recorded no decision
    with pytest.raises(NotFound):
        w.erase("h-nobody")


class ShortEnds:
    """The bus as a broker that reports each log's end a few records short (Tansu reports the last batch's first
    offset + 1) and hands out one record a poll."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reader(self, *args: Any, **kwargs: Any) -> Any:
        reader = self.inner.reader(*args, **kwargs)
        ends, poll = reader.end_offsets, reader.poll
        reader.end_offsets = lambda tps: {tp: max(0, end - 3) for tp, end in ends(tps).items()}  # type: ignore[method-assign]
        reader.poll = lambda timeout_ms, max_records: poll(timeout_ms, 1)  # type: ignore[method-assign]
        return reader


def test_an_erasure_reads_the_log_past_an_under_reported_end(tmp_path: Path) -> None:
    w = World(tmp_path / "state")
    jane = w.employed(REQUEST)
    decided = w.bureaus["beijing"].store.active_decisions(jane.holder_id)
    w.bus = ShortEnds(w.bus)  # type: ignore[assignment]
    result = w.erase(jane.holder_id)
    (erased,) = [e.data for e in w.events("holders") if isinstance(e.data, HolderErased)]
    assert result["decisions_kept"] == len(decided) == len(erased.decisions)
    assert set(erased.decisions) == {d.decision_id for d in decided}
