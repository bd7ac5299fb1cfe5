"""The verification platform on the in-memory transport: intake, validation, pseudonyms, connectors, outbox."""

from __future__ import annotations

import copy
import json
import stat
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from support.signed import provisioned, signed

from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerStatus
from mra.core.hookspecs import hookimpl
from mra.core.ids import stable_id
from mra.core.models import CatalogueEntry, Jurisdiction
from mra.core.plugins import Registry, load_registry
from mra.events.bus import InMemoryTransport
from mra.events.envelope import Envelope, decode
from mra.events.schemas import (
    CertificateVerified,
    HolderRegistered,
    VerificationAccepted,
    VerificationDeferred,
    VerificationRefused,
    VerificationRejected,
    VerificationRequested,
)
from mra.events.topics import Topics
from mra.services.codes import read_code
from mra.services.platform import (
    CST,
    DISCLAIMER,
    PUBLISHER,
    Intake,
    Platform,
    PlatformPaths,
    PlatformSettings,
    PlatformStore,
    add_working_days,
    check_code,
    credit_code_problem,
    holder_pseudonym,
    mask_name,
    prepare,
    publish_submission,
    request_status,
)
from mra.services.privacy import PersonalData
from mra.services.register import RegisterConnector

ROOT = Path(__file__).resolve().parents[1]
REGISTER = ROOT / "examples" / "issuer-register.json"
REQUEST: dict[str, Any] = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
FRIDAY = datetime(2025, 10, 10, 10, 0, tzinfo=CST)  # a Friday morning in Beijing
REGISTRY = load_registry()


def request(**changes: Any) -> dict[str, Any]:
    """The example request with ``section__field=value`` changes (value None deletes the field)."""
    raw = copy.deepcopy(REQUEST)
    for path, value in changes.items():
        section, _, name = path.partition("__")
        target = raw if not name else raw[section]
        key = name or section
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return raw


class World:
    """One state dir, one in-memory bus, and the platform's settings."""

    def __init__(self, state: Path, registry: Registry = REGISTRY, **settings: Any) -> None:
        self.state = provisioned(state)
        self.bus = InMemoryTransport()
        self.topics = Topics("t.", 3)
        self.bus.ensure_topics(self.topics.all())
        self.registry = registry
        self.settings = PlatformSettings(issuer_register=REGISTER, issuer_backoff_s=0, **settings)

    def submit(self, raw: object, now: datetime = FRIDAY) -> Any:
        sub = prepare(raw, state_dir=self.state, registry=self.registry, settings=self.settings, now=now)
        publish_submission(sub, signed(self.bus, self.topics, PUBLISHER))
        return sub

    def platform(self) -> Platform:
        return Platform(self.bus, self.topics, self.state, registry=self.registry, settings=self.settings, poll_ms=10)

    def run(self) -> Any:
        p = self.platform()
        try:
            stats = p.run(until_idle=True, timeout=30)
        finally:
            p.close()
        assert stats.idle, stats.errors
        return stats

    def events(self, topic: str = "verification") -> list[Envelope]:
        return [decode(r) for r in self.bus.records(self.topics.name(topic))]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "state")


# --- intake ---------------------------------------------------------------------------------------------------


def test_a_valid_request_is_accepted_with_mra_default_turnaround(world: World) -> None:
    sub = world.submit(REQUEST)
    assert sub.status == "accepted" and sub.reasons == []
    # Friday 10:00 + 5 working days = the next Friday 10:00, Beijing time
    assert sub.expected_by == datetime(2025, 10, 17, 10, 0, tzinfo=CST)
    assert "not published by the notice" in sub.turnaround_source and "mra's default" in sub.turnaround_source
    events = world.events()
    assert [type(e.data) for e in events if e.data.request_id == sub.request_id] == [  # type: ignore[attr-defined]
        VerificationRequested,
        VerificationAccepted,
    ]
    accepted = next(e for e in events if isinstance(e.data, VerificationAccepted))
    assert accepted.id == stable_id("verification.accepted", sub.request_id)
    assert accepted.data.expected_by == sub.expected_by  # type: ignore[attr-defined]
    assert accepted.data.turnaround_source == sub.turnaround_source  # type: ignore[attr-defined]
    registered = world.events("holders")
    assert len(registered) == 1 and isinstance(registered[0].data, HolderRegistered)
    assert registered[0].data.category == "foreign" and registered[0].data.birth_date is None  # never plain
    with closing(PersonalData.at(world.state)) as personal:  # sealed under the holder's data key
        born = personal.open(sub.holder_id, "birth_date", registered[0].data.personal["birth_date"])
    assert born == date(1988, 4, 12).isoformat()
    assert registered[0].data.holder_id == sub.holder_id


def test_the_turnaround_can_be_set_per_issuer_by_any_of_its_names(tmp_path: Path) -> None:
    world = World(tmp_path, turnaround_by_issuer={"Association of Chartered Certified Accountants": 2})
    sub = world.submit(REQUEST)
    assert sub.expected_by == datetime(2025, 10, 14, 10, 0, tzinfo=CST)  # Fri + 2 working days = Tue
    assert "turnaround_by_issuer['Association of Chartered Certified Accountants']" in sub.turnaround_source


@pytest.mark.parametrize(
    "issuer", ["ACCA", "  acca ", "特许公认会计师公会", "association  of Chartered certified ACCOUNTANTS"]
)
def test_the_issuer_matches_any_name_or_alias_of_the_entry_whatever_the_case_and_spacing(
    world: World, issuer: str
) -> None:
    assert world.submit(request(certificate__issuer=issuer)).status == "accepted"


@pytest.mark.parametrize(("nationality", "residence", "category", "chinese", "where"), [
    ("CN", "abroad", "cn_abroad", True, "abroad"),
    ("GB", "HK", "foreign", False, "HK"),
    ("HK", None, "hkmotw", True, "HK"),
    ("GB", None, "foreign", False, None),
])
def test_the_holder_s_nationality_and_residence_travel_as_two_facts(
    world: World, nationality: str, residence: str | None, category: str, chinese: bool, where: str | None
) -> None:
    sub = world.submit(request(holder__nationality=nationality, holder__residence=residence))
    assert sub.status == "accepted", sub.reasons
    (registered,) = world.events("holders")
    data = registered.data
    assert isinstance(data, HolderRegistered) and registered.type.endswith(".v2")
    assert (data.category, data.chinese_national, data.residence) == (category, chinese, where)
    assert '"GB"' not in registered.body.decode()  # the ISO code does not travel



@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"certificate__entry": "BJ2025-I-999"}, "unknown catalogue entry 'BJ2025-I-999'"),
        ({"certificate__entry": "M-03"}, "BJ2025-M-03 is a designation in list M"),
        ({"certificate__entry": "M-03"}, "submit the certificate under BJ2025-I-139"),
        ({"certificate__issuer": "CFA Institute"}, "issuer 'CFA Institute' is not an issuer of BJ2025-I-139"),
        ({"certificate__expires": "2024-12-31"}, "the certificate expired on 2024-12-31"),
        ({"certificate__issued": "2026-01-01"}, "certificate.issued (2026-01-01) is after the day of the request"),
        ({"employer__region": "shanghai"}, "the holder has no employer in a covered region"),
        ({"employer": None}, "missing field employer"),
        ({"holder__birth_date": None}, "missing field holder.birth_date"),
        ({"certificate__number": "   "}, "certificate.number is empty"),
        ({"holder__nationality": "Britain"}, "holder.nationality must be an ISO country code"),
        ({"holder__nationality": "HK", "holder__residence": "mainland"}, "holder.residence: nationality HK"),
        ({"holder__residence": "Atlantis"}, "holder.residence: residence must be one of"),
        ({"holder__document_type": "driving_licence"}, "holder.document_type must be one of passport"),
        ({"employer__credit_code": "91110108MA01K7QH2K"}, "fails its GB 32100-2015 check character"),
        ({"certificate__colour": "red"}, "unknown field certificate.colour"),
    ],
)
def test_an_invalid_request_is_refused_with_its_reason_and_recorded(
    world: World, changes: dict[str, Any], expected: str
) -> None:
    sub = world.submit(request(**changes))
    assert sub.status == "refused"
    assert any(expected in r for r in sub.reasons), sub.reasons
    events = world.events()
    assert len(events) == 1 and isinstance(events[0].data, VerificationRefused)
    assert events[0].id == stable_id("verification.refused", sub.request_id)
    assert list(events[0].data.reasons) == sub.reasons
    assert world.events("holders") == []
    assert request_status(world.state, sub.request_id)["status"] == "refused"


def test_a_request_that_is_not_a_json_object_is_an_error_not_a_refusal(world: World) -> None:
    from mra.core.errors import MraError

    with pytest.raises(MraError, match="JSON object"):
        world.submit([REQUEST])
    assert world.events() == []


def test_no_event_body_holds_a_personal_field_in_plain_text(world: World) -> None:
    world.submit(request(holder__name="张三明", certificate__number="ACCA-2021-000777"))
    world.submit(request(certificate__entry="I-999"))  # a refusal too
    world.run()
    bodies = [e.body.decode() for t in ("verification", "holders") for e in world.events(t)]
    assert len(bodies) == 5  # requested, accepted, verified, refused; holder registered
    for body in bodies:
        for personal in ("张三明", "Jane Smith", "X1234567", "x1234567"):
            assert personal not in body
    for e in world.events("verification"):
        assert "1988-04-12" not in e.body.decode()
        if isinstance(e.data, VerificationRequested):
            assert set(e.data.personal) == {"name_hmac"}


def test_the_holder_id_is_a_keyed_pseudonym_of_the_document(tmp_path: Path) -> None:
    a, b = World(tmp_path / "a"), World(tmp_path / "b")
    first = a.submit(REQUEST)
    again = a.submit(request(reference="another request", certificate__number="ACCA-2021-000777"))
    elsewhere = b.submit(REQUEST)
    assert first.request_id != again.request_id and first.holder_id == again.holder_id
    assert first.holder_id != elsewhere.holder_id  # another platform, another key
    key_file = PlatformPaths(a.state).key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(PlatformPaths(a.state).intake.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text())
    assert first.holder_id == holder_pseudonym(key, "passport", "x 1234567", "gb")
    assert first.holder_id != holder_pseudonym(key, "passport", "X1234568", "GB")


def test_submitting_the_same_request_again_republishes_the_same_events(world: World) -> None:
    first = world.submit(REQUEST, now=FRIDAY)
    again = world.submit(REQUEST, now=datetime(2025, 11, 3, tzinfo=UTC))
    assert again.again and again.request_id == first.request_id and again.expected_by == first.expected_by
    events = world.events() + world.events("holders")
    by_id: dict[str, set[str]] = {}
    for e in events:
        by_id.setdefault(e.id, set()).add(e.hash)
    assert len(events) == 6 and len(by_id) == 3
    assert all(len(hashes) == 1 for hashes in by_id.values())  # identical content, not merely the same id


# --- pure helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三明", "张*明"),
        ("张明", "张*"),
        ("欧阳娜娜", "欧**娜"),
        ("Jane Smith", "J*** S****"),
        ("  jane   smith ", "j*** s****"),
        ("Li", "L*"),
    ],
)
def test_a_public_check_shows_only_a_masked_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_the_credit_code_check_is_gb_32100() -> None:
    assert credit_code_problem("91350100M000100Y43") is None  # the standard's own example
    assert credit_code_problem("91350100M000100Y44") is not None
    assert "18 characters" in (credit_code_problem("9135") or "")
    assert "does not use" in (credit_code_problem("91350100M000100YI3") or "")


def test_working_days_skip_the_weekend_in_beijing_time() -> None:
    friday_late = datetime(2025, 10, 10, 17, 0, tzinfo=UTC)  # already Saturday 01:00 in Beijing
    assert add_working_days(friday_late, 1) == datetime(2025, 10, 13, 1, 0, tzinfo=CST)  # Monday, not Saturday
    assert add_working_days(FRIDAY, 1) == datetime(2025, 10, 13, 10, 0, tzinfo=CST)
    assert add_working_days(FRIDAY, 0) == FRIDAY


# --- the file-backed register ---------------------------------------------------------------------------------

ENTRY: CatalogueEntry = REGISTRY.find_entry("I-139")[1]


def claim(**changes: Any) -> CertificateClaim:
    base = {
        "entry_id": "BJ2025-I-139",
        "issuer": "ACCA",
        "certificate_number": "ACCA-2019-004512",
        "holder_name": "Jane Smith",
        "issued": date(2019, 6, 30),
        "expires": None,
    }
    return CertificateClaim(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "status", "detail"),
    [
        ({}, IssuerStatus.GENUINE, "found"),
        (
            {"issuer": "特许公认会计师公会", "holder_name": "JANE  SMITH", "certificate_number": "acca-2019-004512"},
            IssuerStatus.GENUINE,
            "found",
        ),
        ({"certificate_number": "ACCA-2019-000000"}, IssuerStatus.NOT_FOUND, "not in"),
        ({"holder_name": "John Smith"}, IssuerStatus.MISMATCH, "holder's name"),
        ({"issued": date(2019, 7, 1)}, IssuerStatus.MISMATCH, "issue date"),
        ({"expires": date(2030, 1, 1)}, IssuerStatus.MISMATCH, "expiry date"),
        (
            {"certificate_number": "ACCA-2020-999999", "holder_name": "John Doe"},
            IssuerStatus.FALSE_MATERIAL,
            "not issued",
        ),
    ],
)
def test_the_register_answers_as_an_issuers_public_register(
    changes: dict[str, Any], status: IssuerStatus, detail: str
) -> None:
    answer = RegisterConnector(REGISTER, ENTRY).check(claim(**changes), 1.0)
    assert answer.status is status and detail in answer.detail
    assert "Jane" not in answer.detail and "John" not in answer.detail


def test_a_register_that_cannot_answer_makes_the_issuer_unreachable_not_the_certificate_unknown(tmp_path: Path) -> None:
    assert RegisterConnector(tmp_path / "missing.json", ENTRY).check(claim(), 1).status is IssuerStatus.UNREACHABLE
    assert RegisterConnector(None, ENTRY).check(claim(), 1).status is IssuerStatus.UNREACHABLE
    broken = tmp_path / "broken.json"
    broken.write_text('{"issuers": [{"certificates": []}]}')
    answer = RegisterConnector(broken, ENTRY).check(claim(), 1)
    assert answer.status is IssuerStatus.UNREACHABLE and "not a register" in answer.detail
    cfa = REGISTRY.find_entry("U-09")[1]
    other = RegisterConnector(REGISTER, cfa).check(claim(entry_id=cfa.id, issuer="CFA Institute"), 1)
    assert other.status is IssuerStatus.UNREACHABLE and "no section" in other.detail


def test_a_csv_register_reads_like_the_json_one(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_text(
        "issuer,number,holder,entry,issued,expires,status\n"
        "ACCA|特许公认会计师公会,ACCA-2019-004512,Jane Smith,BJ2025-I-139,2019-06-30,,valid\n"
        "ACCA,ACCA-2020-999999,John Doe,,,,void\n",
        encoding="utf-8",
    )
    connector = RegisterConnector(path, ENTRY)
    assert connector.check(claim(), 1).status is IssuerStatus.GENUINE
    assert connector.check(claim(certificate_number="ACCA-2020-999999"), 1).status is IssuerStatus.FALSE_MATERIAL
    assert connector.check(claim(certificate_number="nope"), 1).status is IssuerStatus.NOT_FOUND


# --- the platform ---------------------------------------------------------------------------------------------


def test_genuine_certificates_are_verified_and_others_rejected_with_the_reason(world: World) -> None:
    genuine = world.submit(REQUEST)
    chinese = world.submit(
        request(holder__name="张三明", certificate__number="ACCA-2021-000777", certificate__issued="2021-03-15")
    )
    missing = world.submit(request(certificate__number="ACCA-2019-000001"))
    wrong_name = world.submit(request(holder__name="Jane Smyth"))
    void = world.submit(
        request(holder__name="John Doe", certificate__number="ACCA-2020-999999", certificate__issued="2020-01-01")
    )
    stats = world.run()
    assert (stats.verified, stats.rejected, stats.deferred, stats.open) == (2, 3, 0, 0)

    status = request_status(world.state, genuine.request_id)
    assert status["status"] == "verified" and status["disclaimer"] == DISCLAIMER
    check = check_code(world.state, status["verification_code"], REGISTRY)
    assert check["status"] == "valid" and check["holder"] == "J*** S****" and check["entry_id"] == "BJ2025-I-139"
    assert check["entry_name"] == ENTRY.name and check["disclaimer"] == DISCLAIMER
    assert (
        check_code(world.state, request_status(world.state, chinese.request_id)["verification_code"])["holder"]
        == "张*明"
    )

    reasons = {s.request_id: request_status(world.state, s.request_id)["reason"] for s in (missing, wrong_name, void)}
    assert reasons == {
        missing.request_id: "not_found",
        wrong_name.request_id: "mismatch",
        void.request_id: "false_material",
    }
    verified = [e for e in world.events() if isinstance(e.data, CertificateVerified)]
    assert {e.id for e in verified} == {
        stable_id("verification.certificate_verified", s.request_id) for s in (genuine, chinese)
    }
    assert all(e.data.disclaimer == DISCLAIMER and e.data.verified_by == "beijing" for e in verified)  # type: ignore[attr-defined]
    rejected = [e for e in world.events() if isinstance(e.data, VerificationRejected)]
    assert {e.id for e in rejected} == {
        stable_id("verification.rejected", s.request_id) for s in (missing, wrong_name, void)
    }


def test_a_second_run_has_nothing_to_do(world: World) -> None:
    world.submit(REQUEST)
    world.run()
    count = len(world.events())
    stats = world.run()
    assert stats.asked == 0 and len(world.events()) == count


def test_a_result_written_but_not_published_is_published_unchanged_after_a_crash(world: World) -> None:
    sub = world.submit(REQUEST)
    crashed = world.platform()
    crashed.processor.run(until_idle=True, timeout=10)
    row = crashed.store.open_requests()[0]
    assert crashed.ask(row) == "verified"  # in the outbox, never relayed: the process dies here
    written = json.loads(crashed.store.unsent()[0]["body"])["verification_code"]
    crashed.close()

    world.run()
    assert request_status(world.state, sub.request_id)["verification_code"] == written
    verified = [e for e in world.events() if isinstance(e.data, CertificateVerified)]
    assert len(verified) == 1 and verified[0].data.verification_code == written  # type: ignore[attr-defined]


def test_a_result_published_twice_is_one_result_in_the_read_model(world: World) -> None:
    sub = world.submit(REQUEST)
    world.run()
    store = PlatformStore(PlatformPaths(world.state).read_model)
    with store.transaction() as db:
        db.execute("UPDATE outbox SET sent = 0")  # as if killed after publishing, before marking it sent
    store.close()
    world.run()
    events = world.events()
    verified = [e for e in events if isinstance(e.data, CertificateVerified)]
    assert len(verified) == 2 and len({e.id for e in verified}) == 1 and len({e.hash for e in verified}) == 1
    store = PlatformStore(PlatformPaths(world.state).read_model)
    assert store.db.execute("SELECT count(*) FROM codes").fetchone()[0] == 1
    assert store.request(sub.request_id)["status"] == "verified"  # type: ignore[index]
    store.close()


def test_the_read_model_is_rebuilt_from_the_topic(world: World) -> None:
    subs = [world.submit(REQUEST), world.submit(request(certificate__number="nope"))]
    world.run()
    before = [request_status(world.state, s.request_id) for s in subs]
    PlatformPaths(world.state).drop_read_model()
    assert request_status(world.state, subs[0].request_id)["status"] == "submitted"  # only the intake knows it
    stats = world.run()
    assert stats.asked == 0
    assert [request_status(world.state, s.request_id) for s in subs] == before
    assert check_code(world.state, before[0]["verification_code"])["status"] == "valid"


# --- slow and broken issuers ----------------------------------------------------------------------------------


class Issuer:
    """A connector whose behaviour a test changes between runs."""

    name = "test-issuer"

    def __init__(self, behaviour: str = "hang") -> None:
        self.behaviour = behaviour
        self.calls = 0
        self.release = threading.Event()

    def check(self, claim: CertificateClaim, timeout: float) -> IssuerAnswer:
        self.calls += 1
        if self.behaviour == "hang":
            self.release.wait(30)
            return IssuerAnswer(status=IssuerStatus.GENUINE)
        if self.behaviour == "raise":
            raise ConnectionError("connection reset by peer")
        return IssuerAnswer(status=IssuerStatus(self.behaviour), detail="as the test says")


class IssuerPlugin:
    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer

    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(code="issuertest", prefix="itst", name_zh="测试", name_en="Test", regions=("issuertest",))

    @hookimpl
    def mra_issuer_connector(self, entry: CatalogueEntry, settings: Any) -> Issuer:
        return self.issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.release.set()


def test_an_issuer_that_times_out_defers_the_request_which_stays_open_and_is_retried(
    tmp_path: Path, issuer: Issuer
) -> None:
    registry = load_registry(extra={"issuertest": IssuerPlugin(issuer)})
    world = World(tmp_path, registry=registry, issuer_timeout_s=0.2, issuer_attempts=2)
    sub = world.submit(REQUEST)
    stats = world.run()
    assert (stats.deferred, stats.open, issuer.calls) == (1, 1, 2)  # two calls, then deferred
    status = request_status(world.state, sub.request_id)
    assert status["status"] == "deferred" and status["attempts"] == 1 and "no answer within 0.2s" in status["detail"]
    deferred = [e for e in world.events() if isinstance(e.data, VerificationDeferred)]
    assert [e.id for e in deferred] == [stable_id("verification.deferred", sub.request_id, 1)]

    issuer.behaviour = "raise"
    world.run()
    status = request_status(world.state, sub.request_id)
    assert status["status"] == "deferred" and status["attempts"] == 2 and "ConnectionError" in status["detail"]

    issuer.behaviour = "genuine"
    stats = world.run()
    assert (stats.verified, stats.open) == (1, 0)
    assert request_status(world.state, sub.request_id)["status"] == "verified"
    assert [type(e.data).__name__ for e in world.events()] == [
        "VerificationRequested",
        "VerificationAccepted",
        "VerificationDeferred",
        "VerificationDeferred",
        "CertificateVerified",
    ]


def test_a_running_platform_retries_a_deferred_request_when_it_is_due(tmp_path: Path, issuer: Issuer) -> None:
    registry = load_registry(extra={"issuertest": IssuerPlugin(issuer)})
    world = World(tmp_path, registry=registry, issuer_attempts=1, retry_after_s=0.3)
    issuer.behaviour = "unreachable"
    sub = world.submit(REQUEST)
    platform = world.platform()
    runner = threading.Thread(target=platform.run, daemon=True)
    runner.start()
    try:
        deadline = datetime.now(UTC).timestamp() + 20
        while request_status(world.state, sub.request_id)["status"] != "deferred":
            assert datetime.now(UTC).timestamp() < deadline
            threading.Event().wait(0.05)
        issuer.behaviour = "genuine"
        while request_status(world.state, sub.request_id)["status"] != "verified":
            assert datetime.now(UTC).timestamp() < deadline, request_status(world.state, sub.request_id)
            threading.Event().wait(0.05)
    finally:
        platform.stop()
        runner.join(10)
        platform.close()
    assert not runner.is_alive()


def test_a_code_is_never_derived_from_the_request(tmp_path: Path) -> None:
    codes = set()
    for i in range(3):
        world = World(tmp_path / str(i))
        sub = world.submit(REQUEST)
        world.run()
        codes.add(read_code(request_status(world.state, sub.request_id)["verification_code"]).compact)
    assert len(codes) == 3


def test_the_settings_file_sets_the_turnaround_and_a_bad_one_is_a_clear_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mra.cli import cli
    from mra.core.errors import MraError
    from mra.services.platform import load_settings

    paths = PlatformPaths(tmp_path)
    paths.root.mkdir(parents=True)
    paths.settings.write_text(json.dumps({"turnaround_working_days": 3}))
    settings = load_settings(tmp_path)
    assert settings.issuer_register == paths.register  # the default register lives in the state dir
    sub = prepare(REQUEST, state_dir=tmp_path, registry=REGISTRY, settings=settings, now=FRIDAY)
    assert sub.expected_by == datetime(2025, 10, 15, 10, 0, tzinfo=CST)
    assert "turnaround_working_days in the platform's settings" in sub.turnaround_source
    shown = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "platform", "settings", "--json"])
    assert shown.exit_code == 0, shown.output
    values = {s["key"]: s["value"] for s in json.loads(shown.output)["settings"]}
    assert values["mra.verification.turnaround_working_days"] == 3 and values["mra.verification.code_payload"] == 12

    paths.settings.write_text(json.dumps({"turnaround_working_days": "soon"}))
    with pytest.raises(MraError, match="turnaround_working_days"):
        load_settings(tmp_path)
    paths.settings.write_text("{not json")
    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "platform", "settings"])
    assert result.exit_code != 0 and isinstance(result.exception, MraError)


def test_the_intake_store_keeps_the_name_and_nothing_else_personal(world: World) -> None:
    import sqlite3

    accepted = world.submit(REQUEST)
    refused = world.submit(request(certificate__entry="I-999", holder__name="Refused Person"))
    db = sqlite3.connect(PlatformPaths(world.state).intake)
    dump = "\n".join(db.iterdump())
    db.close()
    for absent in ("Jane Smith", "J*** S****", "X1234567", "1988-04-12", "Refused Person"):
        assert absent not in dump  # the name and masked name are kept sealed under the holder's data key
    with closing(Intake(PlatformPaths(world.state).intake)) as intake:
        row = intake.get(accepted.request_id)
    with closing(PersonalData.at(world.state)) as personal:  # what the issuer is asked, and what a check shows
        assert row is not None and personal.open(accepted.holder_id, "name", row["name"]) == "Jane Smith"
        assert personal.open(accepted.holder_id, "masked_name", row["masked_name"]) == "J*** S****"
    assert accepted.request_id in dump and refused.request_id in dump
