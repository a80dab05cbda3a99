"""Row sources: a list or XCom in any of its shapes, and a SQL query read in chunks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from airflow_provider_waslah.batch.rows import iter_sql_rows, iter_value_rows
from airflow_provider_waslah.client.errors import WaslahInvalidInputError


def test_value_rows_in_every_shape() -> None:
    rows = [{"phone": "0813"}, {"phone": "0814"}]
    assert list(iter_value_rows(rows)) == rows
    assert list(iter_value_rows(iter(rows))) == rows
    assert list(iter_value_rows(str(rows))) == rows  # an XCom rendered as a Python literal
    assert list(iter_value_rows('[{"phone": "0813"}]')) == [{"phone": "0813"}]
    assert list(iter_value_rows({"phone": "0813"})) == [{"phone": "0813"}]
    for bad in (None, 5, "not a list"):
        with pytest.raises(WaslahInvalidInputError):
            list(iter_value_rows(bad))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "rows.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (id INTEGER, phone TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"0813{i:08d}") for i in range(1, 2501)])
    return path


class DbApiOnly:
    """A hook without SQLAlchemy: read with the DB-API cursor's fetchmany."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fetches: list[int] = []

    def get_conn(self) -> Any:
        hook = self

        class Cursor(sqlite3.Cursor):
            def fetchmany(self, size: int | None = 1) -> list[Any]:
                hook.fetches.append(size or 0)
                return super().fetchmany(size)

        class Connection(sqlite3.Connection):
            def cursor(self, factory: Any = Cursor) -> Any:  # type: ignore[override]
                return super().cursor(factory)

        return sqlite3.connect(self.path, factory=Connection)


class WithEngine:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get_sqlalchemy_engine(self) -> Any:
        return sqlalchemy.create_engine(f"sqlite:///{self.path}")


def test_sql_rows_through_the_dbapi_cursor_in_chunks(db: Path) -> None:
    hook = DbApiOnly(db)
    rows = iter_sql_rows(hook, "SELECT id, phone FROM t WHERE id > ? ORDER BY id", [10], fetch_size=1000)
    assert next(rows) == {"id": 11, "phone": "081300000011"}
    assert hook.fetches == [1000]  # one chunk read, not the whole result
    assert sum(1 for _ in rows) == 2489


def test_sql_rows_through_sqlalchemy_streaming(db: Path) -> None:
    rows = list(iter_sql_rows(WithEngine(db), "SELECT id, phone FROM t WHERE id <= ?", (3,)))
    assert rows == [{"id": i, "phone": f"0813{i:08d}"} for i in (1, 2, 3)]
    named = list(iter_sql_rows(WithEngine(db), "SELECT id FROM t WHERE id = :id", {"id": 7}))
    assert named == [{"id": 7}]
