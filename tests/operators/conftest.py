"""Fixtures of the operator tests."""

from tests.operators.support import emulator  # noqa: F401
