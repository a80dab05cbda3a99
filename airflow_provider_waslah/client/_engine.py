"""The request loop, written once for sync and async: auth, pacing, retries, error mapping, parsing.

:func:`run_call` is a generator (sans-I/O): it yields :class:`Acquire`, :class:`Sleep` and
:class:`Send` steps and receives each acquire's wait and each send's :class:`Outcome`. The sync
client drives it with ``limiter.acquire()``, ``time.sleep`` and a sync transport, the async client
with ``await limiter.acquire_async()``, ``asyncio.sleep`` and an async transport; nothing else
differs. Taking a slot is a step because it may be I/O (a shared budget asks Redis), which must
not block the triggerer's event loop.

Retry rules:

- Reads (GET) are retried on connection errors, timeouts, lost responses, 429, 5xx and success
  answers whose body cannot be read (not JSON, or not ``{"ok": true, "data": ...}`` of the
  expected shape); when the retries run out, the last error is raised (for an unreadable body,
  :class:`WaslahResponseError`). A redirect is neither followed nor retried.
- Sends (POST) are not idempotent. They are retried on 429 (Waslah refused them), on 502/503
  (documented as "engine down, try again": the request was not processed) and on failures that
  prove the request never reached Waslah (connect errors). A read timeout, a connection dropped
  after sending, a 500 or a 504, and a success answer whose body cannot be read may hide a
  queued message: retrying could send it twice, so the client raises
  :class:`WaslahSendOutcomeUnknownError` instead and says so.
- A 429 waits ``Retry-After`` (seconds or HTTP date; absurd values ignored) unless it exceeds
  ``max_retry_wait``, in which case :class:`WaslahRateLimitError` is raised at once.
- Other retries wait an exponential backoff with jitter, capped at ``backoff_max``.

Messages quote at most a few hundred characters of any body, so a proxy's error page never
floods a log or an exception.
"""

from __future__ import annotations

import json
import logging
import random
import re
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
    WaslahResponseError,
    WaslahSendOutcomeUnknownError,
    WaslahTimeoutError,
    error_class_for,
)
from airflow_provider_waslah.client.ratelimit import Limiter

T = TypeVar("T")
log = logging.getLogger("airflow_provider_waslah.client")

#: Statuses that prove Waslah did not act on the request ("engine down, try again").
NOT_PROCESSED_STATUSES = frozenset({429, 502, 503})
#: Statuses a read may retry.
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest piece of a response body or of Waslah's message quoted in an exception.
MAX_QUOTED = 200
_RATE_HEADER_VALUE = re.compile(r"[0-9]{1,12}")


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
class Acquire:
    """Step: take a slot from ``limiter`` and hand back its answer (0, or seconds to wait before asking again)."""

    limiter: Limiter


@dataclass(frozen=True)
class Send:
    """Step: send ``call`` and hand back its outcome."""

    call: Call[Any]


Step = Acquire | Sleep | Send


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); ``None`` when absent or absurd."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds or seconds < 0 or seconds > 24 * 3600:  # NaN, past, or a day+: ignore
        return None
    return seconds


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    """A rate-limit header as a number: 1-12 ASCII digits; anything else is ignored."""
    value = headers.get(name)
    if value is None or not _RATE_HEADER_VALUE.fullmatch(value.strip()):
        return None
    return int(value)


def _observe_rate_headers(limiter: Limiter, headers: Mapping[str, str]) -> bool:
    """Tell the limiter what the answer's ``X-RateLimit-*`` headers say; whether ``Remaining`` was among them."""
    reset = _int_header(headers, "x-ratelimit-reset")
    remaining = _int_header(headers, "x-ratelimit-remaining")
    limiter.observe(
        limit=_int_header(headers, "x-ratelimit-limit"),
        remaining=remaining,
        reset_epoch=float(reset) if reset is not None else None,
    )
    return remaining is not None


def _decode(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, an integer too long
        return None


def _quote(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _snippet(content: bytes, limit: int = 60) -> str:
    """The start of a body, quoted for a message: ``'<!DOCTYPE html><html>…'``."""
    return repr(_quote(content[: limit * 4].decode("utf-8", errors="replace"), limit))


def to_error(call: Call[Any], response: Response) -> WaslahAPIError:
    """The typed exception for an error answer (body fields carried as attributes)."""
    body = _decode(response.content)
    fields: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    error = fields.pop("error", None)
    message = fields.pop("message", None) or (
        response.content[:MAX_QUOTED].decode(errors="replace").strip() or f"HTTP {response.status_code}"
    )
    message = _quote(message if isinstance(message, str) else repr(message), 2 * MAX_QUOTED)
    fields.pop("ok", None)
    if response.status_code == 429:
        fields["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    cls = error_class_for(response.status_code, error if isinstance(error, str) else None)
    return cls(
        status_code=response.status_code,
        error=error if isinstance(error, str) else None,
        message=message,
        method=call.method,
        path=call.path,
        extra=fields,
    )


class _Unreadable(Exception):
    """A success answer the client cannot use; ``why`` says briefly what was wrong."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _validation_summary(error: Exception) -> str:
    """Which fields did not match, from a pydantic ``ValidationError`` (never the input values)."""
    describe = getattr(error, "errors", None)
    try:
        problems = list(describe(include_url=False, include_input=False, include_context=False)) if describe else []
    except Exception:  # not pydantic's: the class name will do
        problems = []
    if not problems:
        return type(error).__name__
    parts = [
        f"{'.'.join(str(part)[:40] for part in problem.get('loc', ())) or 'data'}: {problem.get('msg', '')}"
        for problem in problems[:3]
    ]
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return _quote("; ".join(parts) + more)


def parse_answer(call: Call[T], response: Response) -> T:
    """The parsed ``data`` of a success answer; raises ``_Unreadable`` when it cannot be read."""
    status = response.status_code
    if 300 <= status < 400:
        location = _quote(response.headers.get("location", "") or "nowhere", 80)
        raise _Unreadable(f"it is a redirect to {location!r}, which the client does not follow: check the base URL")
    if not response.content.strip():
        raise _Unreadable("the body is empty")
    body = _decode(response.content)
    if body is None:
        raise _Unreadable(f"the body is not JSON; it starts with {_snippet(response.content)}")
    if not isinstance(body, dict):
        raise _Unreadable(f'the body is a JSON {type(body).__name__}, not an object with "ok" and "data"')
    if body.get("ok") is False:
        raise _Unreadable('the body says "ok": false')
    if "data" not in body:
        raise _Unreadable('the body has no "data" field')
    try:
        return call.parse(body["data"])
    except Exception as error:  # pydantic's ValidationError, or whatever a custom parser raises
        raise _Unreadable(
            f'"data" is not what {call.method} {call.path} returns ({_validation_summary(error)})'
        ) from None


def _error_and_wait(
    call: Call[Any], outcome: Response, limiter: Limiter, settings: Settings, attempt: int
) -> tuple[WaslahError, float | None]:
    """The error for an error answer, and how long to wait before retrying it (``None``: do not)."""
    error = to_error(call, outcome)
    retry_in: float | None = None
    if outcome.status_code == 429:
        assert isinstance(error, WaslahRateLimitError)
        retry_in = error.retry_after if error.retry_after is not None else _backoff(settings, attempt)
        # Every caller on this key waits, not only this one; the wait happens in
        # limiter.acquire(), which also gives up past max_retry_wait.
        limiter.penalize(retry_in)
        if retry_in > settings.max_retry_wait:
            raise error
    elif outcome.status_code in NOT_PROCESSED_STATUSES or (
        not call.is_send and outcome.status_code in RETRYABLE_READ_STATUSES
    ):
        retry_in = _backoff(settings, attempt)
    elif call.is_send and outcome.status_code >= 500:
        raise _unknown_outcome(call, f"Waslah answered HTTP {outcome.status_code}") from error
    return error, retry_in


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


def url_without_userinfo(url: str) -> str:
    """``url`` as it may be shown in a message: any ``user:password@`` part is dropped."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"


def _transport_error(call: Call[Any], outcome: TransportFailure, base_url: str) -> WaslahError:
    """The error for an exchange that got no answer; it names the base URL tried, when known."""
    cause = f"{outcome.kind}: {outcome.detail}"
    if "timeout" in outcome.kind.lower():
        text = f"no answer from {base_url} in time ({cause})" if base_url else cause
        return WaslahTimeoutError(text, method=call.method, path=call.path, base_url=base_url or None)
    text = f"could not connect to {base_url} ({cause})" if base_url else cause
    return WaslahConnectionError(text, method=call.method, path=call.path, base_url=base_url or None)


def run_call(call: Call[T], limiter: Limiter, settings: Settings, base_url: str = "") -> Generator[Step, Any, T]:
    """Drive one API call to its parsed result, yielding the acquires, sleeps and sends it needs.

    The driver answers an :class:`Acquire` with the limiter's wait (a float), a :class:`Send` with
    its :class:`Outcome`, a :class:`Sleep` with ``None``.

    :param base_url: the API root, named in connection and timeout errors (without userinfo).
    """
    base_url = url_without_userinfo(base_url)
    attempt = 0
    while True:
        wait: float
        while (wait := (yield Acquire(limiter))) > 0:
            if wait > settings.max_retry_wait:
                raise _paused(call, wait, settings)
            yield Sleep(wait)
        answered = False
        try:
            outcome: Outcome = yield Send(call)
            if isinstance(outcome, Response):
                answered = _observe_rate_headers(limiter, outcome.headers)
        finally:  # also when the driver abandons the call mid-exchange (cancelled, a body it could not encode)
            limiter.release(answered=answered)
        retry_in: float | None
        error: WaslahError
        if isinstance(outcome, TransportFailure):
            if call.is_send and outcome.reached_server:
                raise _unknown_outcome(call, f"{outcome.kind}: {outcome.detail}")
            error = _transport_error(call, outcome, base_url)
            retry_in = _backoff(settings, attempt)
        else:
            if outcome.status_code >= 400:
                error, retry_in = _error_and_wait(call, outcome, limiter, settings, attempt)
            else:
                try:
                    return parse_answer(call, outcome)
                except _Unreadable as unreadable:
                    why = f"Waslah answered HTTP {outcome.status_code}, but the answer could not be read: "
                    why += unreadable.why
                if call.is_send:
                    raise _unknown_outcome(call, why)
                error = WaslahResponseError(why, method=call.method, path=call.path, http_status=outcome.status_code)
                retry_in = None if outcome.status_code >= 300 else _backoff(settings, attempt)
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
