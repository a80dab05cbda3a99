"""The one polling policy: when a wait for a message or broadcasts is over, written once, without I/O.

Three places wait: an operator's ``wait_for`` in the worker, the triggers in the triggerer and
the sensors' pokes. All three drive the objects here, the way the clients drive ``run_call``:

- :meth:`Wait.poll_once` is a generator that yields :class:`Fetch` steps (a read-only
  :class:`~airflow_provider_waslah.client.calls.Call` to run) and receives each call's result,
  or the exception it raised wrapped in :class:`Failed`. It returns a :class:`Verdict`.
- :func:`run_wait` repeats it, yielding :class:`Report` (a progress line to log) and
  :class:`Sleep` steps between polls, until the verdict is final.

One transient-error rule (:func:`is_transient`): a poll that failed because of the network,
a timeout, an unreadable answer, a 429 or a 5xx (left over after the client's own retries) is a
``waiting`` verdict: the wait goes on and only its own timeout ends it. Any other error
(401, 403, 404, a bad connection) ends the wait with an ``error`` verdict. A sensor in poke mode,
a worker-side ``wait_for`` and a trigger therefore ride out the same 503 outage the same way.

One broadcast-fetch strategy (:class:`BroadcastWait`): finished broadcasts are not read again;
one unfinished broadcast is read with ``GET /broadcasts/{id}``; several are read with one
``GET /broadcasts`` (the last 50) and ``GET /broadcasts/{id}`` for those not listed.

Nothing here imports Airflow; ``waiting.py`` turns verdicts into Airflow's exceptions.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import (
    WaslahAPIError,
    WaslahEngineUnavailableError,
    WaslahInvalidInputError,
    WaslahRateLimitError,
    WaslahServerError,
    WaslahTransportError,
)
from airflow_provider_waslah.client.models import Broadcast, Message
from airflow_provider_waslah.client.validation import MESSAGE_STATUSES, STATUS_ORDER, check_id, shown

#: What ``wait_for`` accepts on the message operators, and the sensors' default targets.
MESSAGE_WAIT_TARGETS: tuple[str, ...] = ("sent", "delivered", "read")
DEFAULT_MESSAGE_TARGETS = MESSAGE_WAIT_TARGETS
#: What ``wait_for`` accepts on the broadcast operator.
BROADCAST_WAIT_TARGETS: tuple[str, ...] = ("completed",)

#: Errors worth another poll: the request may succeed later.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    WaslahTransportError,
    WaslahRateLimitError,
    WaslahServerError,
    WaslahEngineUnavailableError,
)

State = Literal["waiting", "success", "failed", "error"]


def is_transient(error: BaseException) -> bool:
    """True when a failed poll is worth repeating (network, timeout, unreadable answer, 429, 5xx)."""
    return isinstance(error, TRANSIENT_ERRORS)


@dataclass(frozen=True)
class Fetch:
    """Step: run this read-only call and send back its result (or :class:`Failed`)."""

    call: Call[Any]


@dataclass(frozen=True)
class FetchMany:
    """Step: run these read-only calls (a driver may run them concurrently) and send back a list with,
    for each call in order, its result or :class:`Failed`."""

    calls: tuple[Call[Any], ...]


@dataclass(frozen=True)
class Failed:
    """What a driver sends back when a :class:`Fetch` raised."""

    error: Exception


@dataclass(frozen=True)
class Sleep:
    """Step: wait this long before the next poll."""

    seconds: float


@dataclass(frozen=True)
class Report:
    """Step: a progress line to log (``level`` is ``info`` or ``warning``)."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class Verdict:
    """The result of one poll.

    :ivar state: ``waiting`` (poll again), ``success``, ``failed`` (Waslah gave up on the
        message, or the broadcasts failed) or ``error`` (polling cannot succeed).
    :ivar text: one line saying where things stand, for logs and errors.
    :ivar fields: JSON-safe details: ``data`` (a message) or ``broadcasts`` and ``totals``.
    :ivar error: the exception behind an ``error`` verdict, or behind a transient ``waiting`` one.
    """

    state: State
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None

    @property
    def is_final(self) -> bool:
        """True unless the wait goes on."""
        return self.state != "waiting"

    def payload(self) -> dict[str, Any]:
        """The verdict as a JSON-safe trigger event payload (``status``, ``message``, details)."""
        payload: dict[str, Any] = {"status": self.state, "message": self.text, **self.fields}
        if self.state == "error" and self.error is not None:
            payload["error_type"] = type(self.error).__name__
            if isinstance(self.error, WaslahAPIError):
                payload.update(
                    http_status=self.error.http_status,
                    error_code=self.error.error,
                    api_message=self.error.message,
                    method=self.error.method,
                    path=self.error.path,
                )
        return payload


Step = Fetch | FetchMany | Sleep | Report
Reply = Any  # the result of a Fetch, a Failed, a list of them (FetchMany), or None after Sleep/Report


def check_target_statuses(target_statuses: Iterable[str] | str, field: str = "target_statuses") -> tuple[str, ...]:
    """Validate message target statuses (a status name or a list of them)."""
    values = (target_statuses,) if isinstance(target_statuses, str) else tuple(target_statuses)
    unknown = [value for value in values if value not in MESSAGE_STATUSES]
    if not values or unknown:
        raise WaslahInvalidInputError(
            field, f"must be a non-empty list of {', '.join(MESSAGE_STATUSES)}; got {shown(list(values))}"
        )
    return values


def check_failed_ratio(value: object, field: str = "max_failed_ratio") -> float | None:
    """``max_failed_ratio`` is ``None`` or a number between 0 and 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise WaslahInvalidInputError(field, f"must be a number between 0 and 1, got {shown(value)}")
    return float(value)


def message_state(message: Message, target_statuses: Sequence[str]) -> State:
    """``success`` at (or past) a target, ``failed`` when Waslah gave up, else ``waiting``.

    A target of ``sent`` is also met by ``delivered`` and ``read``, which can come faster than a poll.
    """
    if message.status in target_statuses:
        return "success"
    if message.is_failed:
        return "failed"
    reached = any(
        STATUS_ORDER.get(message.status, -1) >= STATUS_ORDER.get(target, 99)
        for target in target_statuses
        if target != "failed"
    )
    return "success" if reached else "waiting"


def failed_message_text(message: Message) -> str:
    """``Waslah message 12 to 62812… failed: <Waslah's reason>``."""
    return (
        f"Waslah message {message.id} to {message.phone_number or message.remote_jid} failed: "
        f"{message.error_message or 'no reason given'}"
    )


def broadcast_totals(broadcasts: Sequence[Broadcast]) -> dict[str, int]:
    """Counters summed over broadcasts (one entry per chunk of a large send)."""
    total = sum(b.total for b in broadcasts)
    sent = sum(b.sent for b in broadcasts)
    failed = sum(b.failed for b in broadcasts)
    return {
        "total": total,
        "sent": sent,
        "failed": failed,
        "pending": sum(b.pending for b in broadcasts),
        "progress_percent": (sent + failed) * 100 // total if total else 100,
    }


def progress_line(totals: dict[str, Any]) -> str:
    """Progress in words, e.g. ``66% - sent 32/50, failed 1``."""
    return f"{totals['progress_percent']}% - sent {totals['sent']}/{totals['total']}, failed {totals['failed']}"


def broadcasts_state(broadcasts: Sequence[Broadcast], max_failed_ratio: float | None = None) -> tuple[State, str]:
    """``(state, text)``: ``success`` once all completed; ``failed`` when one failed or too many messages did.

    The ratio is checked on the failures so far, so a send already over budget fails without
    waiting for the rest.
    """
    totals = broadcast_totals(broadcasts)
    if max_failed_ratio is not None and totals["total"] and totals["failed"] / totals["total"] > max_failed_ratio:
        return "failed", (
            f"{totals['failed']} of {totals['total']} broadcast messages failed "
            f"({totals['failed'] / totals['total']:.0%}), more than max_failed_ratio={max_failed_ratio:.0%}"
        )
    for broadcast in broadcasts:
        if broadcast.status == "failed":
            return "failed", (
                f"Waslah broadcast {broadcast.id} ({broadcast.name or 'unnamed'}) failed: {broadcast.progress_line}"
            )
    if all(broadcast.status == "completed" for broadcast in broadcasts):
        return "success", progress_line(totals)
    return "waiting", progress_line(totals)


class Wait:
    """One thing being waited for; :meth:`poll_once` is the only place a poll's outcome is decided."""

    def describe(self) -> str:
        """What is being waited for, e.g. ``Waslah message 12``."""
        raise NotImplementedError

    def _poll(self) -> Generator[Fetch | FetchMany, Reply, Verdict]:
        raise NotImplementedError

    def decide_fields(self, fields: dict[str, Any]) -> Verdict:
        """The verdict for the details a poll returned (``Verdict.fields``)."""
        raise NotImplementedError

    def poll_once(self) -> Generator[Fetch | FetchMany, Reply, Verdict]:
        """One poll: fetch what is needed and decide. Errors become verdicts, never exceptions."""
        try:
            return (yield from self._poll())
        except _FetchFailed as failed:
            error = failed.error
        if is_transient(error):
            return Verdict("waiting", f"could not check {self.describe()} ({type(error).__name__}: {error})", {}, error)
        return Verdict("error", f"{type(error).__name__} while waiting for {self.describe()}: {error}", {}, error)

    @staticmethod
    def _fetch(call: Call[Any]) -> Generator[Fetch, Reply, Any]:
        reply = yield Fetch(call)
        if isinstance(reply, Failed):
            raise _FetchFailed(reply.error)
        return reply

    @staticmethod
    def _fetch_many(many: Sequence[Call[Any]]) -> Generator[FetchMany, Reply, list[Any]]:
        """Results of several reads, each a result or :class:`Failed` (the caller decides what a failure means)."""
        replies = yield FetchMany(tuple(many))
        return list(replies)

    @staticmethod
    def _raise(error: Exception) -> None:
        """End this poll as if a fetch had failed with ``error`` (transient: ``waiting``; else ``error``)."""
        raise _FetchFailed(error)


class _FetchFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class MessageWait(Wait):
    """Wait until a message reaches one of ``target_statuses``."""

    def __init__(self, message_id: object, target_statuses: Iterable[str] | str = DEFAULT_MESSAGE_TARGETS) -> None:
        self.message_id = check_id(message_id, "message_id")
        self.target_statuses = check_target_statuses(target_statuses)

    def describe(self) -> str:
        """``Waslah message <id>``."""
        return f"Waslah message {self.message_id}"

    def _poll(self) -> Generator[Fetch, Reply, Verdict]:
        message: Message = yield from self._fetch(calls.get_message(self.message_id))
        return self.decide(message)

    def decide_fields(self, fields: dict[str, Any]) -> Verdict:
        """The verdict for a poll's details (``data``), e.g. carried by a trigger event."""
        return self.decide(Message.model_validate(fields["data"]))

    def decide(self, message: Message) -> Verdict:
        """The verdict for the message as read."""
        fields = {"data": message.model_dump(mode="json")}
        state = message_state(message, self.target_statuses)
        if state == "failed":
            return Verdict("failed", failed_message_text(message), fields)
        if state == "success":
            return Verdict("success", f"{self.describe()} is {message.status}", fields)
        wanted = " or ".join(self.target_statuses)
        return Verdict("waiting", f"{self.describe()} is {message.status}; waiting for {wanted}", fields)


class BroadcastWait(Wait):
    """Wait until broadcasts (the chunks of one send, watched as one) finish."""

    def __init__(self, broadcast_ids: Sequence[object], max_failed_ratio: float | None = None) -> None:
        if isinstance(broadcast_ids, (str, bytes)) or not isinstance(broadcast_ids, Sequence) or not broadcast_ids:
            raise WaslahInvalidInputError("broadcast_ids", "must be a non-empty list of broadcast ids")
        self.broadcast_ids = [check_id(value, f"broadcast_ids[{i}]") for i, value in enumerate(broadcast_ids)]
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)
        self._finished: dict[int, Broadcast] = {}

    def describe(self) -> str:
        """``Waslah broadcast 3`` or ``Waslah broadcasts 3, 4``."""
        ids = ", ".join(str(value) for value in self.broadcast_ids)
        return f"Waslah broadcast{'s' if len(self.broadcast_ids) > 1 else ''} {ids}"

    def _poll(self) -> Generator[Fetch, Reply, Verdict]:
        unfinished = [i for i in self.broadcast_ids if i not in self._finished]
        fresh: dict[int, Broadcast] = {}
        if len(unfinished) > 1:
            listed: list[Broadcast] = yield from self._fetch(calls.list_broadcasts())
            fresh = {b.id: b for b in listed if b.id in unfinished}
        for broadcast_id in unfinished:
            if broadcast_id not in fresh:
                fresh[broadcast_id] = yield from self._fetch(calls.get_broadcast(broadcast_id))
        for broadcast_id, broadcast in fresh.items():
            if broadcast.is_final:
                self._finished[broadcast_id] = broadcast
        return self.decide([self._finished.get(i) or fresh[i] for i in self.broadcast_ids])

    def decide_fields(self, fields: dict[str, Any]) -> Verdict:
        """The verdict for a poll's details (``broadcasts``), e.g. carried by a trigger event."""
        return self.decide([Broadcast.model_validate(item) for item in fields["broadcasts"]])

    def decide(self, broadcasts: Sequence[Broadcast]) -> Verdict:
        """The verdict for the broadcasts as read."""
        state, text = broadcasts_state(broadcasts, self.max_failed_ratio)
        fields = {"broadcasts": [b.model_dump(mode="json") for b in broadcasts], "totals": broadcast_totals(broadcasts)}
        if state == "success":
            text = f"{self.describe()} completed: {text}"
        elif state == "waiting":
            text = f"{self.describe()}: {text}"
        return Verdict(state, text, fields)


def run_wait(wait: Wait, poll_interval: float) -> Generator[Step, Reply, Verdict]:
    """Poll ``wait`` every ``poll_interval`` seconds until a final verdict, reporting each poll.

    Transient failures are reported as warnings and polled again; the caller's own deadline is
    the only other way out (drivers check it at each :class:`Sleep`).
    """
    failures = 0
    while True:
        verdict = yield from wait.poll_once()
        if verdict.is_final:
            yield Report(verdict.text, "info" if verdict.state == "success" else "warning")
            return verdict
        if verdict.error is not None:
            failures += 1
            yield Report(f"{verdict.text}; {failures} in a row, trying again in {poll_interval:g} s", "warning")
        else:
            failures = 0
            yield Report(verdict.text)
        yield Sleep(poll_interval)
