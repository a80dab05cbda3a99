"""Airflow names that moved between 3.1 and 3.3 (we support 3.1+), imported from one place.

Airflow 3.1's ``airflow.sdk`` has no ``conf`` and its ``airflow.sdk.exceptions`` lacks
``AirflowFailException``, ``AirflowSkipException`` and ``TaskDeferralTimeout``; 3.2+ has them
and warns on the old paths. Airflow's own ``common-compat`` provider resolves most of them;
``TaskDeferralTimeout`` it does not cover.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    conf,
    mask_secret,
)

if TYPE_CHECKING:
    from airflow.sdk.exceptions import TaskDeferralTimeout
else:
    try:
        from airflow.sdk.exceptions import TaskDeferralTimeout
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import TaskDeferralTimeout

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSkipException",
    "TaskDeferralTimeout",
    "conf",
    "mask_secret",
]
