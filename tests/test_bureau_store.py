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
