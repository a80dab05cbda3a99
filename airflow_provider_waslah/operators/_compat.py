"""Imports that moved between Airflow 3.1 and 3.3 (we support 3.1+).

Airflow 3.1's ``airflow.sdk`` has no ``conf`` and its ``airflow.sdk.exceptions`` has no
``AirflowFailException`` / ``TaskDeferralTimeout``; 3.2+ has both and warns on the old paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import conf
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferralTimeout
else:
    from airflow.sdk.exceptions import AirflowException

    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf
    try:
        from airflow.sdk.exceptions import AirflowFailException, TaskDeferralTimeout
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import AirflowFailException, TaskDeferralTimeout

__all__ = ["AirflowException", "AirflowFailException", "TaskDeferralTimeout", "conf"]
