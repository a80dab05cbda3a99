"""The request loop, written once for sync and async: auth, pacing, retries, error mapping, parsing.

:func:`run_call` is a generator (sans-I/O): it yields :class:`Sleep` and :class:`Send` steps and
receives each send's :class:`Outcome`. The sync client drives it with ``time.sleep`` and a sync
transport, the async client with ``asyncio.sleep`` and an async transport; nothing else differs.

Retry rules (DESIGN.md, "The client's rules"):

- Reads (GET) are retried on connection errors, timeouts, lost responses, 429 and 5xx.
- Sends (POST) are not idempotent. They are retried on 429 (Waslah refused them), on 502/503
  (documented as "engine down, try again": the request was not processed) and on failures that
  prove the request never reached Waslah (connect errors). A read timeout, a connection dropped
  after sending, a 500 or a 504 may hide a queued message: retrying could send it twice, so the
  client raises :class:`WaslahSendOutcomeUnknownError` instead and says so.
- A 429 waits ``Retry-After`` (seconds or HTTP date; absurd values ignored) unless it exceeds
  ``max_retry_wait``, in which case :class:`WaslahRateLimitError` is raised at once.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import (
    WaslahAPIError,
    WaslahConnectionError,
    WaslahError,
    WaslahRateLimitError,
    WaslahSendOutcomeUnknownError,
    WaslahTimeoutError,
    error_class_for,
)
from airflow_provider_waslah.client.ratelimit import RateLimiter

T = TypeVar("T")
log = logging.getLogger("airflow_provider_waslah.client")

#: Statuses that prove Waslah did not act on the request ("engine down, try again").
NOT_PROCESSED_STATUSES = frozenset({429, 502, 503})
#: Statuses a read may retry.
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Settings:
    """Retry and backoff settings of a client."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_wait: float = 120.0


@dataclass(frozen=True)
class Response:
    """An HTTP answer, transport-neutral."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class TransportFailure:
    """An exchange that produced no answer.

    :ivar reached_server: ``False`` only when the request provably never left (connect errors);
        ``True`` when it may have been received (read timeout, connection dropped mid-exchange).
    """

    kind: str
    detail: str
    reached_server: bool


Outcome = Response | TransportFailure


@dataclass(frozen=True)
class Sleep:
    """Step: wait this long (rate-limit pacing or backoff)."""

    seconds: float


@dataclass(frozen=True)
class Send:
    """Step: send ``call`` and hand back its outcome."""

    call: Call[Any]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); ``None`` when absent or absurd."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds or seconds < 0 or seconds > 24 * 3600:  # NaN, past, or a day+: ignore
        return None
    return seconds


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _observe_rate_headers(limiter: RateLimiter, headers: Mapping[str, str]) -> None:
    reset = _int_header(headers, "x-ratelimit-reset")
    limiter.observe(
        limit=_int_header(headers, "x-ratelimit-limit"),
        remaining=_int_header(headers, "x-ratelimit-remaining"),
        reset_epoch=float(reset) if reset is not None else None,
    )


def _decode(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def to_error(call: Call[Any], response: Response) -> WaslahAPIError:
    """The typed exception for an error answer (body fields carried as attributes)."""
    body = _decode(response.content)
    fields: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    error = fields.pop("error", None)
    message = fields.pop("message", None) or (
        response.content[:200].decode(errors="replace").strip() or f"HTTP {response.status_code}"
    )
    fields.pop("ok", None)
    if response.status_code == 429:
        fields["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    cls = error_class_for(response.status_code, error if isinstance(error, str) else None)
    return cls(
        status_code=response.status_code,
        error=error if isinstance(error, str) else None,
        message=str(message),
        method=call.method,
        path=call.path,
        extra=fields,
    )


def _backoff(settings: Settings, attempt: int) -> float:
    delay: float = min(settings.backoff_max, settings.backoff_base * (2**attempt))
    return delay * (0.5 + random.random() / 2)


def _unknown_outcome(call: Call[Any], why: str) -> WaslahSendOutcomeUnknownError:
    return WaslahSendOutcomeUnknownError(
        f"{why}. Waslah may already have queued this send; it was NOT retried, because a retry "
        "could deliver it twice. Check GET /messages/{id} or GET /broadcasts before sending again",
        method=call.method,
        path=call.path,
    )


def _paused(call: Call[Any], wait: float, settings: Settings) -> WaslahRateLimitError:
    return WaslahRateLimitError(
        status_code=429,
        error=None,
        message=(
            f"Waslah paused this API key for {wait:.0f} s more (Retry-After), longer than "
            f"max_retry_wait={settings.max_retry_wait:g} s; nothing was sent"
        ),
        method=call.method,
        path=call.path,
        extra={"retry_after": wait},
    )


def run_call(call: Call[T], limiter: RateLimiter, settings: Settings) -> Generator[Sleep | Send, Outcome, T]:
    """Drive one API call to its parsed result, yielding the sleeps and sends it needs."""
    attempt = 0
    while True:
        while (wait := limiter.acquire()) > 0:
            if wait > settings.max_retry_wait:
                raise _paused(call, wait, settings)
            yield Sleep(wait)
        outcome = yield Send(call)
        retry_in: float | None
        error: WaslahError
        if isinstance(outcome, TransportFailure):
            if call.is_send and outcome.reached_server:
                raise _unknown_outcome(call, f"{outcome.kind}: {outcome.detail}")
            cls = WaslahTimeoutError if "timeout" in outcome.kind.lower() else WaslahConnectionError
            error = cls(f"{outcome.kind}: {outcome.detail}", method=call.method, path=call.path)
            retry_in = _backoff(settings, attempt)
        else:
            _observe_rate_headers(limiter, outcome.headers)
            if outcome.status_code < 400:
                body = _decode(outcome.content)
                data = body.get("data") if isinstance(body, dict) else None
                return call.parse(data)
            error = to_error(call, outcome)
            retry_in = None
            if outcome.status_code == 429:
                assert isinstance(error, WaslahRateLimitError)
                retry_in = error.retry_after if error.retry_after is not None else _backoff(settings, attempt)
                # Every caller on this key waits, not only this one; the wait happens in
                # limiter.acquire() above, which also gives up past max_retry_wait.
                limiter.penalize(retry_in)
                if retry_in > settings.max_retry_wait:
                    raise error
            elif outcome.status_code in NOT_PROCESSED_STATUSES or (
                not call.is_send and outcome.status_code in RETRYABLE_READ_STATUSES
            ):
                retry_in = _backoff(settings, attempt)
            elif call.is_send and outcome.status_code >= 500:
                raise _unknown_outcome(call, f"Waslah answered HTTP {outcome.status_code}") from error
        if retry_in is None or attempt >= settings.max_retries:
            raise error
        attempt += 1
        log.warning(
            "Waslah %s %s failed (%s); retry %d of %d in %.1f s",
            call.method,
            call.path,
            error,
            attempt,
            settings.max_retries,
            retry_in,
        )
        if retry_in > 0 and not isinstance(error, WaslahRateLimitError):
            yield Sleep(retry_in)
