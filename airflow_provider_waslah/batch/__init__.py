"""The batch engine behind ``WaslahBatchSendOperator``, without Airflow: one message per row.

- :mod:`.rows`: rows from a list / XCom, or streamed from a SQL query.
- :mod:`.prepare`: each row rendered, checked and keyed before the first send; spooled to disk.
- :mod:`.checkpoint`: which rows Waslah accepted, in append-only parts a retry reads.
- :mod:`.sender`: bounded concurrency through the shared rate limiter, outcomes checkpointed.
- :mod:`.run`: one try: resume, send what is left, totals and the rows worth a look.
- :mod:`.progress`: ``1,250 / 5,000 sent, 3 failed, 41/s, ETA 1 min 32 s``.
- :mod:`.wait`: one wait for the whole batch on the provider's polling policy.

Where checkpoints live in Airflow is :mod:`airflow_provider_waslah.checkpoints`.
"""
