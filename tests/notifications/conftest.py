"""Fixtures of the notifier tests."""

from tests.operators.support import emulator  # noqa: F401
