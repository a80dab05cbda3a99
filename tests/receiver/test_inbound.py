"""The DAG-side helpers: the asset to schedule on, and typed messages from ``triggering_asset_events``."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.inbound import (
    InboundMessage,
    MessageUpdate,
    asset_uri,
    inbound_messages,
    message_updates,
    parse_asset_uri,
    waslah_asset,
    webhook_events,
)
from airflow_provider_waslah.receiver.verify import VerifiedDelivery

T0 = datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)


def stored(event: str, event_id: str, data: dict[str, Any], seconds: int = 0, aliases: tuple[str, ...] = ()) -> Any:
    """An asset event exactly as the task context hands it over, with the receiver's ``extra``."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    delivery = VerifiedDelivery("waslah_default", event, event_id, "demo", 1_795_000_000 + seconds, data, "d")
    return AssetEventDagRunReferenceResult.model_validate(
        {
            "asset": {"name": delivery.asset_uri, "uri": delivery.asset_uri, "extra": {}},
            "extra": delivery.extra(),
            "source_task_id": None,
            "source_dag_id": None,
            "source_run_id": None,
            "source_map_index": None,
            "source_aliases": [{"name": alias} for alias in aliases],
            "timestamp": T0 + timedelta(seconds=seconds),
        }
    )


def received(event_id: str, remote_jid: str, body: str, seconds: int = 0, aliases: tuple[str, ...] = ()) -> Any:
    data = {
        "message_id": 7,
        "instance_key": "demo",
        "from": remote_jid.split("@")[0],
        "remote_jid": remote_jid,
        "body": body,
        "message_type": "text",
        "received_at": "2026-11-25T14:00:00+07:00",
    }
    return stored("message.received", event_id, data, seconds, aliases)


def test_the_asset_the_issue_names() -> None:
    asset = waslah_asset("toko-utama")
    assert asset.uri == asset.name == "waslah://waslah_default/toko-utama/message.received"
    assert asset.group == "waslah"
    assert waslah_asset("demo", "message.status", conn_id="wa_shop").uri == "waslah://wa_shop/demo/message.status"
    with pytest.raises(ValueError, match="instance_key"):
        waslah_asset("")


@settings(max_examples=200, deadline=None)
@given(
    instance=st.text(min_size=1, max_size=40),
    event=st.sampled_from(["message.received", "message.sent", "message.status", "x/y#z?"]),
    conn_id=st.from_regex(r"[A-Za-z0-9_.\-]{1,30}", fullmatch=True),
)
def test_any_instance_key_gives_one_unambiguous_uri_airflow_keeps(instance: str, event: str, conn_id: str) -> None:
    from airflow.sdk import Asset

    uri = asset_uri(instance, event, conn_id)
    assert parse_asset_uri(uri) == (conn_id, instance, event)
    assert Asset(uri=uri).uri == uri  # Airflow's URI normalisation leaves it as the receiver writes it
    assert uri.isascii()


def test_messages_of_a_batched_run_typed_oldest_first_each_once() -> None:
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    first = received("ev-1", "6281234567890@s.whatsapp.net", "Halo", seconds=1)
    second = received("ev-2", "123456789012345@lid", "Cek pesanan #42", seconds=2, aliases=("via-alias",))
    # What a task's context holds: events keyed by asset, and again by alias (``second`` is in both).
    triggering = TriggeringAssetEventsAccessor.build([second, first])
    assert len(triggering) == 2

    messages = inbound_messages(triggering)

    assert [m.event_id for m in messages] == ["ev-1", "ev-2"]
    lid = messages[1]
    assert isinstance(lid, InboundMessage)
    assert (lid.reply_to, lid.is_lid, lid.from_) == ("123456789012345@lid", True, "123456789012345")
    assert lid.body == "Cek pesanan #42"
    assert (lid.instance_key, lid.conn_id, lid.message_id, lid.sent_at) == ("demo", "waslah_default", 7, 1_795_000_002)
    assert lid.stored_at == T0 + timedelta(seconds=2)
    assert messages[0].is_lid is False


def test_status_events_and_foreign_or_hand_made_events(caplog: pytest.LogCaptureFixture) -> None:
    status = stored(
        "message.status",
        "ev-s",
        {"message_id": 12, "instance_key": "demo", "to": "6281", "status": "read", "timestamp": "2026-11-25T07:00:00Z"},
    )
    other_asset = SimpleNamespace(asset=SimpleNamespace(uri="s3://bucket/key"), extra={"event_id": "x"}, timestamp=T0)
    by_hand = SimpleNamespace(asset=SimpleNamespace(uri=waslah_asset("demo").uri), extra={"note": "UI"}, timestamp=T0)
    events = [status, other_asset, by_hand, received("ev-r", "6281@s.whatsapp.net", "Hi")]

    with caplog.at_level(logging.WARNING):
        updates = message_updates(events)
        messages = inbound_messages(events)
    (update,) = updates
    assert isinstance(update, MessageUpdate)
    assert (update.message_id, update.status, update.status_at) == (12, "read", "2026-11-25T07:00:00Z")
    assert [m.event_id for m in messages] == ["ev-r"]
    assert [e.event for e in webhook_events(events)] == ["message.status", "message.received"]
    assert "did not write" in caplog.text
    assert inbound_messages(None) == [] and inbound_messages({}) == []


def test_numbers_where_text_is_documented_are_taken_as_text() -> None:
    data = {"instance_key": "demo", "from": 6281, "remote_jid": "6281@s.whatsapp.net"}
    event = stored("message.received", "ev-n", data)
    (message,) = inbound_messages([event])
    assert message.from_ == "6281"


def test_plain_dicts_work_too() -> None:
    event = received("ev-d", "6281@s.whatsapp.net", "Hi")
    as_dict = {"asset": {"uri": event.asset.uri}, "extra": event.extra, "timestamp": event.timestamp}
    (message,) = inbound_messages([as_dict])
    assert message.body == "Hi" and message.model_dump(by_alias=True)["from"] == "6281"


def test_importing_the_helpers_is_cheap() -> None:
    """A DAG file imports this module at every parse: no FastAPI, no receiver, no Airflow core models."""
    code = (
        "import sys, airflow_provider_waslah.inbound\n"
        "bad = [m for m in ('fastapi', 'airflow_provider_waslah.receiver', 'airflow.models') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
