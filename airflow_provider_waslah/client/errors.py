"""Exceptions raised by the Waslah client: one class per documented error code.

Every class derives from :class:`WaslahError`, which derives from Airflow's
``AirflowException`` when Airflow is installed (so a task fails the Airflow way) and from
``Exception`` otherwise (so the client stays usable without Airflow). Callers branch on the
class and read the attributes; they never need to parse a message.

No exception text ever carries the API key: messages are built only from the response body,
the HTTP status, the method and the URL path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk.exceptions import AirflowException as _Base
    from airflow.sdk.exceptions import AirflowFailException as _FailBase
else:
    try:  # Airflow present: fail tasks the Airflow way.
        from airflow.sdk.exceptions import AirflowException as _Base
    except ImportError:  # the client used on its own
        _Base = Exception
    try:
        from airflow.sdk.exceptions import AirflowFailException as _FailBase
    except ImportError:
        try:  # Airflow 3.1 keeps it in airflow.exceptions only
            from airflow.exceptions import AirflowFailException as _FailBase
        except ImportError:
            _FailBase = _Base


class WaslahError(_Base):
    """Base class of every error this provider raises.

    :ivar hint: what to change, in words, shown after the message. The client leaves it empty
        (it knows no Airflow connection); the hooks fill it in once, naming the connection and
        the field to fix (see :mod:`airflow_provider_waslah.hooks.explain`).
    :ivar conn_id: the Airflow connection the error came through (set by the hooks).
    """

    hint: str | None = None
    conn_id: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        if not self.hint:
            return text
        return f"{text} {self.hint}" if text.endswith((".", "!", "?")) else f"{text}. {self.hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other arguments than their message (field and rule, keyword-only
        # method and path): rebuild from ``args`` and the attributes instead of calling __init__,
        # so every error pickles (multiprocessing, executors, task results).
        return (_rebuild_error, (type(self), self.args, self.__dict__.copy()))


def _rebuild_error(cls: type[WaslahError], args: tuple[Any, ...], state: dict[str, Any]) -> WaslahError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class WaslahInvalidInputError(WaslahError, _FailBase, ValueError):
    """Input failed pre-flight validation; nothing was sent.

    With Airflow installed it is also an ``AirflowFailException``: a task that fails on bad input
    is not retried, since the same input would fail the same way.

    :param field: the request field at fault (``to``, ``text``, ``recipients[3]``, ...).
    :param rule: the rule it broke, in words.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"Invalid `{field}`: {rule}. Nothing was sent.")


class WaslahTransportError(WaslahError):
    """The HTTP exchange itself failed (connection, timeout, protocol).

    :ivar base_url: the API root the client tried (without any user:password part), when known.
    """

    def __init__(self, message: str, *, method: str, path: str, base_url: str | None = None) -> None:
        self.method = method
        self.path = path
        self.base_url = base_url
        super().__init__(f"{method} {path}: {message}")


class WaslahConnectionError(WaslahTransportError):
    """The request never reached Waslah (DNS, refused connection, connect timeout)."""


class WaslahTimeoutError(WaslahTransportError):
    """Waslah did not answer in time on a read-only request (after the retries)."""


class WaslahSendOutcomeUnknownError(WaslahTransportError):
    """A send may have been accepted, but its answer was lost or unreadable.

    Raised for a read timeout, a connection dropped after sending, a 500 or 504, and a success
    status whose body cannot be read (an HTML page from a proxy, truncated JSON, another shape).
    The client does not retry it, because Waslah has no idempotency key and a retry could send
    the message twice. Check ``GET /messages/{id}`` or ``GET /broadcasts`` before sending again.
    """


class WaslahResponseError(WaslahTransportError):
    """A read got an answer the client cannot use: a success status with a body that is not
    Waslah's ``{"ok": true, "data": ...}`` of the expected shape (an HTML page from a proxy,
    truncated JSON, a list, other fields), or a redirect (the client does not follow redirects).

    Unreadable bodies are retried like other transient failures; this is raised once the retries
    run out (at once for a redirect). Sends never raise it: an unreadable answer to a send raises
    :class:`WaslahSendOutcomeUnknownError`, since Waslah may have acted on it.

    :ivar http_status: the HTTP status of the answer.
    """

    def __init__(self, message: str, *, method: str, path: str, http_status: int) -> None:
        self.http_status = http_status
        super().__init__(message, method=method, path=path)


class WaslahAPIError(WaslahError):
    """Waslah answered with an error body (``{"ok": false, "error", "message", ...}``).

    :ivar http_status: HTTP status (``status_code`` is taken by ``AirflowException``).
    :ivar error: Waslah's error code (``None`` for 429/5xx, which have no code).
    :ivar message: Waslah's human-readable message.
    :ivar extra: every other field of the body (``required_feature``, ``errors``, ...).
    """

    #: The ``error`` code this class stands for (``None``: matched by status alone).
    code: str | None = None

    def __init__(
        self,
        *,
        status_code: int,
        error: str | None,
        message: str,
        method: str = "",
        path: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.http_status = status_code
        self.error = error
        self.message = message
        self.method = method
        self.path = path
        self.extra: dict[str, Any] = dict(extra or {})
        where = f"{method} {path} " if method else ""
        code = f" {error}" if error else ""
        super().__init__(f"{where}failed with HTTP {status_code}{code}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: make pickling (used by Airflow for task results) work.
        return (_rebuild_api_error, (type(self), self.__dict__.copy()))


def _rebuild_api_error(cls: type[WaslahAPIError], state: dict[str, Any]) -> WaslahAPIError:
    error = cls.__new__(cls)
    WaslahAPIError.__init__(
        error,
        status_code=state["http_status"],
        error=state["error"],
        message=state["message"],
        method=state.get("method", ""),
        path=state.get("path", ""),
        extra=state.get("extra"),
    )
    error.__dict__.update(state)
    return error


class WaslahUnauthorizedError(WaslahAPIError):
    """401 ``unauthorized``: the API key is missing, wrong, revoked or expired."""

    code = "unauthorized"


class WaslahForbiddenScopeError(WaslahAPIError):
    """403 ``forbidden_scope``: the key lacks the scope this endpoint needs."""

    code = "forbidden_scope"


class WaslahPlanFeatureRequiredError(WaslahAPIError):
    """403 ``plan_feature_required``: the account's plan lacks a feature (see ``required_feature``)."""

    code = "plan_feature_required"

    @property
    def required_feature(self) -> str | None:
        """The feature the plan lacks, e.g. ``Schedule message`` or ``REST API access``."""
        return self.extra.get("required_feature")

    @property
    def active_plan(self) -> str | None:
        """The account's current plan, e.g. ``Free``."""
        return self.extra.get("active_plan")


class WaslahNotFoundError(WaslahAPIError):
    """404 ``not_found``: the message or broadcast does not exist or belongs to someone else."""

    code = "not_found"


class WaslahInstanceNotFoundError(WaslahNotFoundError):
    """404 ``instance_not_found``: no instance with that key."""

    code = "instance_not_found"


class WaslahInstanceNotConnectedError(WaslahAPIError):
    """409 ``instance_not_connected``: the WhatsApp instance is not ``connected`` (see ``instance_status``)."""

    code = "instance_not_connected"

    @property
    def instance_status(self) -> str | None:
        """The instance's current status, e.g. ``disconnected``."""
        return self.extra.get("instance_status")


class WaslahValidationError(WaslahAPIError):
    """422 ``validation_failed``: Waslah rejected the body; ``errors`` maps each field to its messages."""

    code = "validation_failed"

    @property
    def errors(self) -> dict[str, list[str]]:
        """Per-field validation messages from Waslah."""
        value = self.extra.get("errors")
        return value if isinstance(value, dict) else {}


class WaslahNoValidRecipientsError(WaslahAPIError):
    """422 ``no_valid_recipients``: a broadcast had no valid number left after normalising."""

    code = "no_valid_recipients"


class WaslahUnsupportedMediaTypeError(WaslahAPIError):
    """422 ``unsupported_media_type``: the uploaded file's MIME type is not on Waslah's whitelist."""

    code = "unsupported_media_type"

    @property
    def mime_type(self) -> str | None:
        """The refused MIME type."""
        return self.extra.get("mime_type")


class WaslahRateLimitError(WaslahAPIError):
    """429: the key's per-minute budget is spent and waiting was not possible (or retries ran out)."""

    @property
    def retry_after(self) -> float | None:
        """Seconds Waslah asked to wait, when it said."""
        value = self.extra.get("retry_after")
        return float(value) if value is not None else None


class WaslahServerError(WaslahAPIError):
    """500: Waslah failed internally (report it to Waslah support if it repeats)."""


class WaslahEngineUnavailableError(WaslahAPIError):
    """502/503: the WhatsApp engine is down or not answering; try again later."""


_BY_CODE: dict[str, type[WaslahAPIError]] = {
    cls.code: cls
    for cls in (
        WaslahUnauthorizedError,
        WaslahForbiddenScopeError,
        WaslahPlanFeatureRequiredError,
        WaslahNotFoundError,
        WaslahInstanceNotFoundError,
        WaslahInstanceNotConnectedError,
        WaslahValidationError,
        WaslahNoValidRecipientsError,
        WaslahUnsupportedMediaTypeError,
    )
    if cls.code
}
_BY_STATUS: dict[int, type[WaslahAPIError]] = {
    401: WaslahUnauthorizedError,
    404: WaslahNotFoundError,
    422: WaslahValidationError,
    429: WaslahRateLimitError,
    500: WaslahServerError,
    502: WaslahEngineUnavailableError,
    503: WaslahEngineUnavailableError,
}


def error_class_for(status_code: int, error: str | None) -> type[WaslahAPIError]:
    """The exception class for an error response: by Waslah's code first, then by HTTP status."""
    if error and error in _BY_CODE:
        return _BY_CODE[error]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return WaslahServerError
    return WaslahAPIError
