"""The shared rate budget (``rate_limit_storage``): real redis-server, the emulator over HTTP, separate OS processes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.client import shared_budget
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.ratelimit import RateLimiter
from airflow_provider_waslah.client.shared_budget import (
    SharedBudget,
    check_storage_url,
    secrets_of,
    shown_storage,
    window_for,
)
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.process import emulator_process, free_port
from tests.budget_processes import run_processes
from tests.redis_server import PASSWORD, RedisServer, redis_server

LIMIT = 10
WINDOW = 2.0
LOGGER = "airflow_provider_waslah.client"


@pytest.fixture(autouse=True)
def fresh_budgets() -> Iterator[None]:
    """Each test builds its own shared budgets (the registry is per process, like the limiters')."""
    saved = dict(shared_budget._registry)
    shared_budget._registry.clear()
    yield
    shared_budget._registry.clear()
    shared_budget._registry.update(saved)


@pytest.fixture
def short_window() -> Iterator[EmulatorHandle]:
    """An emulator of its own (its ledger is the test's) in its own process, in real time, with a short rate window."""
    with emulator_process("--time-scale", "1", "--rate-window", str(WINDOW)) as handle:
        yield handle


def new_key(handle: EmulatorHandle) -> EmulatorHandle:
    return handle.new_key(time_scale=1.0, rate_window_seconds=WINDOW, plan_limits={"pro": LIMIT})


def unreachable_url() -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)


# ---------------------------------------------------------------------------------------- across processes


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_two_processes_share_one_budget(short_window: EmulatorHandle, redis_storage: RedisServer, mode: str) -> None:
    key = new_key(short_window)
    run = run_processes(
        key.base_url,
        key.api_key,
        lambda: key.api_requests(key=key.api_key),
        processes=2,
        per_process=15,
        limit=LIMIT,
        window=WINDOW,
        storage=redis_storage.url,
        mode=mode,
    )
    assert run.errors == []
    assert (run.sent, run.requests, run.refused) == (30, 30, 0)
    assert run.share >= 0.9, run
    ledger = key.ledger()
    assert sum(len(items) for items in ledger.values()) == 30
    assert all(len(items) == 1 for items in ledger.values())


@pytest.mark.timeout(180)
def test_without_the_storage_the_same_run_overspends(short_window: EmulatorHandle) -> None:
    """The contrast: per-process limiters each spend the whole budget, so the emulator refuses some."""
    key = new_key(short_window)
    run = run_processes(
        key.base_url,
        key.api_key,
        lambda: key.api_requests(key=key.api_key),
        processes=2,
        per_process=15,
        limit=LIMIT,
        window=WINDOW,
        storage=None,
    )
    assert run.errors == []
    assert run.sent == 30
    assert run.refused > 0


def test_the_moving_window_is_longer_than_the_servers_by_the_margin() -> None:
    assert window_for(60) == 62  # 60 + 1.2 s, rounded up: Redis expires keys in whole seconds
    assert window_for(2) == 3  # 2 + 0.2 s
    assert window_for(10) == 11
    assert window_for(0.5) == 1


# ---------------------------------------------------------------------------------------- in one process


def test_the_redis_key_holds_the_keys_digest_never_the_key(
    waslah_emulator_conn: EmulatorHandle, redis_storage: RedisServer
) -> None:
    api_key = waslah_emulator_conn.api_key
    with WaslahClient(
        api_key=api_key, base_url=waslah_emulator_conn.base_url, rate_limit_storage=redis_storage.url
    ) as c:
        c.get_me()
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    keys = redis_storage.stored_keys()
    assert f"waslah:budget/{digest}" in keys
    assert not any(api_key[4:16] in name for name in keys)


def test_threads_of_one_process_and_a_second_budget_object_share_the_redis_window(redis_storage: RedisServer) -> None:
    """Two budgets with their own local limiters (as two processes have) take slots from one window."""
    first = SharedBudget(redis_storage.url, RateLimiter(4, 30.0), "digest-shared-window")
    second = SharedBudget(redis_storage.url, RateLimiter(4, 30.0), "digest-shared-window")
    waits = [first.acquire(), second.acquire(), first.acquire(), second.acquire(), first.acquire(), second.acquire()]
    assert waits[:4] == [0.0] * 4
    assert all(wait > 0 for wait in waits[4:])
    assert first.headroom()[0] == 0


async def test_the_async_client_takes_its_slots_from_the_same_window(
    waslah_emulator_conn: EmulatorHandle, redis_storage: RedisServer
) -> None:
    waslah_emulator_conn.seed(plan_limits={"pro": 3})  # X-RateLimit-Limit resizes the budget: keep it at 3
    options = {
        "api_key": waslah_emulator_conn.api_key,
        "base_url": waslah_emulator_conn.base_url,
        "rate_limit_per_minute": 3,
        "rate_limit_storage": redis_storage.url,
    }
    async with AsyncWaslahClient(**options) as client:
        for _ in range(3):
            await client.get_me()
        budget = client.limiter
        assert isinstance(budget, SharedBudget)
        assert await budget.acquire_async() > 30  # the window (62 s) is full: the next slot is a minute away
    with WaslahClient(**options) as other:  # another client, same key: the same full window
        assert other.limiter.headroom()[0] == 0


async def test_a_stalled_storage_does_not_block_the_event_loop(
    waslah_emulator_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stopped mid-run (SIGSTOP): the await times out while other coroutines run; the send goes on."""
    with redis_server() as server:
        async with AsyncWaslahClient(
            api_key=waslah_emulator_conn.api_key, base_url=waslah_emulator_conn.base_url, rate_limit_storage=server.url
        ) as client:
            await client.get_me()  # connected
            os.kill(server.pid, signal.SIGSTOP)
            ticks = 0
            done = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while not done.is_set():
                    await asyncio.sleep(0.01)
                    ticks += 1

            beat = asyncio.create_task(ticker())
            with caplog.at_level(logging.WARNING, logger=LOGGER):
                me = await client.get_me()
            done.set()
            await beat
            os.kill(server.pid, signal.SIGCONT)
    assert me.api_key.prefix
    assert ticks >= 5  # the loop ran other work while the read timed out
    (warning,) = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert "TimeoutError" in warning


# ---------------------------------------------------------------------------------------- the fallback


@pytest.mark.parametrize("storage", ["refused", "wrong password"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_unusable_storage_falls_back_with_one_warning(
    waslah_emulator_conn: EmulatorHandle,
    redis_storage: RedisServer,
    caplog: pytest.LogCaptureFixture,
    storage: str,
    flavour: str,
) -> None:
    url = unreachable_url() if storage == "refused" else redis_storage.url.replace(PASSWORD, "not-the-" + PASSWORD)
    options = {"api_key": waslah_emulator_conn.api_key, "base_url": waslah_emulator_conn.base_url}
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        if flavour == "sync":
            with WaslahClient(**options, rate_limit_storage=url) as client:
                receipts = [
                    client.send_text(instance_key="demo", to=f"0812000000{n:02d}", text="Halo") for n in range(6)
                ]
        else:

            async def send_all() -> list[Any]:
                async with AsyncWaslahClient(**options, rate_limit_storage=url) as client:
                    return [
                        await client.send_text(instance_key="demo", to=f"0812000000{n:02d}", text="Halo")
                        for n in range(6)
                    ]

            receipts = asyncio.run(send_all())
    assert len({receipt.id for receipt in receipts}) == 6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "Shared rate budget" in r.getMessage()]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage()
    assert ("ConnectionError" if storage == "refused" else "AuthenticationError") in warnings[0].getMessage()
    assert PASSWORD not in logged(caplog)


def test_the_storage_is_used_again_once_it_answers(
    waslah_emulator_conn: EmulatorHandle, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_budget, "RETRY_STORAGE_EVERY", 0.3)
    port = free_port()
    api_key = waslah_emulator_conn.api_key
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    with (
        caplog.at_level(logging.INFO, logger=LOGGER),
        WaslahClient(api_key=api_key, base_url=waslah_emulator_conn.base_url, rate_limit_storage=url) as client,
    ):
        client.get_me()
        with redis_server(port=port) as server:
            client.get_me()  # within the 0.3 s: still the local limiter, Redis not asked
            assert server.stored_keys() == []
            asyncio.run(asyncio.sleep(0.4))
            client.get_me()
            assert server.stored_keys() == [f"waslah:budget/{hashlib.sha256(api_key.encode()).hexdigest()}"]
    messages = [r.getMessage() for r in caplog.records if "Shared rate budget" in r.getMessage()]
    assert len(messages) == 2
    assert "unreachable" in messages[0]
    assert "answers again" in messages[1]


def test_a_missing_library_names_the_extra(waslah_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "limits", None)
    with pytest.raises(WaslahInvalidInputError, match=r"airflow-provider-waslah\[redis\]") as raised:
        WaslahClient(
            api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url, rate_limit_storage=unreachable_url()
        )
    assert raised.value.field == "rate_limit_storage"
    assert PASSWORD not in str(raised.value)


def test_without_the_storage_the_client_keeps_the_process_limiter(waslah_emulator: EmulatorHandle) -> None:
    with WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as client:
        assert isinstance(client.limiter, RateLimiter)


# ---------------------------------------------------------------------------------------- secrets


def test_the_password_never_shows_in_reprs(waslah_emulator: EmulatorHandle, redis_storage: RedisServer) -> None:
    with WaslahClient(
        api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url, rate_limit_storage=redis_storage.url
    ) as client:
        texts = [repr(client), repr(client.limiter), str(client.limiter), client.limiter.storage]  # type: ignore[attr-defined]
    assert not [text for text in texts if PASSWORD in text]
    assert f"127.0.0.1:{redis_storage.port}/0" in repr(client.limiter)


# ---------------------------------------------------------------------------------------- the URL check

_PASSWORD_MARK = "Pw9SECRETmark"
passwords = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(lambda s: _PASSWORD_MARK + s)
hosts = st.sampled_from(["127.0.0.1", "redis", "redis.internal.example", "[::1]", "10.0.0.5"])


@st.composite
def storage_urls(draw: st.DrawFn) -> tuple[str, str]:
    """A valid storage URL and the password in it."""
    password = draw(passwords)
    user = draw(st.sampled_from(["", "default", "waslah"]))
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    database = draw(st.one_of(st.none(), st.integers(0, 15)))
    url = f"{draw(st.sampled_from(['redis', 'rediss']))}://{user}:{quote(password, safe='')}@{draw(hosts)}"
    url += "" if port is None else f":{port}"
    url += "" if database is None else f"/{database}"
    return url, password


@given(storage_urls())
def test_valid_storage_urls_are_accepted_and_shown_without_the_password(case: tuple[str, str]) -> None:
    url, password = case
    assert check_storage_url(url) == url
    assert check_storage_url(f"  {url}\n") == url
    assert _PASSWORD_MARK not in shown_storage(url)
    assert password in secrets_of(url)


_BREAKS = [
    lambda url: url.replace("redis", "http", 1),
    lambda url: url.split("://", 1)[1],
    lambda url: url + "/not-a-db",
    lambda url: url + "/0/1",
    lambda url: url + "#part",
    lambda url: url.replace("@", "@ ", 1),
    lambda url: url.rsplit("@", 1)[0] + "@:6379",
    lambda url: url.rsplit("@", 1)[0] + "@127.0.0.1:99999",
    lambda url: url.rsplit("@", 1)[0] + "@127.0.0.1:port",
    lambda url: url.replace("@", "@é", 1),
]


@given(storage_urls(), st.sampled_from(range(len(_BREAKS))))
def test_broken_storage_urls_are_refused_without_quoting_the_password(case: tuple[str, str], which: int) -> None:
    url, _ = case
    broken = _BREAKS[which](url)
    with pytest.raises(WaslahInvalidInputError) as raised:
        check_storage_url(broken, "connection 'w' extra.rate_limit_storage")
    assert raised.value.field == "connection 'w' extra.rate_limit_storage"
    assert _PASSWORD_MARK not in str(raised.value)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.integers(), st.none(), st.lists(st.text(max_size=3))), st.text(max_size=5))
def test_any_value_is_accepted_or_refused_with_our_error_only(value: Any, noise: str) -> None:
    candidate = f"{value}{_PASSWORD_MARK}{noise}" if isinstance(value, str) else value
    try:
        check_storage_url(candidate)
    except WaslahInvalidInputError as error:
        assert _PASSWORD_MARK not in str(error)


def test_a_storage_error_is_logged_without_the_password_even_when_the_driver_quotes_it(
    redis_storage: RedisServer,
) -> None:
    budget = SharedBudget(redis_storage.url, RateLimiter(5, 60.0), "digest-describe")
    described = budget._describe(RuntimeError(f"auth failed for {PASSWORD} and {quote(PASSWORD)}"))
    assert PASSWORD not in described
    assert described.startswith("RuntimeError: auth failed for ***")


def test_the_ledger_of_a_fallback_run_is_exactly_once(waslah_emulator_conn: EmulatorHandle) -> None:
    with WaslahClient(
        api_key=waslah_emulator_conn.api_key,
        base_url=waslah_emulator_conn.base_url,
        rate_limit_storage=unreachable_url(),
    ) as client:
        for n in range(3):
            client.send_text(instance_key="demo", to=f"08129999{n:04d}", text="Halo")
    counts = Counter(len(items) for items in waslah_emulator_conn.ledger().values())
    assert counts == Counter({1: 3})


async def test_a_cancelled_retry_of_the_storage_does_not_stop_later_retries(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trigger cancelled while it was the one trying Redis again: the next caller tries it instead."""
    monkeypatch.setattr(shared_budget, "RETRY_STORAGE_EVERY", 0.0)
    with redis_server() as server, caplog.at_level(logging.INFO, logger=LOGGER):
        budget = SharedBudget(server.url, RateLimiter(100, 60.0), "digest-cancelled-probe")
        os.kill(server.pid, signal.SIGSTOP)
        assert await budget.acquire_async() == 0.0  # timed out: granted by the local limiter
        probe = asyncio.create_task(budget.acquire_async())  # tries Redis again, which is still stopped
        await asyncio.sleep(0.1)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        os.kill(server.pid, signal.SIGCONT)
        assert await budget.acquire_async() == 0.0
    messages = [r.getMessage() for r in caplog.records if "Shared rate budget" in r.getMessage()]
    assert ["unreachable" in m for m in messages] == [True, False]
    assert "answers again" in messages[1]
