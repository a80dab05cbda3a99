"""``WaslahHITLNotifier``: puts an Airflow human-in-the-loop question to its WhatsApp assignees.

Use it in ``notifiers=[...]`` of any of Airflow's HITL operators (``HITLOperator``,
``ApprovalOperator``, ``HITLBranchOperator``, ``HITLEntryOperator``); Airflow calls it once the
question is written, right before the task starts waiting. Who is asked comes from the operator's
own ``assigned_users`` (the ``whatsapp:…`` ones, see :func:`~airflow_provider_waslah.hitl.whatsapp_user`),
so the people Airflow lets answer and the people WhatsApp asks are one list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_waslah._compat import AirflowException
from airflow_provider_waslah.client.errors import WaslahSendOutcomeUnknownError
from airflow_provider_waslah.client.validation import check_instance_key
from airflow_provider_waslah.hitl.text import (
    DEFAULT_TIMEZONE,
    format_question,
    short_code,
    whatsapp_identities,
)
from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.recipients import mask_number

if TYPE_CHECKING:
    from airflow.sdk import Context


def _deadline(task: Any) -> datetime | None:
    """When the question times out: what the operator computed (standard provider 1.21+), else now + timeout."""
    summary = getattr(task, "hitl_summary_extra", None) or {}
    stamp = summary.get("timeout_datetime") if isinstance(summary, dict) else None
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp)
        except ValueError:
            pass
    timeout = getattr(task, "response_timeout", None)
    return datetime.now(timezone.utc) + timeout if isinstance(timeout, timedelta) else None


class WaslahHITLNotifier(BaseNotifier):
    """Send a HITL question to every ``whatsapp:`` assignee of the task, with its options numbered.

    The text carries the subject, the body, ``Balas 1 = Setujui, 2 = Tolak``, the deadline
    (``response_timeout``) and what happens without an answer (``defaults``), the question's short
    code and the link to the task's Required Actions page in the Airflow UI. Replies come back
    through the webhook receiver, which answers the question as the UI would (docs/hitl.md).

    A recipient the send fails for is logged and skipped; when nobody could be asked, the notifier
    raises, which fails the try (its retry asks again: nobody got the question the first time).

    :param instance_key: the connected Waslah instance to ask from; replies arrive on it (templated).
    :param waslah_conn_id: the ``waslah`` connection; its receiver URL must be registered in Waslah.
    :param base_url: the Airflow UI's address for the link (default ``[api] base_url``); no link
        when neither is set.
    :param tz: the time zone the deadline is written in (default ``Asia/Jakarta``: WIB).
    :param kwargs: passed on to :class:`~airflow.sdk.BaseNotifier`.
    """

    template_fields: Sequence[str] = ("instance_key", "waslah_conn_id", "base_url")

    def __init__(
        self,
        *,
        instance_key: str,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        base_url: str | None = None,
        tz: str = DEFAULT_TIMEZONE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_key = instance_key
        self.waslah_conn_id = waslah_conn_id
        self.base_url = base_url
        self.tz = tz

    def question_text(self, context: Context) -> tuple[list[str], str]:
        """The WhatsApp identities to ask and the question's text, from the HITL task in ``context``.

        :raises AirflowException: not a HITL task, or it has no ``whatsapp:`` assignee.
        """
        from airflow.providers.standard.operators.hitl import HITLOperator

        task = context.get("task")
        if not isinstance(task, HITLOperator):
            raise AirflowException(
                "WaslahHITLNotifier asks a human-in-the-loop question: use it in notifiers=[...] of HITLOperator, "
                f"ApprovalOperator, HITLBranchOperator or HITLEntryOperator (got {type(task).__name__})"
            )
        try:
            identities = whatsapp_identities(task.assigned_users)
        except ValueError as err:
            raise AirflowException(f"assigned_users of task {task.task_id!r}: {err}") from None
        if not identities:
            raise AirflowException(
                f"Task {task.task_id!r} has no WhatsApp assignee: add whatsapp_user('62812…') to its assigned_users"
            )
        ti = context["ti"]
        try:
            link: str | None = task.generate_link_to_ui(task_instance=ti, base_url=self.base_url or None)
        except ValueError:  # no [api] base_url and none given
            link = None
        text = format_question(
            code=short_code(ti.id),
            subject=str(task.subject),
            body=None if task.body is None else str(task.body),
            options=list(task.options),
            multiple=bool(task.multiple),
            deadline=_deadline(task),
            defaults=task.defaults,
            link=link,
            tz=self.tz,
        )
        return identities, text

    def notify(self, context: Context) -> None:
        """Ask every WhatsApp assignee (called by the HITL operator before it starts waiting)."""
        identities, text = self.question_text(context)
        check_instance_key(self.instance_key)
        hook = WaslahHook(waslah_conn_id=self.waslah_conn_id)
        failures: list[str] = []
        for identity in identities:
            try:
                receipt = hook.send_text(instance_key=self.instance_key, to=identity, text=text)
            except WaslahSendOutcomeUnknownError as error:
                # Maybe queued: asking again on a retry could ask twice, so this counts as asked.
                self.log.warning("HITL question to %s may have been queued: %s", mask_number(identity), error)
                continue
            except AirflowException as error:
                self.log.warning("HITL question not sent to %s: %s", mask_number(identity), error)
                failures.append(f"{mask_number(identity)}: {error}")
                continue
            self.log.info("Asked %s on WhatsApp: message %s (%s)", mask_number(identity), receipt.id, receipt.status)
        if len(failures) == len(identities):
            raise AirflowException("The HITL question reached no WhatsApp assignee: " + "; ".join(failures))
