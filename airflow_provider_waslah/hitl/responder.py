"""The api-server side: a verified WhatsApp reply answers the HITL question it is meant for.

The webhook receiver (:mod:`airflow_provider_waslah.receiver.app`) hands every verified
``message.received`` delivery to :class:`HITLResponder` before storing it as an asset event. The
responder finds the questions put to the sender (HITL details whose assignees include
``whatsapp:<sender>``), reads the reply (:func:`~airflow_provider_waslah.hitl.text.decide`) and,
for a valid answer, calls **Airflow's own** ``update_hitl_detail`` — the function behind the UI's
and the REST API's ``PATCH …/hitlDetails`` — with the sender as the responding user
``whatsapp:<number or JID>``. So the answer is checked, recorded and resumes the task exactly as an
answer in the UI would (Airflow 3.3 resumes a task waiting in ``awaiting_input`` right there;
3.1's HITL trigger sees the answer at its next poll).

Exactly once: the decision, the answer and an Audit Log row (``Log``, event
:data:`LOG_EVENT`, owner ``whatsapp:…``, with Waslah's event id and the delivery's digest) are
written in one transaction, under a lock on the questions' rows; a delivery whose event id or
signed content already has such a row is a duplicate and does nothing. The text that goes back on
WhatsApp is sent after the commit (at most once).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

from airflow_provider_waslah.hitl.text import (
    DEFAULT_TIMEZONE,
    WHATSAPP_PREFIX,
    Answered,
    Decision,
    Question,
    decide,
    format_reply,
    sender_is,
    short_code,
    whatsapp_identity,
)
from airflow_provider_waslah.receiver.verify import Rejection, VerifiedDelivery

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger("airflow_provider_waslah.receiver")

#: The Audit Log event of every reply that reached a question (the UI's Browse > Audit Log).
LOG_EVENT = "waslah_hitl_reply"
#: How long a processed delivery is remembered (as the receiver remembers stored events).
DEDUPE_WINDOW = timedelta(days=3)
#: How long after its answer a question still gets "already answered by …" for a late reply.
ANSWERED_WINDOW = timedelta(days=3)
#: Questions older than this are not looked at (a HITL task waiting longer is answered in the UI).
MAX_QUESTION_AGE = timedelta(days=30)
#: A reply cannot be older than its question; this much clock difference with Waslah is allowed.
CLOCK_SKEW = timedelta(seconds=60)
#: The task states in which a question is still waiting (``running``: asked, not parked yet).
WAITING_STATES = frozenset({"running", "deferred", "awaiting_input"})
#: How long after its task started waiting a question is answered. Airflow 3.3.2's scheduler fails a
#: task resumed before it processed the executor's report that the parked workload exited (seconds
#: after parking): it then finds the resumed task queued and takes the report for its end
#: (docs/hitl.md, "Airflow facts"). Answers in the UI race the same way; WhatsApp replies can be faster.
SETTLE = timedelta(seconds=10)
_LOCK_RETRIES = 5


class WhatsAppUser(BaseUser):
    """The responding "user" Airflow records for a WhatsApp answer: id and name ``whatsapp:<identity>``."""

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def get_id(self) -> str:
        """``whatsapp:6281234560010`` or ``whatsapp:123456789012345@lid``."""
        return WHATSAPP_PREFIX + self.identity

    def get_name(self) -> str:
        """The same as the id: what the UI shows as the responder."""
        return self.get_id()


@dataclass(frozen=True)
class ReplyOutcome:
    """What a reply did: ``kind`` (a :class:`Decision` kind, or ``duplicate``) and the text to send back."""

    kind: str
    conn_id: str
    instance_key: str
    reply_to: str
    identity: str | None = None
    code: str | None = None
    text: str | None = None
    log_id: int | None = None


@dataclass
class _Row:
    """A HITL detail put to the sender, with the identity it was put to."""

    detail: Any  # HITLDetail (typed Column attributes on Airflow 3.1, mapped ones on 3.3)
    identity: str
    question: Question


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _received_at(data: dict[str, Any], sent_at: int) -> datetime:
    """When Waslah received the message (``received_at``), else the delivery's signed timestamp."""
    value = data.get("received_at")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.fromtimestamp(sent_at, timezone.utc)


def _identities(assignees: Any) -> list[str]:
    """The ``whatsapp:`` assignees' identities; malformed ones are skipped (they can never match)."""
    found: list[str] = []
    for user in assignees if isinstance(assignees, list) else ():
        user_id = user.get("id") if isinstance(user, dict) else None
        if isinstance(user_id, str) and user_id.lower().startswith(WHATSAPP_PREFIX):
            try:
                found.append(whatsapp_identity(user_id))
            except ValueError:
                continue
    return found


def _param_defaults(params: Any) -> dict[str, Any]:
    """The form's default values, as Airflow's own timeout path submits them."""
    if not isinstance(params, dict):
        return {}
    return {
        key: value["value"] if isinstance(value, dict) and "value" in value else value for key, value in params.items()
    }


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class HITLResponder:
    """Answers Airflow HITL questions from verified WhatsApp replies (in the api-server).

    :param answered_window: how long an answered question still gets "already answered by …".
    :param settle: a reply to a question whose task started waiting less than this ago waits for the rest.
    :param dedupe_window: how far back processed deliveries are looked up.
    :param base_url: the Airflow UI's address for links in replies (default ``[api] base_url``).
    :param tz: the time zone of times in replies (default ``Asia/Jakarta``).
    :param clock: the current UTC time.
    """

    def __init__(
        self,
        *,
        answered_window: timedelta = ANSWERED_WINDOW,
        dedupe_window: timedelta = DEDUPE_WINDOW,
        max_question_age: timedelta = MAX_QUESTION_AGE,
        settle: timedelta = SETTLE,
        base_url: str | None = None,
        tz: str = DEFAULT_TIMEZONE,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.answered_window = answered_window
        self.dedupe_window = dedupe_window
        self.max_question_age = max_question_age
        self.settle = settle
        self.base_url = base_url
        self.tz = tz
        self.clock = clock

    # ------------------------------------------------------------------ entry point
    def handle(self, delivery: VerifiedDelivery, *, wait: bool = True) -> ReplyOutcome | None:
        """Answer the question ``delivery`` replies to; ``None`` when it is no reply to one (store it as usual).

        :param wait: when a question of the sender started waiting less than :attr:`settle` ago, sleep
            the rest first (``True``), or return at once with kind ``pending`` (``False``): the caller
            answers Waslah and calls again with ``wait=True`` after its answer.

        :raises Rejection: ``storage_unavailable`` (503) when the metadata DB cannot be used: Waslah retries,
            and the retry is handled as if it were the first delivery.
        """
        if delivery.event != "message.received":
            return None
        remote_jid = delivery.data.get("remote_jid")
        sender = delivery.data.get("from")
        if not isinstance(remote_jid, str) and not isinstance(sender, (str, int)):
            return None
        from sqlalchemy.exc import OperationalError

        for attempt in range(_LOCK_RETRIES):
            try:
                return self._handle_once(delivery, wait)
            except OperationalError as err:
                busy = "locked" in str(err).lower() or "busy" in str(err).lower()
                if busy and attempt + 1 < _LOCK_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                log.warning("Waslah HITL reply %s could not be processed: %s", delivery.event_id, type(err).__name__)
                raise Rejection("storage_unavailable", "The reply could not be processed; try again.") from None
            except Rejection:
                raise
            except Exception as err:
                log.warning("Waslah HITL reply %s could not be processed: %r", delivery.event_id, err)
                raise Rejection("storage_unavailable", "The reply could not be processed; try again.") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _handle_once(self, delivery: VerifiedDelivery, wait: bool) -> ReplyOutcome | None:
        from airflow.utils.session import create_session

        data = delivery.data
        remote_jid = data.get("remote_jid")
        reply_to = remote_jid if isinstance(remote_jid, str) and remote_jid else str(data.get("from"))
        raw_body = data.get("body")
        body = raw_body if isinstance(raw_body, str) else ""
        now = self.clock()
        received = _received_at(data, delivery.sent_at)
        with create_session() as session:  # a read without locks: most messages are no replies at all
            found = self._rows(session, data, now, received)
            if not found:
                return None
            pause = self._unsettled_for(found, now)
        if pause > 0:
            if not wait:
                return ReplyOutcome("pending", delivery.conn_id, delivery.instance_key, reply_to)
            log.info(
                "Waslah HITL reply %s: answering in %.1f s (the question was just asked)", delivery.event_id, pause
            )
            time.sleep(pause)
            now = self.clock()
        with create_session() as session:
            rows = self._rows(session, data, now, received)
            if not rows:
                return None
            self._lock(session, rows)
            session.expire_all()
            if self._handled_before(session, delivery, now):
                log.warning(
                    "Waslah HITL reply %s (connection %r) was already processed; nothing done again",
                    delivery.event_id,
                    delivery.conn_id,
                )
                return ReplyOutcome("duplicate", delivery.conn_id, delivery.instance_key, reply_to)
            rows = self._rows(session, data, now, received)
            decision = decide(body, [row.question for row in rows])
            if decision.kind == "ignore":
                return None
            target = next((row for row in rows if row.question is decision.question), None)
            identity = (target or rows[0]).identity
            entry = self._log_entry(delivery, decision, identity, target)
            session.add(entry)
            if decision.kind == "answer" and target is not None:
                decision = self._answer(session, target, decision)
                entry.extra = json.dumps({**json.loads(entry.extra or "{}"), "outcome": decision.kind})
            session.flush()
            log_id = int(entry.id)
            code = decision.question.code if decision.question else None
            outcome = ReplyOutcome(
                decision.kind,
                delivery.conn_id,
                delivery.instance_key,
                reply_to,
                identity,
                code,
                format_reply(decision, body, self.tz),
                log_id,
            )
        log.info(
            "Waslah HITL reply %s from whatsapp:%s: %s%s",
            delivery.event_id,
            identity,
            outcome.kind,
            f" (question {code})" if code else "",
        )
        return outcome

    # ------------------------------------------------------------------ reading
    def _rows(self, session: Session, data: dict[str, Any], now: datetime, received: datetime) -> list[_Row]:
        """The questions put to the sender: open ones, and ones answered within :attr:`answered_window`."""
        from airflow.models import hitl
        from sqlalchemy import Text, cast, or_, select

        HITLDetail: Any = hitl.HITLDetail  # 3.1's Column attributes do not type-check as 3.3's mapped ones
        query = select(HITLDetail).where(
            HITLDetail.created_at >= now - self.max_question_age,
            or_(HITLDetail.responded_at.is_(None), HITLDetail.responded_at >= now - self.answered_window),
            cast(HITLDetail.assignees, Text).like(f"%{WHATSAPP_PREFIX}%"),
        )
        rows: list[_Row] = []
        for detail in session.scalars(query):
            ti = detail.task_instance
            if ti is None or _as_utc(detail.created_at) > received + CLOCK_SKEW:
                continue  # a message written before the question was asked is no answer to it
            identity = next(
                (i for i in _identities(detail.assignees) if sender_is(i, data.get("from"), data.get("remote_jid"))),
                None,
            )
            if identity is not None:
                rows.append(_Row(detail, identity, self._question(detail, ti)))
        return rows

    def _unsettled_for(self, rows: Sequence[_Row], now: datetime) -> float:
        """Seconds until every open question of ``rows`` has waited :attr:`settle` (0 when they have)."""
        pause = 0.0
        for row in rows:
            ti = row.detail.task_instance
            state = ti.state.value if hasattr(ti.state, "value") else ti.state
            if row.question.answered is not None or state not in WAITING_STATES:
                continue
            since = _as_utc(ti.updated_at) if state != "running" and ti.updated_at is not None else now
            pause = max(pause, (since + self.settle - now).total_seconds())
        return min(pause, self.settle.total_seconds())

    def _question(self, detail: Any, ti: Any) -> Question:
        answered = None
        if detail.responded_at is not None:
            by = detail.responded_by if isinstance(detail.responded_by, dict) else None
            name = (by.get("name") or by.get("id")) if by else None
            answered = Answered(name, _as_utc(detail.responded_at), tuple(detail.chosen_options or ()))
        params = detail.params if isinstance(detail.params, dict) else {}
        needs_form = any(value is None for value in _param_defaults(params).values())
        state = ti.state.value if hasattr(ti.state, "value") else ti.state
        return Question(
            key=str(ti.id),
            code=short_code(ti.id),
            subject=str(detail.subject),
            options=tuple(str(option) for option in detail.options or ()),
            multiple=bool(detail.multiple),
            link=self._link(ti),
            answered=answered,
            needs_form=needs_form,
            waiting=state in WAITING_STATES,
        )

    def _link(self, ti: Any) -> str | None:
        """The task's Required Actions page in the UI (as ``HITLOperator.generate_link_to_ui`` builds it)."""
        base = self.base_url
        if base is None:
            from airflow.configuration import conf

            base = conf.get("api", "base_url", fallback=None)
        if not base:
            return None
        path = f"/dags/{quote(ti.dag_id)}/runs/{quote(ti.run_id, safe='')}/tasks/{quote(ti.task_id)}/required_actions"
        return f"{base.rstrip('/')}{path}?map_index={ti.map_index}"

    # ------------------------------------------------------------------ exactly once
    @staticmethod
    def _lock(session: Session, rows: Sequence[_Row]) -> None:
        """Hold the questions' rows (task instance first, then HITL detail, as Airflow's own route does)."""
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import select, update

        ids = sorted({row.detail.ti_id for row in rows}, key=str)
        if session.get_bind().dialect.name == "sqlite":
            # A no-op write takes SQLite's database-wide write lock until commit.
            session.execute(
                update(HITLDetail)
                .where(HITLDetail.ti_id.in_(ids))
                .values(subject=HITLDetail.subject)
                .execution_options(synchronize_session=False)
            )
            return
        session.execute(
            select(TaskInstance.id).where(TaskInstance.id.in_(ids)).order_by(TaskInstance.id).with_for_update()
        )
        session.execute(select(HITLDetail.ti_id).where(HITLDetail.ti_id.in_(ids)).with_for_update())

    def _handled_before(self, session: Session, delivery: VerifiedDelivery, now: datetime) -> bool:
        """An Audit Log row of this delivery (same event id, or same signed content under another id)."""
        from airflow.models import log as log_model
        from sqlalchemy import or_, select

        Log: Any = log_model.Log  # as above
        query: Any = select(Log.extra).where(
            Log.event == LOG_EVENT,
            Log.dttm >= now - self.dedupe_window,
            or_(Log.extra.like(f'%"{delivery.event_id}"%'), Log.extra.like(f'%"{delivery.digest}"%')),
        )
        for extra in session.scalars(query):
            try:
                seen = json.loads(extra or "{}")
            except ValueError:
                continue
            if seen.get("event_id") == delivery.event_id or seen.get("delivery_digest") == delivery.digest:
                return True
        return False

    @staticmethod
    def _log_entry(delivery: VerifiedDelivery, decision: Decision, identity: str, target: _Row | None) -> Any:
        from airflow.models.log import Log

        ti = target.detail.task_instance if target is not None else None
        extra = {
            "event_id": delivery.event_id,
            "delivery_digest": delivery.digest,
            "conn_id": delivery.conn_id,
            "instance_key": delivery.instance_key,
            "remote_jid": delivery.data.get("remote_jid"),
            "outcome": decision.kind,
            "code": decision.question.code if decision.question else None,
            "chosen_options": list(decision.chosen),
            "reply": str(delivery.data.get("body") or "")[:200],
        }
        return Log(
            event=LOG_EVENT,
            task_instance=ti,
            owner=WHATSAPP_PREFIX + identity,
            owner_display_name=WHATSAPP_PREFIX + identity,
            extra=json.dumps(extra),
        )

    # ------------------------------------------------------------------ answering
    def _answer(self, session: Session, row: _Row, decision: Decision) -> Decision:
        """Answer through Airflow's ``update_hitl_detail``; a refusal becomes what the sender is told."""
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from fastapi import HTTPException

        ti = row.detail.task_instance
        payload = UpdateHITLDetailPayload(
            chosen_options=list(decision.chosen), params_input=_param_defaults(row.detail.params)
        )
        key = {"dag_id": ti.dag_id, "dag_run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}
        # The route loads the task instance with its HITL detail joined; an instance already in this
        # session keeps what it had (Airflow 3.1 then finds no detail: 404), so it must load afresh.
        session.flush()
        session.expire_all()
        try:
            update_hitl_detail(
                update_hitl_detail_payload=payload, user=WhatsAppUser(row.identity), session=session, **key
            )
        except HTTPException as err:
            question = row.question
            if err.status_code == 409:  # answered in the UI a moment ago: the first answer wins
                session.refresh(row.detail)
                fresh = self._question(row.detail, ti)
                log.info("Waslah HITL reply for %s lost the race: %s", question.code, err.detail)
                return Decision("already_answered", fresh) if fresh.answered else Decision("closed", fresh)
            if err.status_code == 403:
                log.warning(
                    "Airflow's auth manager refused whatsapp:%s as a respondent of %s: %s",
                    row.identity,
                    question.code,
                    err.detail,
                )
                return Decision("not_allowed", question)
            if err.status_code == 404:
                log.warning("Airflow found no HITL question for %s: %s", question.code, err.detail)
                return Decision("closed", replace(question, waiting=False))
            log.warning("Airflow refused the WhatsApp answer to %s: %s %s", question.code, err.status_code, err.detail)
            return Decision("not_understood", question)
        return decision


def _client_for(conn_id: str) -> Any:
    """A Waslah client for connection ``conn_id``, read where the api-server reads connections."""
    from airflow.models.connection import Connection

    from airflow_provider_waslah.client.client import WaslahClient
    from airflow_provider_waslah.hooks.waslah import client_options

    return WaslahClient(**client_options(Connection.get_connection_from_secrets(conn_id)))


def send_reply(outcome: ReplyOutcome, client_for: Callable[[str], Any] = _client_for) -> None:
    """Send ``outcome.text`` to the sender through the connection that received the reply (never raises).

    Uses the provider's client with its checks, rate limiter and retry rules; a failure is logged:
    the answer is recorded either way.

    :param client_for: ``conn_id -> WaslahClient`` (default: from the Airflow connection).
    """
    if not outcome.text:
        return
    from airflow_provider_waslah.recipients import mask_number

    shown = mask_number(outcome.reply_to)
    try:
        with client_for(outcome.conn_id) as client:
            receipt = client.send_text(instance_key=outcome.instance_key, to=outcome.reply_to, text=outcome.text)
        log.info("Waslah HITL: sent the %s message to %s (message %s)", outcome.kind, shown, receipt.id)
    except Exception as err:
        log.warning("Waslah HITL: the %s message to %s was not sent: %s", outcome.kind, shown, err)
