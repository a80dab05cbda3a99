"""The receiver's HITL step over HTTP, with the responder's contract faked (no metadata DB).

What a reply to a question is answered with (200/202/208/503), that it is not stored as an asset
event, that its WhatsApp text is sent after the response, and that a reply to a question asked a
moment ago is answered after the response, following its wait.
"""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from airflow_provider_waslah.hitl.responder import ReplyOutcome
from airflow_provider_waslah.receiver.app import Receiver, create_app
from airflow_provider_waslah.receiver.verify import Rejection, VerifiedDelivery
from tests.receiver.support import CONN_ID, SECRET, FakeStore, delivery, received_data, secrets, url


class FakeResponder:
    """Answers with the outcomes queued for each ``(wait)`` call; records the calls."""

    def __init__(self, *outcomes: ReplyOutcome | Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, bool]] = []
        self.done = threading.Event()

    def handle(self, delivery: VerifiedDelivery, *, wait: bool = True) -> ReplyOutcome | None:
        self.calls.append((delivery.event_id, wait))
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def outcome(kind: str, text: str | None = "…") -> ReplyOutcome:
    return ReplyOutcome(kind, "waslah_default", "demo", "6281234567890@s.whatsapp.net", "6281234567890", "KPRT", text)


def hitl_client(responder: FakeResponder, store: FakeStore, sent: list[ReplyOutcome]) -> TestClient:
    """The receiver app as the api-server mounts it, with the fakes."""
    receiver = Receiver(secret_for=secrets({CONN_ID: SECRET}), store=store, hitl=responder, reply_sender=sent.append)
    root = FastAPI()
    root.mount("/waslah", create_app(receiver))
    return TestClient(root, raise_server_exceptions=False)


def test_a_reply_answers_and_is_not_stored() -> None:
    store, sent = FakeStore(), []
    responder = FakeResponder(outcome("answer"))
    response = hitl_client(responder, store, sent).post(
        url(), content=(raw := delivery(received_data(body="1")))[0], headers=raw[1]
    )
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "event_id": raw[1]["X-Waslah-Event-Id"],
        "stored": False,
        "hitl": "answer",
        "reason": "hitl_reply",
        "code": "KPRT",
    }
    assert store.calls == 0 and [o.kind for o in sent] == ["answer"]
    assert responder.calls[0][1] is False  # asked not to wait inside the request


def test_no_reply_goes_to_the_store() -> None:
    store, sent = FakeStore(), []
    body, headers = delivery()
    response = hitl_client(FakeResponder(None), store, sent).post(url(), content=body, headers=headers)
    assert response.status_code == 201 and response.json()["stored"] is True
    assert store.calls == 1 and not sent


def test_a_processed_reply_is_208_and_sends_nothing() -> None:
    store, sent = FakeStore(), []
    body, headers = delivery()
    response = hitl_client(FakeResponder(outcome("duplicate", None)), store, sent).post(
        url(), content=body, headers=headers
    )
    assert response.status_code == 208 and response.json()["reason"] == "duplicate_event"
    assert store.calls == 0 and not sent


@pytest.mark.parametrize("later", [outcome("answer"), None])
def test_a_reply_to_a_question_just_asked_is_answered_after_the_response(later: ReplyOutcome | None) -> None:
    store, sent = FakeStore(), []
    responder = FakeResponder(outcome("pending", None), later)
    body, headers = delivery()
    response = hitl_client(responder, store, sent).post(url(), content=body, headers=headers)
    assert response.status_code == 202 and response.json()["hitl"] == "pending"
    assert responder.done.wait(10)
    assert [wait for _, wait in responder.calls] == [False, True]
    if later is None:  # answered in the UI meanwhile, and no answer: stored like any message
        assert store.calls == 1 and not sent
    else:
        assert store.calls == 0 and [o.kind for o in sent] == ["answer"]


def test_a_db_failure_is_503_so_waslah_retries() -> None:
    store, sent = FakeStore(), []
    failing = FakeResponder(Rejection("storage_unavailable", "The reply could not be processed; try again."))
    body, headers = delivery()
    response = hitl_client(failing, store, sent).post(url(), content=body, headers=headers)
    assert response.status_code == 503 and response.json()["error"] == "storage_unavailable"
    assert store.calls == 0 and not sent


def test_forged_replies_never_reach_the_responder() -> None:
    store, sent = FakeStore(), []
    responder = FakeResponder(outcome("answer"))
    body, headers = delivery(secret="whsec_forged")
    response = hitl_client(responder, store, sent).post(url(), content=body, headers=headers)
    assert response.status_code == 401 and not responder.calls and not sent
