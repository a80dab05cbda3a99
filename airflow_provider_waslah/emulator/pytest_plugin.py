"""Pytest fixtures for the Waslah emulator (registered as the ``waslah_emulator`` pytest11 plugin).

Imports stay light: FastAPI and uvicorn are imported inside the fixtures only.
"""

from __future__ import annotations
