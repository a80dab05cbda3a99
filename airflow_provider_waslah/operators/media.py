"""Media messages: ``WaslahSendMediaOperator`` and the unified ``WaslahSendMessageOperator``."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.operators.messages import _WaslahMessageOperator

if TYPE_CHECKING:
    from airflow_provider_waslah.client.calls import Call
    from airflow_provider_waslah.client.models import MessageReceipt


class _MediaMessageOperator(_WaslahMessageOperator):
    """The media fields shared by the media and unified operators, and how ``type`` is inferred."""

    def __init__(
        self,
        *,
        url: str | None = None,
        file_path: str | None = None,
        type: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.file_path = file_path
        self.type = type
        self.caption = caption
        self.filename = filename
        self.mimetype = mimetype

    def _media_type(self) -> str | None:
        """``type`` as given, else from the file's (or the URL's) MIME type."""
        if self.type:
            return self.type
        if self.file_path:
            guessed = self.mimetype or mimetypes.guess_type(str(self.file_path))[0]
            if not guessed:
                raise WaslahInvalidInputError(
                    "file_path",
                    f"cannot tell the MIME type of {rules.shown(str(self.file_path), 120)}; pass type= or mimetype=",
                )
            return rules.media_type_for_mime(guessed, "file_path")
        if self.url:
            return rules.media_type_of_mime(self.mimetype or mimetypes.guess_type(urlsplit(str(self.url)).path)[0])
        return None

    def _check_source(self) -> None:
        if self.url and self.file_path:
            raise WaslahInvalidInputError("url", "give either url or file_path, not both")

    def _upload_filename(self) -> str | None:
        return self.filename or (PurePosixPath(str(self.file_path)).name if self.file_path else None)

    def _document_filename(self, media_type: str) -> str | None:
        if self.filename or media_type != "document":
            return self.filename
        if self.file_path:
            return PurePosixPath(str(self.file_path)).name
        return None


class WaslahSendMediaOperator(_MediaMessageOperator):
    """Send an image, document, video or audio through Waslah (``POST /messages/media``).

    The media comes from a public ``url``, or from a local ``file_path`` that the operator first
    uploads with ``POST /uploads`` (at most 16 MB, a MIME type on Waslah's whitelist; checked
    before any request). ``type`` is inferred from the file's MIME type (or the URL's extension)
    when not given; documents sent from a file keep the file's name.

    Returns the same XCom as :class:`WaslahSendTextOperator` (``media_url`` is set).

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient (see :class:`WaslahSendTextOperator`) (templated).
    :param url: a public http(s) URL of the file (templated).
    :param file_path: a local file to upload and send instead of ``url`` (templated).
    :param type: ``image``, ``document``, ``video`` or ``audio``; inferred when omitted (templated).
    :param caption: text under the media, at most 1024 characters (templated).
    :param filename: the file name shown for documents (templated).
    :param mimetype: overrides the MIME type (templated).
    :param scheduled_at: send later (see :class:`WaslahSendTextOperator`) (templated).
    :param recipient_key: the key holding the number when ``to`` is a dict.
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None``, ``"sent"``, ``"delivered"`` or ``"read"`` (see
        :class:`WaslahSendTextOperator`).
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status checks while waiting (default 5).
    :param wait_timeout: the longest wait (default one hour).
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "to",
        "url",
        "file_path",
        "type",
        "caption",
        "filename",
        "mimetype",
        "scheduled_at",
    )

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        self._check_source()
        url = uploaded_url or self.url
        if not url:
            raise WaslahInvalidInputError("url", "is required: give a public url or a local file_path")
        media_type = self._media_type()
        if media_type is None:
            raise WaslahInvalidInputError(
                "type", f"cannot be inferred from {rules.shown(url, 80)}; pass one of {', '.join(rules.MEDIA_TYPES)}"
            )
        return calls.send_media(
            instance_key=self.instance_key,
            to=to,
            type=media_type,
            url=url,
            caption=self.caption,
            filename=self._document_filename(media_type),
            mimetype=self.mimetype,
            scheduled_at=self.scheduled_at,
        )


class WaslahSendMessageOperator(_MediaMessageOperator):
    """Send a text or media message through Waslah's unified endpoint (``POST /messages``).

    Waslah routes by the body: ``text`` alone is a text message; a ``url`` (or a ``file_path``,
    uploaded first) makes it a media message, with ``text`` as its caption when ``caption`` is
    not given. ``type`` is inferred as in :class:`WaslahSendMediaOperator`, else Waslah's default
    ``image`` applies.

    Returns the same XCom as :class:`WaslahSendTextOperator`.

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient (see :class:`WaslahSendTextOperator`) (templated).
    :param text: the text, or the caption of a media message (templated).
    :param url: a public http(s) URL of a media file (templated).
    :param file_path: a local file to upload and send (templated).
    :param type: ``image``, ``document``, ``video`` or ``audio`` (templated).
    :param caption: text under the media, at most 1024 characters (templated).
    :param filename: the file name shown for documents (templated).
    :param mimetype: overrides the MIME type (templated).
    :param scheduled_at: send later (see :class:`WaslahSendTextOperator`) (templated).
    :param recipient_key: the key holding the number when ``to`` is a dict.
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None``, ``"sent"``, ``"delivered"`` or ``"read"``.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status checks while waiting (default 5).
    :param wait_timeout: the longest wait (default one hour).
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "to",
        "text",
        "url",
        "file_path",
        "type",
        "caption",
        "filename",
        "mimetype",
        "scheduled_at",
    )

    def __init__(self, *, text: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        self._check_source()
        url = uploaded_url or self.url
        media_type = self._media_type() if url else self.type
        return calls.send_message(
            instance_key=self.instance_key,
            to=to,
            text=self.text,
            type=media_type,
            url=url,
            caption=self.caption,
            filename=self._document_filename(media_type) if media_type else self.filename,
            mimetype=self.mimetype,
            scheduled_at=self.scheduled_at,
        )
