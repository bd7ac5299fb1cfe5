"""docs/contracts/signing.md's recipe, written from the page alone: standard library and ``cryptography``, no mra.

``tests/test_signing_spec.py`` checks that this module imports nothing of mra, reproduces the page's test vectors,
and makes events mra's reader accepts.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

EVENT_TAG = "mra-event-signature/1"
CHECKPOINT_TAG = "mra-checkpoint/1"


def lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def text(s: str) -> bytes:
    return s.encode("utf-8")


def key_id(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key(private: Ed25519PrivateKey) -> str:
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def content_hash(headers: dict[str, str], value: bytes) -> str:
    parts = (
        headers["ce_id"],
        headers["ce_source"],
        headers["ce_type"],
        headers["ce_time"],
        headers.get("ce_subject", ""),
    )
    return hashlib.sha256(b"".join(lp(text(p)) for p in parts) + value).hexdigest()


def event_signed_bytes(headers: dict[str, str], key: str, value: bytes, kid: str) -> bytes:
    parts = (
        EVENT_TAG,
        content_hash(headers, value),
        key,
        headers["ce_mrapublisher"],
        headers["ce_mraepoch"],
        headers["ce_mraseq"],
        headers["ce_mraprev"],
        kid,
    )
    return b"".join(lp(text(p)) for p in parts)


def checkpoint_signed_bytes(
    publisher: str, epoch: str, first_seq: int, last_seq: int, prev: str, hashes: list[str], kid: str
) -> bytes:
    folded = hashlib.sha256(b"".join(bytes.fromhex(h) for h in hashes)).hexdigest()
    parts = (CHECKPOINT_TAG, publisher, epoch, str(first_seq), str(last_seq), prev, folded, kid)
    return b"".join(lp(text(p)) for p in parts)


def sign(private: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(private.sign(data)).decode()


def signed_message(
    private: Ed25519PrivateKey,
    identity: str,
    epoch: str,
    seq: int,
    prev: str,
    key: str,
    headers: dict[str, str],
    value: bytes,
) -> list[tuple[str, bytes]]:
    """The headers of a signed event: ``headers`` (the ce_ attributes) plus the stamp, hash and signature."""
    kid = key_id(private)
    full = {**headers, "ce_mrapublisher": identity, "ce_mraepoch": epoch, "ce_mraseq": str(seq), "ce_mraprev": prev}
    full["ce_mrahash"] = content_hash(full, value)
    full["ce_mrakey"] = kid
    full["ce_mrasig"] = sign(private, event_signed_bytes(full, key, value, kid))
    return [(k, v.encode()) for k, v in full.items()]
