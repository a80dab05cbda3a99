"""Where a batch's rows come from: a list of dicts (or an upstream XCom), or a SQL query read in chunks.

Both sources are iterators of ``dict`` rows, so the rest of the batch never holds more than one
row (plus what the SQL driver buffers) in memory.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from airflow_provider_waslah.client.errors import WaslahInvalidInputError

log = logging.getLogger(__name__)

#: Rows fetched from the database per round trip.
DEFAULT_FETCH_SIZE = 1000


def _parse_rows_text(text: str) -> Any:
    """A list rendered to a string by Jinja (JSON or a Python literal), e.g. ``"[{'phone': ...}]"``."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise WaslahInvalidInputError(
            "rows", "is a string that is not a list of rows (JSON or a Python literal)"
        ) from None


def iter_value_rows(value: object) -> Iterator[Any]:
    """The rows of ``rows=``: a list (or any iterable, e.g. a lazy XCom) of dicts, or such a list as a string.

    Items are yielded as they are; the caller reports an item that is not a dict as an invalid row.
    """
    if value is None:
        raise WaslahInvalidInputError("rows", "is required (or give sql=)")
    if isinstance(value, str):
        value = _parse_rows_text(value.strip())
    if isinstance(value, Mapping):
        yield value
        return
    if isinstance(value, (bytes, int, float)) or not isinstance(value, Iterable):
        raise WaslahInvalidInputError("rows", f"must be a list of dicts, got {type(value).__name__}")
    yield from value


class _SqlHook(Protocol):
    def get_conn(self) -> Any: ...


def iter_sql_rows(
    hook: _SqlHook, sql: str, parameters: Any = None, fetch_size: int = DEFAULT_FETCH_SIZE
) -> Iterator[dict[str, Any]]:
    """Run ``sql`` through a ``common.sql`` hook and yield each row as a dict, ``fetch_size`` rows at a time.

    Through SQLAlchemy with ``stream_results`` when the hook supports it (server-side cursors on
    PostgreSQL and MySQL, whose plain DB-API cursors would load the whole result on execute),
    else with the DB-API cursor's ``fetchmany``. ``parameters`` use the driver's own style
    (``?`` for SQLite, ``%s`` for PostgreSQL), as with ``SQLExecuteQueryOperator``.
    """
    engine = _engine_of(hook)
    if engine is not None:
        yield from _stream_sqlalchemy(engine, sql, parameters, fetch_size)
    else:
        yield from _stream_dbapi(hook, sql, parameters, fetch_size)


def _engine_of(hook: Any) -> Any:
    get_engine = getattr(hook, "get_sqlalchemy_engine", None)
    if get_engine is None:
        return None
    try:
        return get_engine()
    except Exception as error:  # hooks without a SQLAlchemy URL raise all sorts of errors
        log.info("Reading rows with the DB-API cursor (no SQLAlchemy engine: %s)", error)
        return None


def _stream_sqlalchemy(engine: Any, sql: str, parameters: Any, fetch_size: int) -> Iterator[dict[str, Any]]:
    with engine.connect() as connection:
        streaming = connection.execution_options(stream_results=True, max_row_buffer=fetch_size)
        if parameters:
            # One statement: a list of positional values is a tuple to SQLAlchemy (a list means executemany).
            values = parameters if isinstance(parameters, Mapping) else tuple(parameters)
            result = streaming.exec_driver_sql(sql, values)
        else:
            result = streaming.exec_driver_sql(sql)
        try:
            for row in result.mappings():
                yield dict(row)
        finally:
            result.close()


def _stream_dbapi(hook: _SqlHook, sql: str, parameters: Any, fetch_size: int) -> Iterator[dict[str, Any]]:
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        try:
            if parameters:
                cursor.execute(sql, parameters)
            else:
                cursor.execute(sql)
            columns = [column[0] for column in cursor.description or ()]
            while chunk := cursor.fetchmany(fetch_size):
                for values in chunk:
                    yield dict(zip(columns, values, strict=True))
        finally:
            cursor.close()
    finally:
        connection.close()
