"""Rows rendered, checked and keyed before the first send; duplicates; the spool."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_waslah.batch.prepare import (
    InvalidRow,
    PreparedRow,
    RowPreparer,
    RowSpool,
    message_key,
    prepare_all,
)
from airflow_provider_waslah.client.errors import WaslahInvalidInputError

ENV = jinja2.Environment(undefined=jinja2.StrictUndefined)


def preparer(row_key: str | None = None, **templates: str | None) -> RowPreparer:
    sources = {"to": "{{ row.phone }}", "text": "Halo {{ row.name }}, tagihan {{ row.inv }} ({{ ds }})", **templates}
    compiled = {name: ENV.from_string(value) if value is not None else None for name, value in sources.items()}
    return RowPreparer(
        compiled,
        {"ds": "2026-11-25"},
        instance_key="demo",
        row_key=row_key,
        trusted_origin="https://waslah.id/api/v1",
    )


def row(i: int = 1, **extra: Any) -> dict[str, Any]:
    return {"phone": f"0813{i:08d}", "name": f"c{i}", "inv": f"INV-{i:04d}", **extra}


def test_a_row_becomes_one_text_message_with_the_task_context() -> None:
    prepared = preparer(row_key="inv").prepare(1, row(7))
    assert prepared == PreparedRow(
        1,
        "INV-0007",
        "6281300000007",
        {"instance_key": "demo", "to": "6281300000007", "text": "Halo c7, tagihan INV-0007 (2026-11-25)"},
    )
    assert (prepared.call().path, prepared.call().json) == ("/messages", prepared.fields)


def test_a_row_with_a_url_is_media_typed_from_the_url() -> None:
    prepared = preparer(url="{{ row.pdf }}", caption="Invoice {{ row.inv }}", filename="{{ row.inv }}.pdf").prepare(
        2, row(2, pdf="https://cdn.example.com/inv/0002.pdf")
    )
    assert isinstance(prepared, PreparedRow)
    assert prepared.fields["type"] == "document" and prepared.fields["filename"] == "INV-0002.pdf"
    assert prepared.call().json["caption"] == "Invoice INV-0002"


@pytest.mark.parametrize(
    ("the_row", "templates", "reason"),
    [
        (row(phone="0812"), {}, "`to`: '0812' must have 8-15 digits, has 5"),
        (row(phone=""), {}, "`to`: rendered empty"),
        ({"name": "x"}, {}, "`to`: template failed: UndefinedError: 'dict object' has no attribute 'phone'"),
        (row(name="x" * 4000), {}, "`text`: must be at most 4000 characters"),
        (row(pdf="http://127.0.0.1/a.pdf"), {"url": "{{ row.pdf }}"}, "`url`: host '127.0.0.1' is localhost"),
        (row(pdf="https://cdn.example.com/a.xyz"), {"url": "{{ row.pdf }}"}, "`type`: cannot be inferred"),
        (row(), {"type": "image"}, "`url`: is required for a image message"),
        (row(), {"text": "{{ row.missing }}"}, "`text`: template failed"),
    ],
)
def test_invalid_rows_name_the_field_and_rule(the_row: dict[str, Any], templates: dict[str, str], reason: str) -> None:
    prepared = preparer(**templates).prepare(12, the_row)
    assert isinstance(prepared, InvalidRow)
    assert prepared.number == 12 and prepared.reason.startswith(reason)


def test_not_a_dict_and_a_missing_key_column() -> None:
    assert preparer().prepare(3, ["0813", "x"]) == InvalidRow(3, None, "is a list, not a dict of columns")
    missing = preparer(row_key="id").prepare(4, row())
    assert isinstance(missing, InvalidRow) and missing.reason == "`row_key`: the row has no column 'id'"
    empty = preparer(row_key="inv").prepare(5, row(inv=None))
    assert isinstance(empty, InvalidRow) and empty.reason == "`row_key`: column 'inv' is empty"
    assert InvalidRow(1_234, "INV-9", "`to`: bad").describe() == "row 1,234 (INV-9): `to`: bad"


def test_to_and_text_are_required() -> None:
    with pytest.raises(WaslahInvalidInputError, match="`to`"):
        RowPreparer({"text": ENV.from_string("x")}, {}, instance_key="demo")
    with pytest.raises(WaslahInvalidInputError, match="`text`"):
        RowPreparer({"to": ENV.from_string("x")}, {}, instance_key="demo")


def test_the_hash_key_is_the_message_not_the_rest_of_the_row() -> None:
    first = preparer().prepare(1, row(1, queried_at="10:00"))
    again = preparer().prepare(9, row(1, queried_at="10:05"))  # a volatile column changed
    other = preparer().prepare(2, row(2))
    assert isinstance(first, PreparedRow) and isinstance(again, PreparedRow) and isinstance(other, PreparedRow)
    assert first.key == again.key != other.key
    assert first.key.startswith("h:") and len(first.key) == 22


@given(st.dictionaries(st.sampled_from(["to", "text", "url", "caption"]), st.text(max_size=20)))
def test_message_key_ignores_field_order(fields: dict[str, str]) -> None:
    assert message_key(fields) == message_key(dict(reversed(list(fields.items()))))


def test_prepare_all_spools_valid_rows_and_reports_every_bad_one_by_number() -> None:
    rows = [row(i) for i in range(1, 101)]
    rows[9]["phone"] = "0812"
    rows[49] = dict(rows[48])  # a duplicate of row 49
    preparation = prepare_all(iter(rows), preparer(row_key="inv"))
    with preparation.spool:
        assert (preparation.rows, preparation.spool.count, preparation.invalid_count) == (100, 98, 2)
        assert [bad.number for bad in preparation.invalid] == [10, 50]
        assert preparation.invalid[1].reason == "duplicate row key of row 49"
        assert [prepared.number for prepared in preparation.spool][:11] == [*range(1, 10), 11, 12]
        assert sum(1 for _ in preparation.spool) == 98  # read again, same rows
        assert "row 10 (INV-0010): `to`" in preparation.invalid_text()


def test_invalid_text_names_at_most_20() -> None:
    preparation = prepare_all(({"phone": "x"} for _ in range(25)), preparer())
    preparation.spool.close()
    text = preparation.invalid_text()
    assert text.count("\n") == 20 and text.endswith("... and 5 more")


def test_spool_round_trip() -> None:
    with RowSpool() as spool:
        spool.add(PreparedRow(1, "k", "62813", {"to": "62813", "text": "Halo ✓"}))
        assert list(spool) == [PreparedRow(1, "k", "62813", {"to": "62813", "text": "Halo ✓"})]
