"""Deterministic identifiers: the same inputs always give the same id, so a re-publication is recognisable."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["stable_id"]

_NAMESPACE = uuid.UUID("6f1d7c3e-8a43-5b8e-9d55-2a4f6f0c9e11")
_NS_BYTES = _NAMESPACE.bytes
_SHA1_NS = hashlib.sha1(_NS_BYTES, usedforsecurity=False)


def stable_id(kind: str, *parts: object) -> str:
    """A UUIDv5 over ``kind`` and ``parts``; ``kind`` keeps ids of different things apart.

    Computed as :func:`uuid.uuid5` defines it (SHA-1 of namespace and name, version and variant bits set),
    without building a :class:`uuid.UUID`: a bureau makes two of these per decision.
    """
    text = "\x1f".join([kind, *map(str, parts)])
    sha = _SHA1_NS.copy()
    sha.update(text.encode())
    h = bytearray(sha.digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
