"""Operators that send WhatsApp messages through Waslah, and optionally wait for the outcome.

* :class:`WaslahSendTextOperator` - ``POST /messages/text``.
* :class:`WaslahSendMediaOperator` - ``POST /messages/media`` from a public ``url`` or a local
  ``file_path`` (uploaded first with ``POST /uploads``).
* :class:`WaslahSendMessageOperator` - ``POST /messages``, the unified endpoint.
* :class:`WaslahBroadcastOperator` - any number of recipients, split into broadcasts of at most
  100 (``POST /messages/bulk``), resumed without re-sending when the task is retried.
* :class:`WaslahBatchSendOperator` - one personalised message per row (a list, an XCom or a SQL
  query), at the key's whole budget, resumed from a checkpoint (also importable from
  ``airflow_provider_waslah.operators.batch``).

All of them validate their whole input before the first request, return a JSON-safe dict as
XCom and can wait for a final status (``wait_for``) in the worker or deferred to the triggerer.
This module is the stable import path; each operator lives in a module of its own.
"""

from __future__ import annotations

from airflow_provider_waslah.operators._base import SENT_XCOM_KEY
from airflow_provider_waslah.operators.batch import WaslahBatchSendOperator
from airflow_provider_waslah.operators.broadcast import WaslahBroadcastOperator
from airflow_provider_waslah.operators.media import WaslahSendMediaOperator, WaslahSendMessageOperator
from airflow_provider_waslah.operators.messages import WaslahSendTextOperator

__all__ = [
    "SENT_XCOM_KEY",
    "WaslahBatchSendOperator",
    "WaslahBroadcastOperator",
    "WaslahSendMediaOperator",
    "WaslahSendMessageOperator",
    "WaslahSendTextOperator",
]
