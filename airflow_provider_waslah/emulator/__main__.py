"""``python -m airflow_provider_waslah.emulator``."""

from __future__ import annotations

import sys

from airflow_provider_waslah.emulator.cli import main

sys.exit(main())
