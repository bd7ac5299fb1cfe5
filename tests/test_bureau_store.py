"""The SQLite bureau store passes the cases every bureau store passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.bureau_store_cases import BureauStoreCases

from mra.core.errors import MraError
from mra.services.bureau_sqlite import SqliteBureauStore
from mra.services.bureau_store import BureauStore


class TestSqliteBureauStore(BureauStoreCases):
    def create_store(self) -> BureauStore:
        return SqliteBureauStore(":memory:")


class TestSqliteBureauStoreOnDisk(BureauStoreCases):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def create_store(self) -> BureauStore:
        return SqliteBureauStore(self.dir / "bureau.db")


def test_a_read_model_of_the_old_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    with pytest.raises(MraError, match="mra replay"):
        SqliteBureauStore(path)


def test_a_stored_decision_id_is_shortened_as_its_uuid_bytes_are_whatever_the_id() -> None:
    import base64
    import random
    import uuid

    from mra.services.decision_codec import _long, _short

    def by_uuid(ident: str) -> str:
        try:
            return base64.urlsafe_b64encode(uuid.UUID(ident).bytes).decode()[:22]
        except ValueError:
            return ident

    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    ids += [i.upper() for i in ids[:50]] + ["", "x", "{" + ids[0] + "}", ids[0].replace("-", "")]
    for ident in ids[:2000]:  # one to three characters of a canonical id changed: spaces, signs, underscores, braces
        chars = list(ident)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(36)] = rng.choice("0aF -_+{}x")
        ids.append("".join(chars))
    for ident in ids:
        assert _short(ident) == by_uuid(ident), ident
    assert all(_long(_short(i)) == i for i in ids[:2000])
