"""Files uploaded with a multipart form. They stay inside the stored raw event (the only place a
webhook can durably put them before its 2xx without touching the database); an appeal links each
one as ``/files/e<raw event id>.<sha256>/<name>``, and the download route reads it back from the
raw event, checking the digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from hub import files


@dataclass(frozen=True)
class Upload:
    field: str
    name: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def uploads(body: bytes, content_type_header: str | None) -> list[Upload]:
    """The file parts of a multipart/form-data body, in order; [] for any other body."""
    header = content_type_header or ""
    if header.split(";")[0].strip().lower() != "multipart/form-data":
        return []
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {header}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return []
    out: list[Upload] = []
    for part in message.iter_parts():
        filename = part.get_filename()
        if not filename:
            continue
        out.append(
            Upload(
                field=str(part.get_param("name", header="content-disposition") or ""),
                name=files.safe_name(filename),
                media_type=part.get_content_type(),
                data=part.get_payload(decode=True) or b"",
            )
        )
    return out


def find(body: bytes, content_type_header: str | None, sha256: str) -> Upload | None:
    return next((u for u in uploads(body, content_type_header) if u.sha256 == sha256), None)


def attachments(raw_event_id: int, found: list[Upload]) -> list[dict[str, Any]]:
    return [
        {
            **files.attachment(
                f"e{raw_event_id}.{u.sha256}",
                name=u.name,
                size=len(u.data),
                media_type=u.media_type,
            ),
            "field": u.field,
        }
        for u in found
        if u.data  # an empty file input sends a part with a name and no bytes
    ]
