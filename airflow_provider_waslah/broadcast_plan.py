"""How a large broadcast is split, named and resumed: Airflow-free, no I/O.

A send to any number of recipients goes out as Waslah broadcasts of at most 100 recipients
(chunks), one after the other. Waslah has no idempotency key, so the name of each chunk is what
lets a retry of the task find what an earlier try already created (``GET /broadcasts``):

``<prefix> · <dag_id>.<task_id>[<map_index>] af:<task>-<plan> <k>/<n>``

- ``<task>`` (12 hex digits) hashes the task instance: DAG, task, run and map index.
- ``<plan>`` (10 hex digits) is a running hash over everything chunks ``1..k`` send: the instance
  key, the message content (type, text, URL, caption, file name, MIME type, delays) and the
  recipients of chunk 1, then chunk 2, ... up to chunk ``k``.

So a chunk found by name was sent with exactly this try's recipients and content, and because
``<plan>`` chains the earlier chunks too, it also proves that chunks ``1..k-1`` went out exactly
as planned, even when they fell out of ``GET /broadcasts``' 50-item window.

A broadcast carrying this task instance's ``<task>`` whose ``<plan>`` matches no chunk of this
try was created by an earlier try **with other recipients or another text**: the input changed
between tries. :func:`reconcile` reports those, and the operator then fails without sending
(the default) or, when the user asks for it, sends every chunk not found (people in both lists
may then get the message twice, the new text for them; the earlier text stands for what was
already sent).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.models import Broadcast

_NAME_TOKEN = re.compile(r" af:(?P<task>[0-9a-f]{12})-(?P<plan>[0-9a-f]{10}) (?P<chunk>\d+)/(?P<chunks>\d+)$")


@dataclass(frozen=True)
class TaskIdentity:
    """The task instance a broadcast belongs to."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1

    @property
    def digest(self) -> str:
        """12 hex digits identifying the task instance in chunk names."""
        identity = "\x1f".join((self.dag_id, self.task_id, self.run_id, str(self.map_index)))
        return hashlib.sha256(identity.encode()).hexdigest()[:12]

    @property
    def readable(self) -> str:
        """``dag.task`` or ``dag.task[3]`` for a mapped task."""
        return f"{self.dag_id}.{self.task_id}" + (f"[{self.map_index}]" if self.map_index >= 0 else "")


@dataclass(frozen=True)
class BroadcastContent:
    """What every chunk sends, besides its recipients (fields as for ``POST /messages/bulk``)."""

    type: str = "text"
    text: str | None = None
    url: str | None = None
    caption: str | None = None
    filename: str | None = None
    mimetype: str | None = None
    delay_min_sec: int | None = None
    delay_max_sec: int | None = None

    def fingerprint(self, instance_key: str) -> bytes:
        """A stable byte string of the content and the sending instance."""
        fields: dict[str, Any] = {"instance_key": instance_key, **self.__dict__}
        return json.dumps(fields, sort_keys=True, ensure_ascii=True).encode()


@dataclass(frozen=True)
class PlannedChunk:
    """One broadcast of the plan, validated and ready to send."""

    number: int
    chunks: int
    recipients: tuple[str, ...]
    name: str
    plan_digest: str
    call: Call[Broadcast] = field(repr=False)


def chunk_name(prefix: str | None, task: TaskIdentity, chunk: int, chunks: int, plan_digest: str) -> str:
    """The name of one chunk (at most 200 characters; the readable part is shortened, never the tokens)."""
    suffix = f" af:{task.digest}-{plan_digest} {chunk}/{chunks}"
    readable = f"{prefix} · {task.readable}" if prefix else task.readable
    room = rules.MAX_BROADCAST_NAME - len(suffix)
    if len(readable) > room:
        readable = readable[: room - 1] + "…"
    return readable + suffix


def plan_broadcast(
    *,
    task: TaskIdentity,
    instance_key: str,
    recipients: Sequence[str],
    content: BroadcastContent,
    prefix: str | None = None,
    chunk_size: int = rules.MAX_BROADCAST_RECIPIENTS,
) -> list[PlannedChunk]:
    """Split ``recipients`` (already normalised) into named chunks; every chunk's request is validated now."""
    groups = [tuple(recipients[i : i + chunk_size]) for i in range(0, len(recipients), chunk_size)]
    running = hashlib.sha256(content.fingerprint(instance_key))
    planned: list[PlannedChunk] = []
    for number, group in enumerate(groups, start=1):
        running.update(b"\x1d" + "\x1e".join(group).encode())
        plan_digest = running.copy().hexdigest()[:10]
        name = chunk_name(prefix, task, number, len(groups), plan_digest)
        call = calls.send_bulk(
            instance_key=instance_key,
            recipients=list(group),
            type=content.type,
            text=content.text,
            url=content.url,
            caption=content.caption,
            filename=content.filename,
            mimetype=content.mimetype,
            name=name,
            delay_min_sec=content.delay_min_sec,
            delay_max_sec=content.delay_max_sec,
        )
        planned.append(PlannedChunk(number, len(groups), group, name, plan_digest, call))
    return planned


@dataclass(frozen=True)
class Resume:
    """What earlier tries of the same task instance already sent, as far as ``GET /broadcasts`` shows.

    :ivar found: chunk number -> the broadcast found by its name.
    :ivar through: the highest chunk found: chunks ``1..through`` exist (``0``: none).
    :ivar changed: broadcasts of this task instance that match no chunk of this plan: an earlier
        try sent other recipients or another text.
    """

    found: dict[int, Broadcast]
    through: int
    changed: tuple[Broadcast, ...]

    def already_sent(self, number: int) -> bool:
        """True when chunk ``number`` was created by an earlier try (found, or proven by a later chunk)."""
        return number in self.found or number < self.through

    def changed_input_text(self) -> str:
        """Why a try whose input changed does not pass as resumed."""
        shown = ", ".join(f"{b.id} ({b.name})" for b in self.changed[:5])
        more = f" and {len(self.changed) - 5} more" if len(self.changed) > 5 else ""
        return (
            f"An earlier try of this task instance created broadcast(s) {shown}{more} for recipients or a text "
            "that differ from this try's, so this try cannot resume them: sending now could text people twice "
            "or skip the new ones. Nothing was sent by this try. Restore the earlier input to resume, or set "
            "on_input_change='send' to send the new input in full."
        )


def parse_chunk_name(name: str | None) -> tuple[str, str, int, int] | None:
    """``(task_digest, plan_digest, chunk, chunks)`` from a chunk name, or ``None`` for other names."""
    match = _NAME_TOKEN.search(name or "")
    if match is None:
        return None
    return match["task"], match["plan"], int(match["chunk"]), int(match["chunks"])


def reconcile(plan: Sequence[PlannedChunk], listed: Iterable[Broadcast], task: TaskIdentity) -> Resume:
    """Match the broadcasts Waslah lists against ``plan``."""
    by_digest = {chunk.plan_digest: chunk.number for chunk in plan}
    found: dict[int, Broadcast] = {}
    changed: list[Broadcast] = []
    for broadcast in listed:
        parsed = parse_chunk_name(broadcast.name)
        if parsed is None or parsed[0] != task.digest:
            continue
        number = by_digest.get(parsed[1])
        if number is None or parsed[2] != number:
            changed.append(broadcast)
        else:
            found.setdefault(number, broadcast)
    return Resume(found, max(found, default=0), tuple(changed))
