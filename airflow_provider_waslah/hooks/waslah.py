"""``WaslahHook`` and ``WaslahAsyncHook``: an Airflow connection in, a Waslah client out.

Both hooks expose every endpoint of the client as a method (``send_text``, ``get_message``, ...)
with the same keyword arguments and return types; the async hook's methods are coroutines.
The connection is read in one place (:func:`client_options`), so both build the same client.

Connection (type ``waslah``):

- Host: the API base URL; empty means ``https://waslah.id/api/v1``.
- Password: the API key (``wsl_…``).
- Extras: ``timeout`` (s), ``max_retries``, ``plan`` (free|basic|pro|enterprise) or
  ``rate_limit_per_minute``, ``rate_limit_window_seconds`` (60 on Waslah; shorter against the
  emulator), ``webhook_secret``, ``rate_limit_storage`` (a ``redis://`` URL: one rate budget for
  the key across every process and host; see :mod:`airflow_provider_waslah.client.shared_budget`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import weakref
from collections.abc import Callable, Coroutine
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client.client import AsyncWaslahClient, Endpoints, WaslahClient
from airflow_provider_waslah.client.errors import WaslahError, WaslahInvalidInputError
from airflow_provider_waslah.client.ratelimit import PLAN_LIMITS
from airflow_provider_waslah.client.shared_budget import check_storage_url, secrets_of
from airflow_provider_waslah.client.validation import check_api_key
from airflow_provider_waslah.hooks.explain import base_url_of, explain, instances_note, needs_instance_list

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_waslah.client.calls import Call

T = TypeVar("T")
#: Scopes a key needs for everything this provider does, and what each one unlocks.
SCOPE_USES = {
    "messages:send": "send messages and upload files",
    "messages:read": "read message and broadcast status (sensors, wait_for, broadcast resume)",
    "instances:read": "list instances and check their status",
}


def _shape(value: object) -> str:
    """What a connection field holds, without its value: ``a str of 28 characters``, ``a list``.

    Connection fields may hold a secret pasted into the wrong box, so messages never quote them.
    """
    if isinstance(value, str):
        return f"a str of {len(value)} characters"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _number(
    conn: Connection, extras: dict[str, Any], name: str, kind: type[int] | type[float], minimum: float = 0
) -> Any:
    """A numeric extra (JSON number or numeric string), checked without ever quoting its value."""
    value = extras.get(name)
    if value is None or value == "":
        return None
    where = f"connection {conn.conn_id!r} extra.{name}"
    noun = "a whole number" if kind is int else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, str))
        or (isinstance(value, str) and not value.isascii())
    ):
        raise WaslahInvalidInputError(where, f"must be {noun} (got {_shape(value)})")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    except ValueError:
        raise WaslahInvalidInputError(where, f"must be {noun} (got {_shape(value)})") from None
    if not math.isfinite(number):
        raise WaslahInvalidInputError(where, f"must be a finite number (got {_shape(value)})")
    if kind is int:
        if not number.is_integer():
            raise WaslahInvalidInputError(where, f"must be a whole number (got {_shape(value)})")
        number = int(number)
    if number < minimum:
        raise WaslahInvalidInputError(where, f"must be at least {minimum:g}")
    return number


def _base_url(conn: Connection) -> str | None:
    """The API root from the connection: a full URL in Host, or host/port/schema (URI form).

    In URI form (``waslah://:KEY@waslah.id:443/api%2Fv1``) Airflow puts the path in ``schema``;
    ``schema`` of ``http``/``https`` is read as the scheme instead (the http provider's habit).
    """
    host = (conn.host or "").strip().rstrip("/")
    if not host or "://" in host:
        return host or None
    schema = (conn.schema or "").strip("/")
    scheme = schema if schema in ("http", "https") else "https"
    path = schema if schema and schema not in ("http", "https") else "api/v1"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}/{path}"


def _storage(conn: Connection, extras: dict[str, Any]) -> str | None:
    """The ``rate_limit_storage`` extra, checked (the hooks register its password with the log masker)."""
    value = extras.get("rate_limit_storage")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_storage_url(value, f"connection {conn.conn_id!r} extra.rate_limit_storage")


def _mask_storage(options: dict[str, Any]) -> None:
    """Register the storage URL's password with Airflow's log masker (Airflow masks no extra of this name)."""
    from airflow_provider_waslah._compat import mask_secret

    for secret in secrets_of(options.get("rate_limit_storage") or ""):
        mask_secret(secret)


async def _amask_storage(options: dict[str, Any]) -> None:
    """:func:`_mask_storage` in an event loop: the sync call would message the triggerer's supervisor
    from inside its loop, which can deadlock. Airflow 3.1 has no async form; the provider logs no
    password anyway, so there it is skipped."""
    import airflow.sdk.log

    amask_secret = getattr(airflow.sdk.log, "amask_secret", None)
    if amask_secret is None:
        return
    for secret in secrets_of(options.get("rate_limit_storage") or ""):
        await amask_secret(secret)


def client_options(conn: Connection) -> dict[str, Any]:
    """The client's keyword arguments from a ``waslah`` connection; checks each field it reads."""
    extras = conn.extra_dejson
    if not conn.password:
        raise WaslahInvalidInputError(f"connection {conn.conn_id!r} password", "must hold the Waslah API key (wsl_…)")
    api_key = check_api_key(conn.password, f"connection {conn.conn_id!r} password")
    plan = extras.get("plan") or None
    if plan is not None and (not isinstance(plan, str) or plan.strip().lower() not in PLAN_LIMITS):
        raise WaslahInvalidInputError(
            f"connection {conn.conn_id!r} extra.plan", f"must be one of {', '.join(PLAN_LIMITS)} (got {_shape(plan)})"
        )
    options: dict[str, Any] = {
        "api_key": api_key,
        "base_url": _base_url(conn),
        "plan": plan.strip().lower() if plan else None,
        "timeout": _number(conn, extras, "timeout", float, minimum=0.1),
        "max_retries": _number(conn, extras, "max_retries", int),
        "rate_limit_per_minute": _number(conn, extras, "rate_limit_per_minute", int, minimum=1),
        "rate_limit_window_seconds": _number(conn, extras, "rate_limit_window_seconds", float, minimum=0.1),
        "rate_limit_storage": _storage(conn, extras),
    }
    return {key: value for key, value in options.items() if value is not None}


class _WaslahHookBase(BaseHook):
    """What the sync and async hooks share: identity, connection metadata and the webhook secret."""

    conn_name_attr = "waslah_conn_id"
    default_conn_name = "waslah_default"
    conn_type = "waslah"
    hook_name = "Waslah"

    def __init__(self, waslah_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waslah_conn_id = waslah_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(waslah_conn_id={self.waslah_conn_id!r})"


class WaslahHook(_WaslahHookBase, Endpoints):
    """Blocking access to Waslah through an Airflow connection.

    Every method of :class:`~airflow_provider_waslah.client.WaslahClient` is available here
    (``get_me``, ``list_instances``, ``get_instance``, ``send_message``, ``send_text``,
    ``send_media``, ``send_bulk``, ``upload``, ``get_message``, ``list_broadcasts``,
    ``get_broadcast``), with the API's field names as keyword arguments and pydantic models as
    results. Input is checked before any request; errors are typed (see ``client.errors``).

    :param waslah_conn_id: the ``waslah`` connection to use (default ``waslah_default``).
    """

    @cached_property
    def client(self) -> WaslahClient:
        """The client for this connection, built once per hook."""
        options = client_options(self.get_connection(self.waslah_conn_id))
        _mask_storage(options)
        return WaslahClient(**options)

    def get_conn(self) -> WaslahClient:
        """Return the Waslah client (Airflow's conventional accessor)."""
        return self.client

    def call(self, call: Call[T]) -> T:
        """Run a prepared call through this connection's client; errors say which connection field to fix."""
        client = self.client
        try:
            return client.call(call)
        except WaslahError as error:
            instances = None
            if needs_instance_list(error):
                try:
                    listed = client.call(calls.list_instances())
                    instances = instances_note(listed)
                except Exception as lookup_error:  # never hides the original error
                    instances = instances_note(lookup_error)
            explain(error, self.waslah_conn_id, base_url_of(client), instances)
            raise

    @cached_property
    def webhook_secret(self) -> str | None:
        """The connection's ``webhook_secret`` extra, for :func:`~airflow_provider_waslah.webhooks.verify_signature`."""
        value = self.get_connection(self.waslah_conn_id).extra_dejson.get("webhook_secret")
        return str(value) if value else None

    def _secrets(self) -> list[str]:
        """The API key, webhook secret and storage password (as stored and stripped), to keep out of messages."""
        try:
            conn = self.get_connection(self.waslah_conn_id)
            extras = conn.extra_dejson
            values = [conn.password, extras.get("webhook_secret")]
            storage = extras.get("rate_limit_storage")
            if isinstance(storage, str):
                values.extend(secrets_of(storage))
        except Exception:
            return []
        found = [value for value in values if isinstance(value, str)]
        return [form for value in found for form in {value, value.strip()} if len(form) >= 6]

    def test_connection(self) -> tuple[bool, str]:
        """Call ``GET /me``: report who owns the key, its scopes and what it cannot do, or why it fails.

        The message never contains the API key or the webhook secret.
        """
        try:
            me = self.get_me()
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            for secret in self._secrets():
                message = message.replace(secret, "***")
            return False, message
        scopes = set(me.api_key.scopes)
        missing = [f"{scope} (cannot {use})" for scope, use in SCOPE_USES.items() if scope not in scopes]
        owner = f"{me.user.name or 'user'} <{me.user.email or 'no email'}>"
        key = f"key {me.api_key.name or me.api_key.prefix or me.api_key.id!s}"
        summary = (
            f"Connected to {self.client.base_url} as {owner}; {key} has scopes: {', '.join(sorted(scopes)) or 'none'}."
        )
        if missing:
            summary += " Missing: " + "; ".join(missing) + "."
        return True, summary


class _SharedAsyncClients:
    """One :class:`AsyncWaslahClient` (one connection pool) per (event loop, client options).

    A triggerer runs thousands of triggers in one event loop; each builds its own hook. Without
    sharing, each hook opened its own ``httpx.AsyncClient``: 1,000 triggers, 1,000 TCP
    connections. Here every hook on the same connection settings in the same loop leases the same
    client; the last lease released closes it. The rate budget is already shared process-wide
    per (base URL, key) by :func:`~airflow_provider_waslah.client.ratelimit.shared_limiter`.

    Loops are held weakly: a loop that is closed and dropped takes its clients with it (their
    sockets are released by the garbage collector; no coroutine can run on a closed loop).
    Entries of closed loops are pruned on the next lease.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # loops in other threads (tests, Airflow's sync-to-async bridges)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], list[Any]]] = (
            weakref.WeakKeyDictionary()
        )
        self._reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[dict[str, Any]]]] = (
            weakref.WeakKeyDictionary()
        )

    @staticmethod
    def _identity(options: dict[str, Any]) -> tuple[Any, ...]:
        items = dict(options)
        for secret in ("api_key", "rate_limit_storage"):
            if secret in items:
                items[secret] = hashlib.sha256(str(items[secret]).encode()).hexdigest()
        return tuple(sorted(items.items()))

    def lease(self, loop: asyncio.AbstractEventLoop, options: dict[str, Any]) -> AsyncWaslahClient:
        """The loop's client for ``options``, built on first use; one more holder counted."""
        identity = self._identity(options)
        with self._lock:
            for other in [other for other in self._loops if other.is_closed()]:
                del self._loops[other]
            clients = self._loops.setdefault(loop, {})
            entry = clients.get(identity)
            if entry is None:
                entry = clients[identity] = [AsyncWaslahClient(**options), 0]
            entry[1] += 1
            return entry[0]

    def release(self, loop: asyncio.AbstractEventLoop, client: AsyncWaslahClient) -> bool:
        """One holder fewer; True when it was the last (the caller then closes the client)."""
        with self._lock:
            clients = self._loops.get(loop, {})
            for identity, entry in list(clients.items()):
                if entry[0] is client:
                    entry[1] -= 1
                    if entry[1] > 0:
                        return False
                    del clients[identity]
                    if not clients:
                        self._loops.pop(loop, None)
                    return True
        return True  # not registered (its loop was pruned): the holder closes it

    async def options(
        self, loop: asyncio.AbstractEventLoop, conn_id: str, read: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        """The client options of ``conn_id``, read once for every hook asking while a read is under way.

        Thousands of triggers starting together would otherwise each run Airflow's connection
        lookup (~0.2 ms) back to back in one loop iteration (a 1 s stall per 5,000). Nothing is
        cached: a hook asking after the read finished reads the connection again.
        """
        with self._lock:
            reads = self._reads.setdefault(loop, {})
            task = reads.get(conn_id)
            if task is None:
                task = reads[conn_id] = loop.create_task(read())

                def forget(done: asyncio.Task[dict[str, Any]]) -> None:
                    with self._lock:
                        if reads.get(conn_id) is done:
                            del reads[conn_id]

                task.add_done_callback(forget)
        return await asyncio.shield(task)

    def count(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many shared clients are held (in ``loop``, or in every loop not yet closed)."""
        with self._lock:
            loops = [loop] if loop is not None else [each for each in self._loops if not each.is_closed()]
            return sum(len(self._loops.get(each, {})) for each in loops)


#: The process's shared async clients (see :class:`_SharedAsyncClients`).
shared_async_clients = _SharedAsyncClients()


class WaslahAsyncHook(_WaslahHookBase, Endpoints):
    """Asyncio access to Waslah through an Airflow connection, for triggers and async notifiers.

    Same methods as :class:`WaslahHook`, as coroutines. The connection is fetched asynchronously
    (a synchronous lookup inside the triggerer's event loop can deadlock), and the client shares
    the process-wide rate limiter with every other hook using the same key.

    Hooks on the same connection settings in the same event loop share one client, so one
    connection pool (``ASYNC_POOL_SIZE`` connections) serves any number of triggers; ``aclose``
    releases this hook's lease and the last one closes the pool.
    """

    _client: AsyncWaslahClient | None = None
    _client_loop: asyncio.AbstractEventLoop | None = None

    async def get_async_conn(self) -> AsyncWaslahClient:
        """The async client for this connection in the running event loop (shared, see the class).

        An ``httpx.AsyncClient`` is bound to the loop it first ran in; a hook used again from
        another loop (two ``asyncio.run`` calls) gets that loop's client instead of "Event loop is closed".
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            if self._client is not None and self._client_loop is not None:
                # A lease in another loop: give it back; its loop closes (or already closed) it.
                shared_async_clients.release(self._client_loop, self._client)
                self._client = self._client_loop = None
            options = await shared_async_clients.options(loop, self.waslah_conn_id, self._read_options)
            if self._client is None:  # another task of this hook may have leased meanwhile
                self._client = shared_async_clients.lease(loop, options)
                self._client_loop = loop
        return self._client

    async def _read_options(self) -> dict[str, Any]:
        from airflow.providers.common.compat.connection import get_async_connection

        options = client_options(await get_async_connection(self.waslah_conn_id, hook=self))
        await _amask_storage(options)
        return options

    async def call(self, call: Call[T]) -> T:
        """Run a prepared call through this connection's async client; errors say which connection field to fix."""
        client = await self.get_async_conn()
        try:
            return await client.call(call)
        except WaslahError as error:
            instances = None
            if needs_instance_list(error):
                try:
                    listed = await client.call(calls.list_instances())
                    instances = instances_note(listed)
                except Exception as lookup_error:  # never hides the original error
                    instances = instances_note(lookup_error)
            explain(error, self.waslah_conn_id, base_url_of(client), instances)
            raise

    async def aclose(self) -> None:
        """Release this hook's client; the last hook of its loop to do so closes the pool."""
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        last = client is not None and loop is not None and shared_async_clients.release(loop, client)
        if last and client is not None and loop is asyncio.get_running_loop():
            await client.aclose()
