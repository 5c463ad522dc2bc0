"""Fake PBXs: they post the exact documented forms to ClientHub and serve call recordings.

- Mango: ``application/x-www-form-urlencoded`` ``vpbx_api_key``, ``sign``, ``json`` (a JSON
  string) to ``{base}/events/{event}``, ``sign = sha256(key + json + salt)``; recordings behind
  the signed link ``/vpbx/queries/recording/link/{id}/download/{key}/{ts}/{sign}``, checked here
  the way Mango checks it (sign over key + ts + id + salt, ts not passed).
- UIS: the notification templates' JSON bodies to ``{base}/{event}?secret=…``; recordings at the
  ``file_link`` it gives.
- CTI (Zammad-compatible): JSON events; recordings as a URL or a multipart upload.

Recordings are generated on the fly in 256 KB chunks (a 50 MB one never exists in memory), can
fail a given number of times first, and count their downloads.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response, StreamingResponse

CHUNK = 256 * 1024


def wav_header(data_size: int) -> bytes:
    """A PCM WAV header: 8 kHz, 16-bit, mono (what Asterisk's MixMonitor writes)."""
    return b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16
    ) + b"data" + struct.pack("<I", data_size)  # fmt: skip


def mp3_frames() -> bytes:
    return b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + b"\xff\xfb\x90\x64" + b"\x00" * 413


@dataclass
class Recording:
    kind: str  # wav, mp3, ogg
    size: int
    fail_times: int = 0  # answer 503 this many times before serving
    hits: int = 0
    sha256: str = ""

    def chunks(self) -> Iterator[bytes]:
        if self.kind == "wav":
            head = wav_header(self.size - 44)
        elif self.kind == "mp3":
            head = mp3_frames()
        else:
            head = b"OggS\x00\x02" + b"\x00" * 20
        yield head
        left = self.size - len(head)
        pattern = bytes(range(256)) * (CHUNK // 256)
        while left > 0:
            piece = pattern[: min(CHUNK, left)]
            left -= len(piece)
            yield piece

    def digest(self) -> str:
        if not self.sha256:
            h = hashlib.sha256()
            for chunk in self.chunks():
                h.update(chunk)
            self.sha256 = h.hexdigest()
        return self.sha256


@dataclass
class FakePbx:
    """One loopback server for all three PBXs' recording downloads."""

    mango_key: str = "mango-api-key"
    mango_salt: str = "mango-api-salt"
    recordings: dict[str, Recording] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, name: str, kind: str = "mp3", size: int = 48_000, fail_times: int = 0
    ) -> Recording:
        rec = Recording(kind, size, fail_times)
        self.recordings[name] = rec
        return rec

    def _serve(self, name: str) -> Response:
        rec = self.recordings.get(name)
        if rec is None:
            raise HTTPException(404, "no such recording")
        with self.lock:
            rec.hits += 1
            if rec.fail_times > 0:
                rec.fail_times -= 1
                return Response("busy", status_code=503)
        media = {"wav": "audio/wav", "mp3": "audio/mpeg"}.get(rec.kind, "audio/ogg")
        return StreamingResponse(
            rec.chunks(), media_type=media, headers={"Content-Length": str(rec.size)}
        )

    @property
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/vpbx/queries/recording/link/{rec}/{action}/{key}/{ts}/{sign}")
        def mango_link(rec: str, action: str, key: str, ts: str, sign: str) -> Response:
            expected = hashlib.sha256((key + ts + rec + self.mango_salt).encode()).hexdigest()
            if key != self.mango_key or sign != expected:
                raise HTTPException(403, "bad sign")
            if int(ts) < time.time():
                raise HTTPException(403, "link expired")
            return self._serve(rec)

        @app.get("/media/{name}")
        def media(name: str) -> Response:
            return self._serve(name)

        @app.get("/redirect/{name}")
        def redirect(name: str) -> Response:
            return Response(status_code=302, headers={"Location": f"/media/{name}"})

        return app


# -- posting, as each PBX does -----------------------------------------------------------------
def mango_form(
    payload: dict[str, Any], key: str, salt: str, *, forge: bool = False
) -> dict[str, str]:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    sign = hashlib.sha256((key + text + salt).encode()).hexdigest()
    if forge:
        sign = hashlib.sha256((key + text + "guessed-salt").encode()).hexdigest()
    return {"vpbx_api_key": key, "sign": sign, "json": text}


def mango_post(
    base: str, event: str, payload: dict[str, Any], *, key: str, salt: str, forge: bool = False
) -> httpx.Response:
    return httpx.post(f"{base}/events/{event}", data=mango_form(payload, key, salt, forge=forge))


def uis_post(base: str, event: str, values: dict[str, Any], *, secret: str) -> httpx.Response:
    return httpx.post(f"{base}/{event}", params={"secret": secret}, json=values)


def cti_post(url: str, body: dict[str, Any], *, token: str) -> httpx.Response:
    return httpx.post(url, params={"token": token}, json=body)


def cti_upload(
    url: str, call_id: str, rec: Recording, *, token: str, filename: str = "call.wav"
) -> httpx.Response:
    """multipart ``callId`` + ``file``, streamed, as the dialplan script's curl does."""

    class _Stream:
        def __init__(self) -> None:
            self._it, self._buf = rec.chunks(), b""

        def read(self, n: int = -1) -> bytes:
            while n < 0 or len(self._buf) < n:
                try:
                    self._buf += next(self._it)
                except StopIteration:
                    break
            out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
            return out

    files = {"file": (filename, _Stream(), "application/octet-stream")}
    return httpx.post(
        url, params={"token": token}, data={"callId": call_id}, files=files, timeout=60
    )
