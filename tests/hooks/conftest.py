"""The hook tests share the client tests' fixtures (fresh limiters per test)."""

from __future__ import annotations

from tests.client.conftest import fresh_limiters  # noqa: F401  (autouse fixture)
