"""Deterministic identifiers: the same inputs always give the same id, so a re-publication is recognisable."""

from __future__ import annotations

import uuid

__all__ = ["stable_id"]

_NAMESPACE = uuid.UUID("6f1d7c3e-8a43-5b8e-9d55-2a4f6f0c9e11")


def stable_id(kind: str, *parts: object) -> str:
    """A UUIDv5 over ``kind`` and ``parts``; ``kind`` keeps ids of different things apart."""
    text = "\x1f".join([kind, *(str(p) for p in parts)])
    return str(uuid.uuid5(_NAMESPACE, text))
