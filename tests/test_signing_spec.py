"""docs/contracts/signing.md: its test vectors are what mra's code signs, and its recipe alone, implemented without
mra (tests/support/signing_recipe.py), reproduces them and makes events mra's reader accepts."""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from support import signing_recipe as recipe

from mra.events.bus import InMemoryTransport
from mra.events.envelope import Record, decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import EmploymentEnded, EmploymentStarted
from mra.events.signing import (
    MemoryBook,
    Signer,
    TrustedIdentity,
    TrustedKey,
    TrustStore,
    Verifier,
    canonical_checkpoint,
    canonical_event,
    key_id,
    make_checkpoint,
    public_key_text,
)
from mra.events.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "contracts" / "signing.md"


def vectors() -> dict[str, Any]:
    """The JSON block after ``<!-- vectors -->`` in signing.md."""
    text = SPEC.read_text(encoding="utf-8")
    block = text.split("<!-- vectors -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)  # type: ignore[no-any-return]


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in event["headers"]}


def test_the_recipe_module_imports_nothing_of_mra() -> None:
    tree = ast.parse((ROOT / "tests" / "support" / "signing_recipe.py").read_text(encoding="utf-8"))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= {"__future__", "base64", "hashlib", "cryptography"}


def test_the_vectors_are_what_mra_signs() -> None:
    """mra's reader, hash and signer over the vectors' messages (read as they travel, whatever version of the
    model is current now) give the vectors' hashes, bytes and signatures, and its publisher lays headers out so."""
    v = vectors()
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["private_key_seed_hex"]))
    assert v["key_id"] == key_id(private.public_key()) and v["public_key"] == public_key_text(private.public_key())
    signer = Signer("hr-example", v["key_id"], private)
    trusted = TrustedKey(key_id=v["key_id"], public_key=v["public_key"], created=datetime(2025, 1, 1, tzinfo=UTC))
    trust = TrustStore(identities={"hr-example": _identity(("cn.jjj.holders.*",), "beijing", trusted)})
    verifier = Verifier(trust, MemoryBook())
    for event in v["events"]:
        headers = tuple((k, h.encode()) for k, h in event["headers"])
        env = decode(Record("mra.holders", 0, 0, event["key"].encode(), event["value"].encode(), headers))
        assert env.hash == event["content_hash"]
        signed = canonical_event(env, v["key_id"])
        assert signed.hex() == event["signed_bytes_hex"]
        assert signer.sign(signed) == event["signature"]
        assert verifier.per_event(env) is None
    cp_fields = v["checkpoint"]
    hashes = [e["content_hash"] for e in v["events"]]
    cp = make_checkpoint(signer, cp_fields["epoch"], 0, "", hashes, "holders")
    assert cp is not None
    assert {k: cp_fields[k] for k in json.loads(cp.model_dump_json())} == json.loads(cp.model_dump_json())
    signed = canonical_checkpoint(cp.publisher, cp.epoch, cp.first_seq, cp.last_seq, cp.prev, cp.hashes, cp.key_id)
    assert signed.hex() == cp_fields["signed_bytes_hex"]

    pub = Publisher(InMemoryTransport(), Topics(), "hr-example", source="/hr/example", signer=signer)
    ended = EmploymentEnded(holder_id="h-3b1f0c9e2a7d4c58", jurisdiction="beijing", ended=date(2026, 1, 1))
    _, _, ours = encode(pub.envelope(ended))
    assert [k for k, _ in ours] == [k for k, _ in v["events"][0]["headers"]]


def test_the_recipe_alone_reproduces_every_vector() -> None:
    v = vectors()
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["private_key_seed_hex"]))
    assert recipe.key_id(private) == v["key_id"] and recipe.public_key(private) == v["public_key"]
    for event in v["events"]:
        headers, value = _headers(event), event["value"].encode()
        assert recipe.content_hash(headers, value) == event["content_hash"] == headers["ce_mrahash"]
        signed = recipe.event_signed_bytes(headers, event["key"], value, headers["ce_mrakey"])
        assert signed.hex() == event["signed_bytes_hex"]
        assert recipe.sign(private, signed) == event["signature"] == headers["ce_mrasig"]
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(v["public_key"]))
        public.verify(base64.b64decode(event["signature"]), signed)  # raises if it does not verify
    cp = v["checkpoint"]
    signed = recipe.checkpoint_signed_bytes(
        cp["publisher"], cp["epoch"], cp["first_seq"], cp["last_seq"], cp["prev"], cp["hashes"], cp["key_id"]
    )
    assert signed.hex() == cp["signed_bytes_hex"]
    assert recipe.sign(private, signed) == cp["signature"]
    second = _headers(v["events"][1])
    assert second["ce_mraprev"] == v["events"][0]["content_hash"]  # the chain


def _identity(grants: tuple[str, ...], jurisdiction: str, key: TrustedKey) -> TrustedIdentity:
    """An outside identity's grant, scoped to ``jurisdiction`` where the trust store scopes grants."""
    scoped = "jurisdictions" in TrustedIdentity.model_fields
    scope: dict[str, Any] = {"jurisdictions": (jurisdiction,)} if scoped else {}
    return TrustedIdentity(may_publish=grants, keys=(key,), **scope)


def _trust(private: Ed25519PrivateKey, identity: str, grants: tuple[str, ...]) -> TrustStore:
    key = TrustedKey(
        key_id=recipe.key_id(private), public_key=recipe.public_key(private), created=datetime(2025, 1, 1, tzinfo=UTC)
    )
    return TrustStore(identities={identity: _identity(grants, "tianjin", key)})


def test_an_event_signed_from_the_recipe_alone_is_accepted_by_mras_reader_and_a_changed_byte_is_not() -> None:
    private = Ed25519PrivateKey.generate()
    value = json.dumps(
        {
            "holder_id": "h-77",
            "jurisdiction": "tianjin",
            "employer": {"name": "天津某公司", "credit_code": "91120000X", "region": "tianjin"},
            "started": "2025-11-03",
            "years_in_scope": 2,
        },
        ensure_ascii=False,
    ).encode()
    ce = {
        "ce_specversion": "1.0",
        "ce_id": "e5b0c3f4-1111-4a2b-8c3d-000000000001",
        "ce_source": "/hr/tianjin-example",
        "ce_type": "cn.jjj.holders.employment_started.v2",
        "ce_time": "2025-11-03T01:02:03.5+08:00",
        "ce_subject": "h-77",
        "content-type": "application/json",
    }
    headers = recipe.signed_message(private, "hr-tianjin", "run-1", 0, "", "h-77", ce, value)
    verifier = Verifier(_trust(private, "hr-tianjin", ("cn.jjj.holders.employment_*",)), MemoryBook())

    def check(headers: list[tuple[str, bytes]], key: bytes = b"h-77", body: bytes = value) -> str | None:
        return verifier.per_event(decode(Record("mra.holders", 0, 0, key, body, tuple(headers))))

    assert check(headers) is None
    env = decode(Record("mra.holders", 0, 0, b"h-77", value, tuple(headers)))
    assert isinstance(env.data, EmploymentStarted) and env.data.years_in_scope == 2.0
    assert env.hash == dict(headers)["ce_mrahash"].decode()
    assert (check(headers, key=b"h-78") or "").startswith("bad signature:")  # the key is signed
    assert (check(headers, body=value.replace(b"2025-11-03", b"2025-11-02")) or "").startswith("bad signature:")
    later = [(k, b"2025-11-03T01:02:03.500+08:00" if k == "ce_time" else h) for k, h in headers]
    assert (check(later) or "").startswith("bad signature:")  # the time text is hashed as sent
    wrong = Verifier(_trust(private, "hr-tianjin", ("cn.jjj.verification.*",)), MemoryBook())
    refused = wrong.per_event(decode(Record("mra.holders", 0, 0, b"h-77", value, tuple(headers))))
    assert (refused or "").startswith("unauthorised: hr-tianjin may not publish")
