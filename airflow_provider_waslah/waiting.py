"""The polling policy of :mod:`~airflow_provider_waslah.polling`, driven from Airflow.

:func:`poll_once` serves a sensor's poke, :func:`wait_in_worker` an operator's worker-side
``wait_for`` and :func:`wait_async` the triggers; all three run the same :class:`Wait` objects,
so a transient error (a 503 outage, a timeout) is ridden out the same way everywhere.

A final verdict becomes an Airflow outcome in one place (:func:`raise_for_verdict`): a message
that Waslah marked ``failed`` or broadcasts that failed raise an ``AirflowFailException``
subclass (a retry would not change them, and re-sending is the user's decision); an ``error``
verdict re-raises the API's typed error, so the task's ``retries`` apply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_waslah._compat import AirflowException, AirflowFailException
from airflow_provider_waslah.client.errors import error_class_for
from airflow_provider_waslah.polling import (
    BroadcastWait,
    Failed,
    Fetch,
    FetchMany,
    MessageWait,
    Reply,
    Report,
    Sleep,
    Step,
    Verdict,
    Wait,
    run_wait,
)

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from airflow_provider_waslah.client.calls import Call


class WaslahMessageFailedError(AirflowFailException):
    """Waslah could not deliver a message; the text is Waslah's ``error_message``."""


class WaslahBroadcastFailedError(AirflowFailException):
    """A broadcast ended ``failed``, or more of it failed than ``max_failed_ratio`` allows."""


class _SyncCaller(Protocol):
    def call(self, call: Call[Any]) -> Any: ...


class _AsyncCaller(Protocol):
    def call(self, call: Call[Any]) -> Coroutine[Any, Any, Any]: ...


def _log(log: logging.Logger | Any, report: Report) -> None:
    (log.warning if report.level == "warning" else log.info)("%s", report.text)


#: Reads of one :class:`FetchMany` in flight at once (each still takes a slot from the shared limiter).
FETCH_CONCURRENCY = 16


def _call(hook: _SyncCaller, call: Call[Any]) -> Any:
    try:
        return hook.call(call)
    except Exception as error:
        return Failed(error)


async def _acall(hook: _AsyncCaller, call: Call[Any]) -> Any:
    try:
        return await hook.call(call)
    except Exception as error:
        return Failed(error)


async def _acall_many(hook: _AsyncCaller, many: Sequence[Call[Any]]) -> list[Any]:
    """Every read, at most 16 in flight."""
    limit = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(call: Call[Any]) -> Any:
        async with limit:
            return await _acall(hook, call)

    return list(await asyncio.gather(*(one(call) for call in many)))


def _call_many(hook: _SyncCaller, many: Sequence[Call[Any]]) -> list[Any]:
    """The first read in this thread (it builds the hook's client), the rest on up to 16 threads."""
    if not many:
        return []
    first = _call(hook, many[0])
    with ThreadPoolExecutor(min(FETCH_CONCURRENCY, max(1, len(many) - 1))) as pool:
        return [first, *pool.map(lambda call: _call(hook, call), many[1:])]


def drive(
    steps: Generator[Step, Reply, Verdict], hook: _SyncCaller, log: logging.Logger | Any, deadline: float | None = None
) -> Verdict | None:
    """Run polling steps with a sync hook; ``None`` when ``deadline`` (``time.monotonic()``) passed first."""
    reply: Reply = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value
        reply = None
        if isinstance(step, Fetch):
            reply = _call(hook, step.call)
        elif isinstance(step, FetchMany):
            reply = _call_many(hook, step.calls)
        elif isinstance(step, Report):
            _log(log, step)
        else:
            if deadline is not None and time.monotonic() + step.seconds > deadline:
                time.sleep(max(0.0, deadline - time.monotonic()))
                return None
            time.sleep(step.seconds)


async def adrive(steps: Generator[Step, Reply, Verdict], hook: _AsyncCaller, log: logging.Logger | Any) -> Verdict:
    """Run polling steps with an async hook, never blocking the event loop."""
    reply: Reply = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value
        reply = None
        if isinstance(step, Fetch):
            reply = await _acall(hook, step.call)
        elif isinstance(step, FetchMany):
            reply = await _acall_many(hook, step.calls)
        elif isinstance(step, Report):
            _log(log, step)
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)


def poll_once(wait: Wait, hook: _SyncCaller, log: logging.Logger | Any) -> Verdict:
    """One poll (a sensor's poke); a transient failure is logged and reported as ``waiting``."""
    verdict = drive(wait.poll_once(), hook, log)
    assert verdict is not None  # no Sleep step in one poll
    _log(log, Report(verdict.text, "warning" if verdict.error is not None and not verdict.is_final else "info"))
    return verdict


def wait_in_worker(
    wait: Wait, hook: _SyncCaller, log: logging.Logger | Any, poll_interval: float, timeout: float | None
) -> Verdict | None:
    """Poll until a final verdict, sleeping in the worker; ``None`` when ``timeout`` seconds passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    return drive(run_wait(wait, poll_interval), hook, log, deadline)


async def wait_async(wait: Wait, hook: _AsyncCaller, log: logging.Logger | Any, poll_interval: float) -> Verdict:
    """Poll until a final verdict, in an event loop (the triggers)."""
    return await adrive(run_wait(wait, poll_interval), hook, log)


def raise_for_verdict(verdict: Verdict, wait: Wait) -> None:
    """Raise what a final non-success verdict stands for; return on ``success`` (and ``waiting``)."""
    if verdict.state == "failed":
        cls = WaslahBroadcastFailedError if isinstance(wait, BroadcastWait) else WaslahMessageFailedError
        raise cls(verdict.text)
    if verdict.state == "error":
        if verdict.error is not None:
            raise verdict.error
        raise AirflowException(verdict.text)


def verdict_from_event(event: object, wait: Wait) -> Verdict:
    """A trigger event's payload back as a :class:`Verdict`; an API error comes back as its typed class.

    :param event: the payload a trigger yielded (``Verdict.payload()``).
    :param wait: what was waited for (names it in the error for a malformed event).
    """
    if not isinstance(event, dict) or event.get("status") not in ("success", "failed", "error"):
        raise AirflowException(f"Unexpected trigger event while waiting for {wait.describe()}: {event!r}")
    fields = {key: value for key, value in event.items() if key in ("data", "broadcasts", "totals")}
    if event["status"] != "error" and fields:
        # Decided again by the same rule a poke applies, from what the trigger read.
        return wait.decide_fields(fields)
    text = str(event.get("message") or event["status"])
    error: Exception | None = None
    if event["status"] == "error":
        if event.get("http_status") is not None:
            cls = error_class_for(int(event["http_status"]), event.get("error_code"))
            error = cls(
                status_code=int(event["http_status"]),
                error=event.get("error_code"),
                message=str(event.get("api_message") or text),
                method=str(event.get("method") or ""),
                path=str(event.get("path") or ""),
            )
        else:
            error = AirflowException(f"{event.get('error_type', 'Error')} while waiting for {wait.describe()}: {text}")
    return Verdict(event["status"], text, fields, error)


__all__ = [
    "BroadcastWait",
    "MessageWait",
    "WaslahBroadcastFailedError",
    "WaslahMessageFailedError",
    "adrive",
    "drive",
    "poll_once",
    "raise_for_verdict",
    "verdict_from_event",
    "wait_async",
    "wait_in_worker",
]
