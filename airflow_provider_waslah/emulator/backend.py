"""The emulator's state and Waslah's rules: :class:`WaslahBackend` (what a moto backend is to AWS).

It takes typed, already validated arguments and returns records (``records.py``); it knows
nothing of HTTP, JSON or its own URL. Rules it enforces raise
:class:`~airflow_provider_waslah.emulator.errors.EmulatorAPIError`. The routes (``app.py``,
``control.py``) parse requests into its arguments and build the API's JSON from what it returns
(``responses.py``, which also shapes the webhook events it sends).

Time: every message stores the *real* (wall-clock) moments at which it reaches each status,
computed once at creation from the ``lifecycle`` offsets (emulated seconds) times ``time_scale``
(real seconds per emulated second). Status is then a pure function of the clock (moto-style,
deterministic); a background ticker only fires webhook events for transitions.

Every public method holds :attr:`WaslahBackend.lock` (re-entrant), so the routes and the
background threads can call it from any thread.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
import mimetypes
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from airflow_provider_waslah.emulator.errors import (
    EmulatorAPIError,
    broadcast_not_found,
    message_not_found,
    shown,
    validation_failed,
)
from airflow_provider_waslah.emulator.faults import FaultTable
from airflow_provider_waslah.emulator.records import (
    ApiKey,
    Broadcast,
    BroadcastProgress,
    BulkRequest,
    Caller,
    Content,
    Delivery,
    Fault,
    FaultSpec,
    InboundRequest,
    Instance,
    LoggedRequest,
    Message,
    RateDecision,
    RateWindow,
    SendRequest,
    Summary,
    Upload,
    User,
    WebhookEndpoint,
)
from airflow_provider_waslah.emulator.responses import received_event, status_event
from airflow_provider_waslah.emulator.settings import (
    DEFAULT_SEED,
    ApiKeySeed,
    InstanceSeed,
    Seed,
    SeedPatch,
    Settings,
    UserSeed,
    apply_patch,
)
from airflow_provider_waslah.emulator.webhooks import WebhookOutbox
from airflow_provider_waslah.plans import PLAN_NAMES, SCHEDULE_FEATURE, WEBHOOK_FEATURE, plan_label

#: How many requests the request log keeps (the oldest go first).
REQUEST_LOG_MAX = 5000
#: ``GET /broadcasts`` lists the newest this many.
MAX_BROADCASTS_LISTED = 50
_UNAUTHORIZED = "Unauthenticated. API key tidak valid atau sudah dicabut."


class WaslahBackend:
    """Everything the emulator knows, behind one lock; Waslah's rules are its methods.

    :param seed: the seed it starts from and :meth:`reset` returns to.
    :param clock: the wall clock (``time.time``), replaceable in tests.
    """

    def __init__(self, seed: Seed = DEFAULT_SEED, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        #: Notified (under ``lock``) when something the background threads wait for changes.
        self.changed = threading.Condition(self.lock)
        self.clock = clock
        self.initial_seed = seed
        self.settings: Settings = seed.settings
        self.rng = random.Random(seed.settings.random_seed)
        self.users: dict[int, User] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.instances: dict[str, Instance] = {}
        self.windows: dict[str, RateWindow] = {}
        self.messages: dict[int, Message] = {}
        #: Messages with status transitions not yet turned into webhook events.
        self.active_messages: set[int] = set()
        #: ``(real time, message id)`` of each active message's next transition: the ticker looks
        #: only at what is due, not at every message in flight (a full scan per send cost more than
        #: the request itself at a few thousand sends a second).
        self._transitions_due: list[tuple[float, int]] = []
        self.broadcasts: dict[int, Broadcast] = {}
        self.uploads: dict[str, Upload] = {}
        self.outbox = WebhookOutbox()
        self.faults = FaultTable(seed.settings.random_seed)
        self.request_log: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_MAX)
        self._next_message_id = 1
        self._next_broadcast_id = 1
        self._install(seed, keep_counters=False)

    # ---------------------------------------------------------------- seed and reset

    def reset(self) -> Summary:
        """Back to the initial seed; clears messages, broadcasts, uploads, webhooks, faults, logs and windows."""
        with self.lock:
            for table in (self.users, self.api_keys, self.instances, self.windows, self.messages, self.broadcasts):
                table.clear()
            self.active_messages.clear()
            self._transitions_due.clear()
            self.uploads.clear()
            self.outbox.clear()
            self.faults.clear()
            self.request_log.clear()
            self._next_message_id = 1
            self._next_broadcast_id = 1
            self._install(self.initial_seed, keep_counters=False)
            self.rng = random.Random(self.settings.random_seed)
            self.faults.reseed(self.settings.random_seed)
            self.changed.notify_all()
            return self.summary()

    def apply_seed(self, patch: SeedPatch) -> Summary:
        """Change the live seed: settings, and users, keys and instances by id or key (usage counters kept)."""
        with self.lock:
            self._install(apply_patch(self.current_seed(), patch), keep_counters=True)
            if "random_seed" in patch.settings:
                self.rng = random.Random(self.settings.random_seed)
                self.faults.reseed(self.settings.random_seed)
            self.changed.notify_all()
            return self.summary()

    def current_seed(self) -> Seed:
        """The live settings, users, keys and instances as a seed (full API keys included)."""
        with self.lock:
            return Seed(
                settings=self.settings,
                users=tuple(UserSeed(id=u.id, name=u.name, email=u.email, plan=u.plan) for u in self.users.values()),
                api_keys=tuple(
                    ApiKeySeed(
                        key=k.key,
                        id=k.id,
                        user_id=k.user_id,
                        name=k.name,
                        scopes=k.scopes,
                        revoked=k.revoked,
                        expires_at=k.expires_at,
                    )
                    for k in self.api_keys.values()
                ),
                instances=tuple(
                    InstanceSeed(
                        key=i.key,
                        id=i.id,
                        user_id=i.user_id,
                        name=i.name,
                        status=i.status,
                        phone_number=i.phone_number,
                    )
                    for i in self.instances.values()
                ),
            )

    def _install(self, seed: Seed, keep_counters: bool) -> None:
        """Replace settings, users, keys and instances by ``seed``'s; same keys keep counters and creation time."""
        now = self.clock()
        keys_before = dict(self.api_keys) if keep_counters else {}
        instances_before = dict(self.instances) if keep_counters else {}
        self.settings = seed.settings
        self.users.clear()
        self.users.update({u.id: User(id=u.id, name=u.name, email=u.email, plan=u.plan) for u in seed.users})
        self.api_keys.clear()
        for spec in seed.api_keys:
            old = keys_before.get(spec.key)
            self.api_keys[spec.key] = ApiKey(
                id=spec.id,
                key=spec.key,
                user_id=spec.user_id,
                name=spec.name,
                scopes=spec.scopes,
                revoked=spec.revoked,
                expires_at=spec.expires_at,
                request_count=old.request_count if old else 0,
                last_used_at=old.last_used_at if old else None,
            )
        self.instances.clear()
        for item in seed.instances:
            previous = instances_before.get(item.key)
            created = previous.created_at if previous else now
            connected = item.status == "connected"
            self.instances[item.key] = Instance(
                id=item.id,
                key=item.key,
                user_id=item.user_id,
                name=item.name,
                status=item.status,
                phone_number=item.phone_number,
                created_at=created,
                connected_at=created if connected else None,
                disconnected_at=None if connected else created,
            )

    def summary(self) -> Summary:
        """A short description of the live state."""
        with self.lock:
            return Summary(
                users=len(self.users),
                api_key_prefixes=tuple(k.prefix for k in self.api_keys.values()),
                instances={i.key: i.status for i in self.instances.values()},
                time_scale=self.settings.time_scale,
                rate_window_seconds=self.settings.rate_window_seconds,
                messages=len(self.messages),
                broadcasts=len(self.broadcasts),
            )

    # ---------------------------------------------------------------- access

    def authenticate(self, token: str | None) -> Caller:
        """The caller owning API key ``token``; 401 if missing, wrong, revoked or expired."""
        with self.lock:
            key = self.api_keys.get(token) if token else None
            now = self.clock()
            if key is None or key.revoked or (key.expires_at is not None and key.expires_at <= now):
                raise EmulatorAPIError(401, "unauthorized", _UNAUTHORIZED)
            user = self.users.get(key.user_id)
            if user is None:
                raise EmulatorAPIError(401, "unauthorized", _UNAUTHORIZED)
            key.request_count += 1
            key.last_used_at = now
            return Caller(key=key, user=user)

    def count_request(self, caller: Caller) -> RateDecision:
        """Count one request against the caller's key in its fixed window (refused once the plan's budget is spent)."""
        with self.lock:
            limit = self.settings.plan_limits.get(caller.user.plan, 60)
            length = self.settings.rate_window_seconds
            now = self.clock()
            window = self.windows.get(caller.key.key)
            if window is None or now >= window.start + length:
                window = self.windows[caller.key.key] = RateWindow(start=now)
            end = window.start + length
            if window.hits >= limit:
                return RateDecision(False, limit, 0, end, retry_after=max(1, math.ceil(end - now)))
            window.hits += 1
            return RateDecision(True, limit, limit - window.hits, end)

    def has_feature(self, user: User, feature: str) -> bool:
        """Whether ``user``'s plan includes ``feature`` (features missing from the table are open)."""
        plans = self.settings.plan_features.get(feature)
        return plans is None or user.plan in plans

    def require_feature(self, user: User, feature: str) -> None:
        """403 ``plan_feature_required`` unless ``user``'s plan has ``feature``."""
        with self.lock:
            if self.has_feature(user, feature):
                return
            plans = self.settings.plan_features.get(feature) or ()
        ranked = sorted((p for p in plans if p in PLAN_NAMES), key=PLAN_NAMES.index)
        lowest = plan_label(ranked[0]) if ranked else "Enterprise"
        raise EmulatorAPIError(
            403,
            "plan_feature_required",
            f"{feature} butuh plan {lowest} atau lebih tinggi.",
            required_feature=feature,
            active_plan=plan_label(user.plan),
        )

    @staticmethod
    def require_scope(caller: Caller, scope: str | None) -> None:
        """403 ``forbidden_scope`` unless the caller's key has ``scope``."""
        if scope and scope not in caller.key.scopes:
            raise EmulatorAPIError(
                403,
                "forbidden_scope",
                f"API key tidak punya scope `{scope}` yang dibutuhkan endpoint ini.",
                required_scope=scope,
            )

    # ---------------------------------------------------------------- instances

    def instances_of(self, caller: Caller) -> list[Instance]:
        """``GET /instances``: the caller's instances."""
        with self.lock:
            return [i for i in self.instances.values() if i.user_id == caller.user.id]

    def instance(self, caller: Caller, key: str) -> Instance:
        """The caller's instance ``key``; 404 ``instance_not_found`` if unknown or someone else's."""
        with self.lock:
            instance = self.instances.get(key)
            if instance is None or instance.user_id != caller.user.id:
                raise EmulatorAPIError(
                    404, "instance_not_found", f"Instance `{shown(key, 100)}` tidak ditemukan atau bukan milik Anda."
                )
            return instance

    def _sending_instance(self, caller: Caller, key: str) -> Instance:
        instance = self.instance(caller, key)
        if instance.status != "connected":
            raise EmulatorAPIError(
                409,
                "instance_not_connected",
                f"Instance `{instance.key}` sedang `{instance.status}`. Hanya bisa kirim saat status `connected`.",
                instance_status=instance.status,
            )
        return instance

    # ---------------------------------------------------------------- messages

    def send(self, caller: Caller, request: SendRequest) -> Message:
        """Queue one single send: schedule feature if ``scheduled_at``, then a connected instance."""
        with self.lock:
            if request.scheduled_at is not None:
                self.require_feature(caller.user, SCHEDULE_FEATURE)
            instance = self._sending_instance(caller, request.instance_key)
            content = request.content
            return self._new_message(
                caller,
                instance,
                request.to,
                content,
                self._dispatch_time(request.scheduled_at),
                body=content.text if content.message_type == "text" else content.caption,
                scheduled_at=request.scheduled_at,
            )

    def send_bulk(self, caller: Caller, request: BulkRequest) -> BroadcastProgress:
        """One broadcast record plus one message per recipient, paced by a random delay between them."""
        with self.lock:
            instance = self._sending_instance(caller, request.instance_key)
            if not request.recipients:
                raise EmulatorAPIError(
                    422, "no_valid_recipients", "Tidak ada nomor valid (minimal 8 digit, max 15 digit)."
                )
            now = self.clock()
            scale = self.settings.time_scale
            start_at = now + self.settings.lifecycle.broadcast_start * scale
            broadcast_id = self._next_broadcast_id
            self._next_broadcast_id += 1
            content = request.content
            message_ids: list[int] = []
            dispatch = start_at
            for index, recipient in enumerate(request.recipients):
                if index:
                    dispatch += self.rng.uniform(request.delay_min_sec, request.delay_max_sec) * scale
                message = self._new_message(
                    caller,
                    instance,
                    recipient,
                    content,
                    dispatch,
                    body=content.text if content.message_type == "text" else content.caption,
                    broadcast_id=broadcast_id,
                )
                message_ids.append(message.id)
            broadcast = Broadcast(
                id=broadcast_id,
                user_id=caller.user.id,
                name=request.name,
                message_type=content.message_type,
                instance_key=instance.key,
                delay_min_sec=request.delay_min_sec,
                delay_max_sec=request.delay_max_sec,
                created_at=now,
                start_at=start_at,
                message_ids=tuple(message_ids),
            )
            self.broadcasts[broadcast.id] = broadcast
            return self._progress(broadcast, now)

    def message(self, caller: Caller, message_id: int) -> Message:
        """``GET /messages/{id}``: the caller's message; 404 ``not_found`` otherwise."""
        with self.lock:
            message = self.messages.get(message_id)
            if message is None or message.user_id != caller.user.id:
                raise message_not_found(message_id)
            return message

    def outbound_messages(self) -> list[Message]:
        """Every outbound message, oldest first (the ledger)."""
        with self.lock:
            return [m for m in self.messages.values() if m.direction == "outbound"]

    def _is_unreachable(self, recipient: str) -> bool:
        number = recipient.split("@", 1)[0]
        return any(
            fnmatch.fnmatchcase(number, p) or fnmatch.fnmatchcase(recipient, p) for p in self.settings.unreachable
        )

    def _dispatch_time(self, scheduled: datetime | None) -> float:
        now = self.clock()
        if scheduled is None:
            return now
        return now + max(0.0, scheduled.timestamp() - now) * self.settings.time_scale

    def _new_message(
        self,
        caller: Caller,
        instance: Instance,
        to: str,
        content: Content,
        dispatch_at: float,
        *,
        body: str | None,
        scheduled_at: datetime | None = None,
        broadcast_id: int | None = None,
    ) -> Message:
        """Queue one outbound message dispatched at ``dispatch_at`` (real time); call with the lock held."""
        scale = self.settings.time_scale
        life = self.settings.lifecycle
        sent_at = dispatch_at + life.sent * scale
        if self._is_unreachable(to):
            transitions: tuple[tuple[str, float], ...] = (("failed", sent_at),)
            error_message: str | None = f"Nomor {to.split('@', 1)[0]} tidak terdaftar di WhatsApp"
        else:
            # Offsets out of order still give statuses in order: nothing is read before it is delivered.
            delivered_at = max(sent_at, dispatch_at + life.delivered * scale)
            read_at = max(delivered_at, dispatch_at + life.read * scale)
            transitions = (("sent", sent_at), ("delivered", delivered_at), ("read", read_at))
            error_message = None
        phone, remote_jid = (to.split("@", 1)[0], to) if "@" in to else (to, f"{to}@s.whatsapp.net")
        message = Message(
            id=self._take_message_id(),
            user_id=caller.user.id,
            instance_key=instance.key,
            direction="outbound",
            message_type=content.message_type,
            to=to,
            phone_number=phone,
            remote_jid=remote_jid,
            body=body,
            created_at=self.clock(),
            transitions=transitions,
            media_url=content.media_url,
            media_filename=content.filename,
            media_mime_type=content.mime_type,
            caption=content.caption,
            provider_message_id=self._provider_message_id("BAE5", 12),
            error_message=error_message,
            scheduled_at=scheduled_at,
            broadcast_id=broadcast_id,
        )
        self.messages[message.id] = message
        self.active_messages.add(message.id)
        heapq.heappush(self._transitions_due, (transitions[0][1], message.id))
        if self._transitions_due[0][1] == message.id:  # the ticker sleeps until the old first one: wake it
            self.changed.notify_all()
        return message

    def _take_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _provider_message_id(self, prefix: str, digits: int) -> str:
        """A WhatsApp-like message id: ``prefix`` and ``digits`` random hex digits."""
        return prefix + "".join(self.rng.choice("0123456789ABCDEF") for _ in range(digits))

    # ---------------------------------------------------------------- broadcasts

    def broadcasts_of(self, caller: Caller) -> list[BroadcastProgress]:
        """``GET /broadcasts``: the caller's newest broadcasts with their progress."""
        with self.lock:
            now = self.clock()
            mine = sorted((b for b in self.broadcasts.values() if b.user_id == caller.user.id), key=lambda b: -b.id)
            return [self._progress(b, now) for b in mine[:MAX_BROADCASTS_LISTED]]

    def broadcast(self, caller: Caller, broadcast_id: int) -> BroadcastProgress:
        """``GET /broadcasts/{id}``: the caller's broadcast and its progress; 404 ``not_found`` otherwise."""
        with self.lock:
            broadcast = self.broadcasts.get(broadcast_id)
            if broadcast is None or broadcast.user_id != caller.user.id:
                raise broadcast_not_found(broadcast_id)
            return self._progress(broadcast, self.clock())

    def _progress(self, broadcast: Broadcast, now: float) -> BroadcastProgress:
        messages = [self.messages[i] for i in broadcast.message_ids]
        statuses = [m.status_at(now) for m in messages]
        failed = statuses.count("failed")
        sent = sum(1 for s in statuses if s in ("sent", "delivered", "read"))
        total = len(messages)
        pending = total - sent - failed
        completed_at = None
        if pending == 0:
            status = "failed" if failed == total else "completed"
            completed_at = max(m.final_at() for m in messages)
        elif now < broadcast.start_at:
            status = "queued"
        else:
            status = "processing"
        return BroadcastProgress(broadcast, status, total, sent, failed, pending, completed_at)

    # ---------------------------------------------------------------- uploads

    def store_upload(self, caller: Caller, filename: str, mime_type: str, media_type: str, data: bytes) -> Upload:
        """``POST /uploads``: keep a validated file under ``uploads/<month>/<uuid>.<suffix>``."""
        suffix = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
        if not suffix or not suffix.isascii() or not suffix.isalnum() or len(suffix) > 5:
            suffix = (mimetypes.guess_extension(mime_type) or ".bin").lstrip(".")
        with self.lock:
            month = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m")
            path = f"uploads/{month}/{uuid.uuid4()}.{suffix}"
            upload = Upload(
                path=path, filename=filename, mime_type=mime_type, type=media_type, data=data, user_id=caller.user.id
            )
            self.uploads[path] = upload
            return upload

    def upload(self, path: str) -> Upload | None:
        """The stored upload at ``uploads/...`` (``None`` if unknown)."""
        with self.lock:
            return self.uploads.get(path)

    # ---------------------------------------------------------------- inbound messages and webhooks

    def receive_inbound(self, request: InboundRequest) -> Message:
        """A customer writes in: record the message and fire ``message.received``."""
        with self.lock:
            instance = self.instances.get(request.instance_key)
            if instance is None:
                raise EmulatorAPIError(
                    404, "instance_not_found", f"Instance `{shown(request.instance_key, 100)}` tidak ditemukan."
                )
            remote_jid = request.remote_jid
            if remote_jid is None:
                if request.lid:
                    remote_jid = f"{self.rng.randint(10**14, 10**15 - 1)}@lid"
                else:
                    assert request.sender is not None
                    remote_jid = request.sender if "@" in request.sender else f"{request.sender}@s.whatsapp.net"
            sender = request.sender if request.sender is not None else remote_jid.split("@", 1)[0]
            now = self.clock()
            message = Message(
                id=self._take_message_id(),
                user_id=instance.user_id,
                instance_key=instance.key,
                direction="inbound",
                message_type=request.message_type,
                to=instance.phone_number or instance.key,
                phone_number=sender.split("@", 1)[0],
                remote_jid=remote_jid,
                body=request.body,
                created_at=now,
                transitions=(),
                received_at=now,
                provider_message_id=self._provider_message_id("3EB0", 16),
            )
            self.messages[message.id] = message
            self._enqueue_event(instance.user_id, "message.received", received_event(message))
            return message

    def register_webhook(self, url: str, secret: str, user_id: int | None = None) -> WebhookEndpoint:
        """Where a user's events go (the first user's when ``user_id`` is not given); 422 for an unknown user."""
        with self.lock:
            owner = user_id if user_id is not None else next(iter(self.users), 1)
            if owner not in self.users:
                raise validation_failed({"user_id": [f"The user_id {owner} is not a user of the seed."]})
            endpoint = WebhookEndpoint(user_id=owner, url=url, secret=secret)
            self.outbox.register(endpoint)
            return endpoint

    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        """The registered endpoints."""
        with self.lock:
            return list(self.outbox.endpoints.values())

    def deliveries(self) -> list[Delivery]:
        """The delivery log, oldest first."""
        with self.lock:
            return list(self.outbox.deliveries)

    def _enqueue_event(self, user_id: int, event: str, data: dict[str, Any]) -> None:
        user = self.users.get(user_id)
        if user is None or user_id not in self.outbox.endpoints:
            return
        skip = None if self.has_feature(user, WEBHOOK_FEATURE) else f"plan {plan_label(user.plan)} has no webhooks"
        self.outbox.enqueue(user_id, event, data, self.clock(), skip)
        self.changed.notify_all()

    def tick(self) -> None:
        """Fire webhook events for every status transition reached since the last tick."""
        with self.lock:
            now = self.clock()
            due: set[int] = set()
            while self._transitions_due and self._transitions_due[0][0] <= now:
                due.add(heapq.heappop(self._transitions_due)[1])
            for message_id in sorted(due):
                message = self.messages.get(message_id)
                if message is None or message_id not in self.active_messages:
                    self.active_messages.discard(message_id)
                    continue
                reached = message.reached(now)
                for status, at in reached[message.notified :] if message.user_id in self.outbox.endpoints else ():
                    event = "message.sent" if status == "sent" else "message.status"
                    self._enqueue_event(message.user_id, event, status_event(message, status, at))
                message.notified = len(reached)
                if message.notified >= len(message.transitions):
                    self.active_messages.discard(message_id)
                else:
                    heapq.heappush(self._transitions_due, (message.transitions[message.notified][1], message_id))

    def next_tick_at(self) -> float | None:
        """The next real time at which some message changes status."""
        with self.lock:
            return self._transitions_due[0][0] if self._transitions_due else None

    def due_deliveries(self) -> list[Delivery]:
        """Deliveries whose next attempt is due now."""
        with self.lock:
            return self.outbox.due(self.clock())

    def next_delivery_at(self) -> float | None:
        """When the next pending delivery attempt is due."""
        with self.lock:
            return self.outbox.next_attempt_at()

    def record_attempt(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        """Note one delivery attempt and schedule a retry (scaled backoff) or settle it."""
        with self.lock:
            settings = self.settings
            self.outbox.record(
                delivery,
                status_code,
                error,
                self.clock(),
                settings.webhook_max_attempts,
                settings.webhook_backoff * settings.time_scale,
            )
            self.changed.notify_all()

    # ---------------------------------------------------------------- faults and the request log

    def add_fault(self, spec: FaultSpec) -> Fault:
        """Install a fault."""
        with self.lock:
            return self.faults.add(spec)

    def list_faults(self) -> list[Fault]:
        """The installed faults."""
        with self.lock:
            return list(self.faults.faults)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def pick_fault(self, method: str, path: str) -> Fault | None:
        """The fault a request hits, if any (see ``faults.py``)."""
        with self.lock:
            return self.faults.pick(method, path)

    def garbage_body(self, spec: FaultSpec, body: bytes) -> tuple[bytes, bytes]:
        """``(content_type, content)`` of a ``garbage`` fault's answer in place of ``body``."""
        with self.lock:
            return self.faults.garbage(spec, body)

    def log_request(self, entry: LoggedRequest) -> None:
        """Append to the request log."""
        with self.lock:
            self.request_log.append(entry)

    def logged_requests(self) -> list[LoggedRequest]:
        """The request log, oldest first."""
        with self.lock:
            return list(self.request_log)
