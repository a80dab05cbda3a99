"""Names of the default seed shared by the state model, the server and the control handle (no imports)."""

from __future__ import annotations

#: The demo API key of the default seed (Pro plan, all four scopes).
DEFAULT_API_KEY = "wsl_demo_0123456789abcdef"
#: The connected instance of the default seed (``offline`` is the disconnected one).
DEFAULT_INSTANCE_KEY = "demo"
