"""``[core] hostname_callable`` for the cluster tests' Celery workers: one machine, three "hosts".

Airflow records the host that ran each task instance (``task_instance.hostname``) through this
callable. The workers share one machine, so each gets its name from ``WASLAH_TEST_HOSTNAME``,
and the tests can tell which worker ran what.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``WASLAH_TEST_HOSTNAME``, else the machine's name."""
    return os.environ.get("WASLAH_TEST_HOSTNAME") or socket.getfqdn()
