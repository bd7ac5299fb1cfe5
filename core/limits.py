"""Limits on input read from people and files: how large and how deeply nested a JSON document may be.

A nesting check that does not recurse: ``json.loads`` of a document nested 100,000 deep raises ``RecursionError``
(a traceback, not a reason); this counts brackets first, outside strings, and refuses with one.
"""

from __future__ import annotations

__all__ = ["MAX_JSON_DEPTH", "MAX_REQUEST_BYTES", "json_too_large"]

MAX_REQUEST_BYTES = 64 * 1024
"""The largest request file read (a request is about 1 KB)."""
MAX_JSON_DEPTH = 32
"""The deepest nesting of objects and arrays read (a request is 2 deep)."""


def json_too_large(text: str, max_bytes: int = MAX_REQUEST_BYTES, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``text`` is too large or too deeply nested to read as JSON, or None."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        return f"{size} bytes, more than the {max_bytes} a request may have"
    depth = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > max_depth:
                return f"nested more than {max_depth} deep"
        elif c in "]}":
            depth -= 1
    return None
