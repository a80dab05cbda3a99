"""Uploaded files: ``POST /uploads`` stores them, ``/storage/uploads/...`` serves them back."""

from __future__ import annotations

import mimetypes
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.emulator.core import StateCore
from airflow_provider_waslah.emulator.entities import AuthContext, Upload
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, field_sentence, validation_failed


class Uploads(StateCore):
    """The upload store, and the MIME type of media sent by URL."""

    def upload(
        self, ctx: AuthContext, filename: str | None, content_type: str | None, data: bytes | None, origin: str
    ) -> dict[str, Any]:
        """``POST /uploads``: store the file and return where it is served."""
        if data is None:
            raise validation_failed(
                {"file": ["The file field is required."]}, "File tidak valid: The file field is required."
            )
        try:
            v.check_upload_size(len(data))
        except WaslahInvalidInputError as exc:
            sentence = field_sentence(exc.field, exc.rule)
            raise validation_failed({"file": [sentence]}, f"File tidak valid: {sentence}") from None
        mime = (content_type or "").split(";")[0].strip().lower()
        if not mime or mime == "application/octet-stream":
            mime = (mimetypes.guess_type(filename or "")[0] or "application/octet-stream").lower()
        media_type = v.ALLOWED_MIME_TYPES.get(mime)
        if media_type is None:
            raise EmulatorAPIError(
                422,
                "unsupported_media_type",
                f"MIME type `{mime}` tidak didukung. Cek dokumentasi untuk format yang diterima.",
                mime_type=mime,
            )
        name = filename or "file"
        suffix = name.rsplit(".", 1)[1].lower() if "." in name else ""
        if not suffix or not suffix.isalnum() or len(suffix) > 5:
            suffix = (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
        with self.lock:
            month = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m")
            path = f"uploads/{month}/{uuid.uuid4()}.{suffix}"
            self.uploads[path] = Upload(
                path=path, filename=name, mime_type=mime, type=media_type, data=data, user_id=ctx.user.id
            )
        return {
            "url": f"{origin}/storage/{path}",
            "path": path,
            "filename": name,
            "size": len(data),
            "mime_type": mime,
            "type": media_type,
        }

    def get_upload(self, path: str) -> Upload | None:
        """The stored upload at ``uploads/...`` (``None`` if unknown)."""
        with self.lock:
            return self.uploads.get(path)

    def media_mime(self, url: str, override: str | None, origin: str) -> str | None:
        """The MIME type of media at ``url``: ``override``, else the upload's, else guessed from the path."""
        if override:
            return override
        parts = urlsplit(url)
        if url.lower().startswith(origin.lower()) and parts.path.startswith("/storage/"):
            upload = self.uploads.get(parts.path[len("/storage/") :])
            if upload is not None:
                return upload.mime_type
        return mimetypes.guess_type(parts.path)[0]
