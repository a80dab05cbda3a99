"""The client's own pools over TLS (``https://`` base URLs, as the real Waslah has).

A certificate authority made for the test (``trustme``) signs the server's certificate; the
client trusts it in place of the system's CAs. The pool must verify the chain and the host
name, and keep one TLS connection alive for many requests.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator

import pytest
import trustme

from airflow_provider_waslah.client import _http
from airflow_provider_waslah.client import errors as e
from tests.client.test_pool import MODES, RawServer, Script, _answer, _calls, _ping


class TLSServer(RawServer):
    """:class:`RawServer` behind TLS; counts handshakes the client broke off."""

    def __init__(self, script: Script, context: ssl.SSLContext) -> None:
        self.context = context
        self.refused_handshakes = 0
        super().__init__(script)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/api/v1"

    def _serve(self, conn: socket.socket) -> None:
        try:
            wrapped = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused_handshakes += 1
            conn.close()
            return
        super()._serve(wrapped)


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    ca = trustme.CA()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    monkeypatch.setattr(_http, "_ssl_context", lambda: client_context)
    return ca


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[Callable[[str], TLSServer]]:
    servers: list[TLSServer] = []

    def start(host_in_certificate: str) -> TLSServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert(host_in_certificate).configure_cert(context)
        servers.append(TLSServer(lambda n, head: (_answer(n), False, 0.0), context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@MODES
def test_one_tls_connection_carries_every_request(tls_server: Callable[[str], TLSServer], mode: str) -> None:
    server = tls_server("127.0.0.1")
    results = _calls(server.base_url, [_ping(), _ping(True), _ping()], mode=mode)
    assert results == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert server.connections == 1
    assert server.request_lines == [
        "GET /api/v1/me HTTP/1.1",
        "POST /api/v1/messages/text HTTP/1.1",
        "GET /api/v1/me HTTP/1.1",
    ]


@MODES
def test_a_certificate_for_another_host_is_refused_before_anything_is_sent(
    tls_server: Callable[[str], TLSServer], mode: str
) -> None:
    server = tls_server("waslah.example")
    [result] = _calls(server.base_url, [_ping(True)], mode=mode, max_retries=0)
    assert isinstance(result, e.WaslahConnectionError)  # never sent, so not "outcome unknown"
    assert "CERTIFICATE_VERIFY_FAILED" in str(result) or "certificate" in str(result).lower()
    assert server.request_lines == []
    assert server.refused_handshakes >= 1
