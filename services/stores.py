"""Where a bureau keeps its read model: ``--store URL`` / ``MRA_STORE``.

- none: one SQLite file per bureau in the state directory (the one-machine default);
- ``sqlite:///PATH``: that SQLite file;
- ``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``): a PostgreSQL database shared by every instance of the
  bureau, in the schema
  ``<topic prefix>bureau_<jurisdiction>`` (``mra_bureau_beijing``) (:mod:`mra.services.bureau_postgres`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mra.core.errors import ValidationFailed
from mra.services.bureau_sqlite import SqliteBureauStore
from mra.services.bureau_store import BureauStore
from mra.services.runtime import Runtime

__all__ = ["describe_store", "open_store", "store_url"]


def store_url(explicit: str | None = None) -> str | None:
    """``--store``, else ``MRA_STORE``, else None (the SQLite default)."""
    url = explicit or os.environ.get("MRA_STORE") or None
    if url is not None and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValidationFailed(f"--store must be sqlite:///PATH or postgresql://…, not {url!r}")
    return url


def open_store(runtime: Runtime, jurisdiction: str, url: str | None = None) -> BureauStore:
    """The bureau's read model the URL names (see the module's docstring)."""
    from mra.services.bureaus import bureau_db

    url = store_url(url)
    if url is None:
        return SqliteBureauStore(bureau_db(runtime, jurisdiction))
    if url.startswith("sqlite:///"):
        return SqliteBureauStore(Path(url.removeprefix("sqlite://")))
    from mra.services.bureau_postgres import PostgresBureauStore, schema_for

    return PostgresBureauStore(url, schema_for(jurisdiction, runtime.topics.prefix))


def describe_store(url: str | None) -> str:
    """The store's URL without a password, for output."""
    url = store_url(url)
    if url is None:
        return "sqlite (state directory)"
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url
