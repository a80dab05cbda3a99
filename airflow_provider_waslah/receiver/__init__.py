"""The Waslah webhook receiver: verified Waslah events become Airflow asset events.

- :mod:`~airflow_provider_waslah.receiver.verify`: the checks on one delivery (no HTTP, no DB);
- :mod:`~airflow_provider_waslah.receiver.store`: the connection's secret, the asset event, replays;
- :mod:`~airflow_provider_waslah.receiver.app`: the FastAPI app, ``POST /waslah/webhook/<conn_id>``.

The api-server mounts the app through the provider's plugin
(:class:`airflow_provider_waslah.plugins.webhook_receiver.WaslahWebhookReceiverPlugin`). DAG files
use :mod:`airflow_provider_waslah.inbound` instead, which imports none of this.
"""
