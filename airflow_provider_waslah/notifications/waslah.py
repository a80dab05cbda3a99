"""``WaslahNotifier``: WhatsApp alerts for task and DAG callbacks and deadline alerts."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_waslah._compat import AirflowException
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.validation import MAX_TEXT, check_instance_key, invalid_recipients_rule
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook
from airflow_provider_waslah.recipients import mask_number, resolve_recipients

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The default alert: what failed (or succeeded), where, which try, and the log link. Written to
#: render in every callback context: task callbacks have ``ti``; DAG callbacks and deadline
#: alerts may only have ``dag_run`` (or neither).
DEFAULT_TEXT = (
    "*Airflow alert*"
    "{% if ti is defined and ti %}\n"
    "DAG: {{ ti.dag_id }}\n"
    "Task: {{ ti.task_id }}{% if ti.map_index is not none and ti.map_index >= 0 %} [{{ ti.map_index }}]{% endif %}\n"
    "Run: {{ ti.run_id }}\n"
    "Try: {{ ti.try_number }}\n"
    "State: {{ ti.state.value | default(ti.state) }}\n"
    "Log: {{ ti.log_url }}"
    "{% elif dag_run is defined and dag_run %}\n"
    "DAG: {{ dag_run.dag_id }}\n"
    "Run: {{ dag_run.run_id }}\n"
    "State: {{ dag_run.state.value | default(dag_run.state) }}"
    "{% endif %}"
    "{% if exception is defined and exception %}\n"
    "Error: {{ exception | string | truncate(500) }}"
    "{% endif %}"
)


class WaslahNotifier(BaseNotifier):
    """Send a WhatsApp text through Waslah from an Airflow callback.

    Use it as ``on_failure_callback``, ``on_success_callback`` or ``on_retry_callback`` of a task
    or DAG, or in a deadline alert
    (``DeadlineAlert(..., callback=AsyncCallback(WaslahNotifier, kwargs={...}))``), which runs
    :meth:`async_notify` in the triggerer. One text is sent to each recipient; a failure for one
    recipient does not stop the others (the notifier raises at the end, naming them).

    Texts longer than Waslah's 4000 characters are cut (with a warning) rather than lost: an
    alert that cannot be sent is worse than a shortened one.

    :param to: the recipient(s): a number, a JID, a list, a comma-separated string or dict rows
        (see ``recipient_key``) (templated).
    :param instance_key: the connected Waslah instance to send from (templated).
    :param text: a Jinja template rendered with the callback's context (templated); the default
        names the DAG, task, run, try, state and log URL, and the error when there is one.
    :param recipient_key: the key holding the number when ``to`` holds dicts.
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param kwargs: passed on to :class:`~airflow.sdk.BaseNotifier` (deadline alerts pass extra
        arguments).
    """

    template_fields: Sequence[str] = ("text", "to", "instance_key", "waslah_conn_id")

    def __init__(
        self,
        *,
        to: Any,
        instance_key: str,
        text: str = DEFAULT_TEXT,
        recipient_key: str | None = None,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.instance_key = instance_key
        self.text = text
        self.recipient_key = recipient_key
        self.waslah_conn_id = waslah_conn_id
        # BaseNotifier renders template fields in place; one notifier is often shared by many
        # tasks (default_args), so every call starts again from these templates.
        self._templates = {name: getattr(self, name) for name in self.template_fields}

    def _restore_templates(self) -> None:
        for name, template in getattr(self, "_templates", {}).items():
            setattr(self, name, copy.deepcopy(template))

    def _update_context(self, context: Context) -> Context:
        self._restore_templates()
        return super()._update_context(context)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the template fields afresh from the templates given to ``__init__`` (not from an earlier call)."""
        self._restore_templates()
        super().render_template_fields(context, jinja_env)

    def _prepare(self) -> tuple[list[str], str]:
        """The normalised recipients and the text to send; raises before any request on bad input."""
        valid, invalid = resolve_recipients(self.to, "to", self.recipient_key)
        if invalid:
            raise WaslahInvalidInputError("to", invalid_recipients_rule(invalid))
        if not valid:
            raise WaslahInvalidInputError("to", "must name at least one recipient")
        check_instance_key(self.instance_key)
        text = str(self.text)
        if len(text) > MAX_TEXT:
            self.log.warning("Alert text has %d characters; cutting it to Waslah's %d", len(text), MAX_TEXT)
            text = text[: MAX_TEXT - 1] + "…"
        return valid, text

    def _finish(self, failures: list[str], sent: int) -> None:
        if failures:
            raise AirflowException(
                f"Waslah alert not sent to {len(failures)} recipient(s) (sent to {sent}): " + "; ".join(failures)
            )

    def notify(self, context: Context) -> None:
        """Send the alert with :class:`WaslahHook` (task and DAG callbacks)."""
        recipients, text = self._prepare()
        hook = WaslahHook(waslah_conn_id=self.waslah_conn_id)
        failures: list[str] = []
        for number in recipients:
            try:
                receipt = hook.send_text(instance_key=self.instance_key, to=number, text=text)
            except AirflowException as error:
                failures.append(f"{mask_number(number)}: {error}")
                continue
            self.log.info("Queued Waslah alert %s to %s (%s)", receipt.id, mask_number(number), receipt.status)
        self._finish(failures, len(recipients) - len(failures))

    async def async_notify(self, context: Context) -> None:
        """Send the alert with :class:`WaslahAsyncHook` (deadline alerts, in the triggerer)."""
        recipients, text = self._prepare()
        hook = WaslahAsyncHook(waslah_conn_id=self.waslah_conn_id)
        failures: list[str] = []
        try:
            for number in recipients:
                try:
                    receipt = await hook.send_text(instance_key=self.instance_key, to=number, text=text)
                except AirflowException as error:
                    failures.append(f"{mask_number(number)}: {error}")
                    continue
                self.log.info("Queued Waslah alert %s to %s (%s)", receipt.id, mask_number(number), receipt.status)
        finally:
            await hook.aclose()
        self._finish(failures, len(recipients) - len(failures))


send_waslah_notification = WaslahNotifier
