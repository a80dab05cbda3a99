"""Names of the default seed, shared by the backend, the server, the control handle and tests (no imports).

The pytest plugin imports this package in every test session, so this module stays import-free.
"""

from __future__ import annotations

#: The demo API key of the default seed (Pro plan, all four scopes).
DEFAULT_API_KEY = "wsl_demo_0123456789abcdef"
#: The connected instance of the default seed (``offline`` is the disconnected one).
DEFAULT_INSTANCE_KEY = "demo"
#: Every API-key scope Waslah knows.
ALL_SCOPES: tuple[str, ...] = ("messages:send", "messages:read", "instances:read", "instances:write")
#: Numbers matching this (``fnmatch``) pattern are "not registered on WhatsApp": sends to them fail.
UNREACHABLE_PATTERN = "628999*"


def unreachable_number(n: int = 1234567) -> str:
    """A phone number the default seed treats as not on WhatsApp: ``628999`` and ``n`` in 7 digits.

    ``unreachable_number()`` is :data:`UNREACHABLE_NUMBER`; other ``n`` give other numbers
    (``unreachable_number(1)`` is ``6289990000001``, the one the example DAGs use).
    """
    if not 0 <= n < 10**7:
        raise ValueError(f"n must be between 0 and 9999999, got {n}")
    return f"628999{n:07d}"


#: A phone number the default seed treats as not on WhatsApp (sends to it end ``failed``).
UNREACHABLE_NUMBER = unreachable_number()
