"""The cheap publishing and decoding paths write and read exactly what the plain ones did.

Publishing serialises each event once (the bytes hashed are the bytes signed and sent), encodes a publisher's
constant headers once, and can take a body that is already serialised; decoding validates a current-version body
in one step. None of it may change a byte on the wire or what a reader gets, and hostile bodies still come back
as a :class:`DecodeError` with a reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import multiprocessing
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mra.events.bus import InMemoryTransport
from mra.events.envelope import (
    DecodeError,
    Envelope,
    Record,
    Stamp,
    content_hash,
    decode,
    encode,
    new_envelope,
    sha256_hex,
)
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CertificateVerified,
    Checkpoint,
    EmployerRef,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderRegistered,
    upcast,
)
from mra.events.signing import CheckpointPolicy, MemoryBook, Signer, TrustedKey, TrustStore, Verifier, public_key_text
from mra.events.topics import Topics

T = datetime(2025, 10, 9, 2, 0, tzinfo=UTC)
TOPICS = Topics("q.", 2)
Message = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]


class Sink:
    """A transport that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        self.sent.append((topic, key, value, list(headers)))

    def flush(self, timeout: float | None = None) -> None:
        return None


def started(holder: str = "h1", years: float = 3.0) -> EmploymentStarted:
    return EmploymentStarted(
        holder_id=holder,
        jurisdiction="beijing",
        employer=EmployerRef(name="北京示例科技有限公司", credit_code="91110108MA01K7QH2J", region="beijing"),
        started=date(2025, 9, 1),
        years_in_scope=years,
    )


def verified(holder: str = "h1") -> CertificateVerified:
    return CertificateVerified(
        request_id="r1",
        holder_id=holder,
        certificate_key="k1",
        entry_id="BJ2025-I-139",
        issuer="ACCA",
        verification_code="K7QH-2M9X-4TZB-P",
        verified_at=T,
        verified_by="beijing",
        disclaimer="仅核验真实性",
    )


def events() -> list[Event]:
    return [
        started(),
        verified(),
        HolderRegistered(holder_id="h2", category="foreign", birth_date=date(1980, 5, 1)),  # type: ignore[arg-type]
        EmploymentEnded(holder_id="", jurisdiction="tianjin", ended=date(2025, 10, 1)),  # no subject
    ]


def reference_hash(id: str, source: str, type: str, time: str, subject: str, body: bytes) -> str:
    """The content hash as it was first written: length-prefixed parts fed one by one, then the body."""
    h = hashlib.sha256()
    for part in (id, source, type, time, subject):
        b = part.encode()
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)
    h.update(body)
    return h.hexdigest()


def reference_message(env: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The message for ``env`` as the first encoder wrote it, serialising the body with pydantic's public API."""
    body = env.data.model_dump_json(by_alias=True).encode()
    time = env.time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", env.id.encode()),
        ("ce_source", env.source.encode()),
        ("ce_type", env.type.encode()),
        ("ce_dataschema", b"urn:mra:schema:" + env.type.encode()),
        ("ce_time", time.encode()),
        ("content-type", b"application/json"),
    ]
    if env.subject:
        headers.append(("ce_subject", env.subject.encode()))
    if env.stamp is not None:
        headers += [
            ("ce_mrapublisher", env.stamp.publisher.encode()),
            ("ce_mraepoch", env.stamp.epoch.encode()),
            ("ce_mraseq", str(env.stamp.seq).encode()),
            ("ce_mraprev", env.stamp.prev.encode()),
            ("ce_mrahash", reference_hash(env.id, env.source, env.type, time, env.subject, body).encode()),
        ]
    headers += [(f"ce_{k}", v.encode()) for k, v in env.extensions.items()]
    return env.key.encode(), body, headers


def publishers(sink: Sink) -> dict[str, Publisher]:
    intake = Signer.generate("beijing-intake")
    return {
        "unsigned": Publisher(sink, TOPICS, "beijing-intake"),
        "per-event": Publisher(sink, TOPICS, "beijing-intake", signer=intake),
        "checkpoints": Publisher(
            sink, TOPICS, "beijing-intake", signer=intake, checkpoints=CheckpointPolicy(every=3, ms=60_000)
        ),
    }


def trust_for(signer: Signer) -> TrustStore:
    key = TrustedKey(key_id=signer.key_id, public_key=public_key_text(signer.private_key.public_key()), created=T)
    return TrustStore().with_key(signer.identity, key, ("cn.jjj.*",))


# --- the wire ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["unsigned", "per-event", "checkpoints"])
def test_published_messages_are_byte_for_byte_what_the_first_encoder_wrote(mode: str) -> None:
    sink = Sink()
    pub = publishers(sink)[mode]
    envs = [pub.publish(e, time=T + timedelta(microseconds=i * 250_001)) for i, e in enumerate(events() * 2)]
    pub.flush()
    by_id = {e.id: e for e in envs}
    for topic, key, value, headers in sink.sent:
        env = decode(Record(topic, 0, 0, key, value, tuple(headers)))
        sent = by_id.get(env.id) or env  # a checkpoint was not returned to the caller: check its decoded self
        assert (key, value, headers) == reference_message(sent), env.type
        assert (key, value, headers) == encode(sent)
        assert env.hash == sent.hash and env.data == sent.data
    assert len(sink.sent) > len(envs) if mode == "checkpoints" else len(sink.sent) == len(envs)
    if mode == "per-event":
        assert all("mrasig" in e.extensions and "mrakey" in e.extensions for e in envs)


def test_the_content_hash_is_the_one_readers_have_always_computed() -> None:
    for parts in [
        ("a", "b", "c", "d", "e"),
        ("", "", "", "", ""),
        ("事件", "/mra/x", "t.v1", "2025-10-09T02:00:00Z", "h"),
    ]:
        for body in (b"", b"{}", '{"名": 1}'.encode()):
            assert content_hash(*parts, body) == reference_hash(*parts, body)


@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4094, 4095, 6600, 100_003])
def test_hashing_in_pieces_gives_the_plain_sha256(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_event_ids_are_random_version_4_uuids_in_canonical_form() -> None:
    pub = Publisher(Sink(), TOPICS, "x")
    ids = [pub.publish(started(f"h{i}"), time=T).id for i in range(1500)]  # more than one draw of randomness
    assert len(set(ids)) == 1500
    for ident in ids:
        u = uuid.UUID(ident)
        assert str(u) == ident and u.version == 4 and u.variant == uuid.RFC_4122
    assert len(pub.epoch) == 32 and uuid.UUID(hex=pub.epoch).version == 4


def _new_ids(n: int) -> list[str]:
    pub = Publisher(Sink(), TOPICS, "x")
    return [pub.publish(started(f"h{i}"), time=T).id for i in range(n)]


def _ids_in_child(queue: Any) -> None:
    queue.put(_new_ids(5))


def test_a_forked_process_does_not_repeat_its_parents_event_ids() -> None:
    _new_ids(1)  # the parent holds random bytes it has not used yet
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_ids_in_child, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(30)
    ours = _new_ids(5)
    assert child.exitcode == 0 and not set(ours) & set(theirs)


# --- serialised once --------------------------------------------------------------------------------------------


@contextmanager
def counting_serialisations(cls: type[Event]) -> Iterator[list[int]]:
    """Count every serialisation of ``cls`` (pydantic's own ``model_dump_json`` included)."""
    real = cls.__pydantic_serializer__
    calls = [0]

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def to_json(self, *args: Any, **kw: Any) -> bytes:
            calls[0] += 1
            return real.to_json(*args, **kw)

    cls.__pydantic_serializer__ = Counting()  # type: ignore[assignment]
    try:
        yield calls
    finally:
        cls.__pydantic_serializer__ = real


@pytest.mark.parametrize("mode", ["unsigned", "per-event", "checkpoints"])
def test_publishing_serialises_each_event_once_whatever_hashes_signs_or_encodes_it(mode: str) -> None:
    sink = Sink()
    pub = publishers(sink)[mode]
    with counting_serialisations(EmploymentStarted) as calls:
        env = pub.publish(started(), time=T)
        assert calls == [1]
        assert encode(env)[1] == env.body == sink.sent[0][2]  # the envelope keeps the bytes that were sent
        if pub.signer is not None and mode == "per-event":
            assert Verifier(trust_for(pub.signer)).signature(env) is None
        assert calls == [1]


def test_a_pre_serialised_body_is_hashed_and_sent_as_it_is_without_serialising_again() -> None:
    sink = Sink()
    pub = Publisher(sink, TOPICS, "bureau-beijing")
    event = started()
    stored = event.model_dump_json(by_alias=True).encode()  # what an outbox keeps
    plain = pub.publish(event, id="e-1", time=T)
    with counting_serialisations(EmploymentStarted) as calls:
        relayed = pub.publish(event, id="e-1", time=T, body=stored)
        assert calls == [0]
    first, second = (dict(m[3]) for m in sink.sent)
    assert sink.sent[0][2] == sink.sent[1][2] == stored
    assert relayed.hash == plain.hash and first["ce_mrahash"] == second["ce_mrahash"]
    assert {k: v for k, v in first.items() if k not in ("ce_mraseq", "ce_mraprev")} == {
        k: v for k, v in second.items() if k not in ("ce_mraseq", "ce_mraprev")
    }
    assert decode(Record("q.holders", 0, 1, *sink.sent[1][1:3], tuple(sink.sent[1][3]))).data == event


def test_an_envelope_copied_with_other_data_serialises_the_new_data() -> None:
    pub = Publisher(InMemoryTransport(), TOPICS, "x")
    env = pub.envelope(started("h1"), time=T)
    other = dataclasses.replace(env, data=started("h-other"), hash="")
    assert b"h-other" in other.body and b"h-other" in encode(other)[1]
    assert dataclasses.replace(env, id="y").body is env.body  # same data: the same bytes


def test_new_envelope_builds_the_same_envelope_as_the_dataclass() -> None:
    names = [f.name for f in dataclasses.fields(Envelope)]
    assert list(inspect.signature(new_envelope).parameters) == names
    data = started()
    args = ("i", "/s", data.ce_type(), T, "h1", "h1", data, Stamp("p", "e", 3, "x"), {"a": "b"}, "d", None)
    fast, slow = new_envelope(*args), Envelope(*args)
    assert fast == slow and vars(fast) == vars(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.id = "changed"  # type: ignore[misc]


# --- checkpoints ------------------------------------------------------------------------------------------------


def test_checkpoints_come_every_n_events_and_every_copy_verifies() -> None:
    signer = Signer.generate("beijing-intake")
    sink = Sink()
    pub = Publisher(sink, TOPICS, signer.identity, signer=signer, checkpoints=CheckpointPolicy(every=4, ms=60_000))
    for i in range(9):
        pub.publish(started(f"h{i}") if i % 2 else verified(f"h{i}"), time=T)
    read = [decode(Record(t, 0, n, k, v, tuple(h))) for n, (t, k, v, h) in enumerate(sink.sent)]
    cps = [e for e in read if isinstance(e.data, Checkpoint)]
    assert [(c.data.first_seq, c.data.last_seq) for c in cps] == [
        (0, 3),
        (0, 3),
        (4, 9),
        (4, 9),
    ]  # a checkpoint covers the copies before it
    assert {c.data.TOPIC for c in cps[:2]} == {"holders", "verification"}
    assert cps[0].body == cps[1].body and cps[0].hash != cps[1].hash  # the same fields, two events of the chain
    verifier = Verifier(trust_for(signer), MemoryBook())
    assert [verifier.checkpoint(c) for c in cps] == [None] * 4
    pub.flush()  # the last event went to verification alone: one copy
    last = decode(Record("t", 0, 0, *sink.sent[-1][1:3], tuple(sink.sent[-1][3])))
    assert isinstance(last.data, Checkpoint) and (last.data.first_seq, last.data.last_seq) == (10, 12)
    pub.flush()
    assert len(sink.sent) == 9 + 4 + 1  # nothing new after the last flush: no checkpoint about checkpoints


# --- decoding ---------------------------------------------------------------------------------------------------


def message(event: Event, **replace_headers: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key, value, headers = encode(Publisher(InMemoryTransport(), TOPICS, "x").envelope(event, time=T))
    return key, value, [(k, replace_headers.get(k, v)) for k, v in headers]


def read(value: bytes, ce_type: str = "cn.jjj.holders.employment_started.v2", event: Event | None = None) -> Envelope:
    key, _, headers = message(event or started(), ce_type=ce_type.encode())
    return decode(Record("q.holders", 0, 0, key, value, tuple(headers)))


def v1_body(years: str) -> bytes:
    return (
        '{"holder_id": "h1", "jurisdiction": "beijing", "employer": {"name": "E", "credit_code": "C", '
        f'"region": "beijing"}}, "started": "2025-09-01", "years": {years}}}'
    ).encode()


def test_a_decoded_event_keeps_the_bytes_it_was_read_from() -> None:
    key, value, headers = message(started())
    env = decode(Record("q.holders", 0, 0, key, value, tuple(headers)))
    assert env.body is value and env.data == started()
    old = read(v1_body("4"), "cn.jjj.holders.employment_started.v1")
    assert isinstance(old.data, EmploymentStarted) and json.loads(old.body)["years_in_scope"] == 4.0  # upcast


@pytest.mark.parametrize("ce_type", ["cn.jjj.holders.employment_started.v2", "cn.jjj.holders.employment_started.v1"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 100_000, "body is nested too deeply to read as JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body is nested too deeply to read as JSON"),
        (b"{not json", "body is not JSON: "),
        (b"\xff\xfe{}", "body is not JSON: "),
        (b"", "body is not JSON: "),
        (b"[1, 2]", "body is not a JSON object"),
        (b'"text"', "body is not a JSON object"),
        (b"null", "body is not a JSON object"),
    ],
)
def test_bodies_that_are_not_json_objects_are_refused_with_the_reason(ce_type: str, value: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match="^" + reason):
        read(value, ce_type)


def test_a_field_that_fails_validation_is_named() -> None:
    body = json.loads(started().model_dump_json())
    body["employer"]["credit_code"] = 7
    with pytest.raises(DecodeError, match=r"^invalid cn\.jjj\.holders\.employment_started\.v2 body: employer\.credit"):
        read(json.dumps(body).encode())
    with pytest.raises(DecodeError, match=r"body: years_in_scope: Input should be greater than or equal to 0"):
        read(v1_body("-2"), "cn.jjj.holders.employment_started.v1")


@pytest.mark.parametrize(("years", "error"), [('"three"', "ValueError"), ("[3]", "TypeError"), ("{}", "TypeError")])
def test_a_v1_body_its_upcaster_cannot_read_is_a_decode_error_naming_the_step(years: str, error: str) -> None:
    with pytest.raises(DecodeError) as caught:
        read(v1_body(years), "cn.jjj.holders.employment_started.v1")
    reason = str(caught.value)
    target = EmploymentStarted.VERSION
    assert reason.startswith(f"cannot decode: {error} upcasting cn.jjj.holders.employment_started.v1 to v{target}: ")


def test_headers_given_as_bytearray_or_none_are_read_as_bytes() -> None:
    key, value, headers = message(started())
    loose: list[tuple[str, Any]] = [(k, bytearray(v)) for k, v in headers] + [("ce_note", bytearray(b"n"))]
    env = decode(Record("q.holders", 0, 0, key, value, tuple(loose)))
    assert env.data == started() and env.extensions == {"note": "n"}
    with pytest.raises(DecodeError, match="ce_note is empty"):  # None reads as b"": an empty attribute
        decode(Record("q.holders", 0, 0, key, value, (*loose[:-1], ("ce_note", None))))


def test_a_record_without_ce_time_and_with_an_impossible_timestamp_is_refused() -> None:
    key, value, headers = message(started())
    headers = [(k, v) for k, v in headers if k != "ce_time"]
    with pytest.raises(DecodeError, match="not a time"):
        decode(Record("q.holders", 0, 0, key, value, tuple(headers), 2**62))


# --- the one-step validation reads what json.loads + model_validate read -------------------------------------------


def reference_data(ce_type: str, value: bytes) -> Event | None:
    """What decoding gave before the one-step path: the body through json.loads, the upcasters, model_validate."""
    try:
        raw = json.loads(value)
        if not isinstance(raw, dict):
            return None
        cls, body = upcast(ce_type, raw)
        return cls.model_validate(body)
    except (ValueError, ValidationError, RecursionError):
        return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SAMPLES = [json.loads(e.model_dump_json()) for e in events()]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    i = draw(st.integers(0, len(SAMPLES) - 1))
    body: dict[str, Any] = json.loads(json.dumps(SAMPLES[i]))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "drop", "add", "string"]))
        name = draw(st.sampled_from(sorted(body))) if body else "x"
        if op == "set":
            body[name] = draw(json_values)
        elif op == "drop":
            body.pop(name, None)
        elif op == "add":
            body[draw(st.text(max_size=6))] = draw(json_values)
        else:  # a value in another JSON type that might still be accepted: "3" for 3, 3 for "3", and so on
            value = body.get(name)
            body[name] = str(value) if not isinstance(value, str) else draw(st.integers() | st.floats(allow_nan=False))
    return events()[i].ce_type(), json.dumps(body, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_one_step_validation_accepts_and_refuses_what_the_two_step_path_did(sample: tuple[str, bytes]) -> None:
    ce_type, value = sample
    expected = reference_data(ce_type, value)
    key, _, headers = message(events()[0], ce_type=ce_type.encode())
    try:
        got: Event | None = decode(Record("q.holders", 0, 0, key, value, tuple(headers))).data
    except DecodeError:
        got = None
    assert got == expected
