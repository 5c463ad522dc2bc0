"""Call recordings: download from the PBX (job ``recording.fetch``), check, keep in the file store.

The download streams to disk while it is hashed (a 50 MB recording never sits in memory), with a
size limit, and only from the PBX's own hosts: the source's ``recording_hosts`` (``*.domain``
allowed), Mango's API host, and for UIS its two cabinets' domains. Loopback, private and link-local
addresses are refused unless ``recording_allow_private_hosts`` is on (SSRF). Network failures and
5xx retry with the job's backoff (a job that never succeeds goes dead, visible and retryable);
a file that is not .mp3 or .wav is converted by ffmpeg when it
is installed, else refused with the reason on the call. A stored recording queues the Bitrix24
attach step, so a recording that arrives after the call was delivered is attached to that call.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx
from sqlmodel import Session

from connectors import mango
from hub import files
from hub.jobs import JobContext, JobHandler
from hub.models import Appeal, AppealState, DeliveryState, RecordingState, TelephonyCall
from hub.settings import Settings, get_settings
from hub.storage import sources as sources_store
from hub.storage import telephony_calls as calls_store
from hub.telephony import FETCH_JOB, enqueue_delivery

DEFAULT_HOSTS = {"uis": ["*.uiscom.ru", "*.comagic.ru"]}
MAX_REDIRECTS = 3
FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav"}


class FetchError(Exception):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Fetched:
    sha256: str
    size: int
    ext: str


def sniff(head: bytes) -> str | None:
    """``mp3`` or ``wav`` by the first bytes (the PBX's file name and Content-Type are hints at
    best: Mango links carry neither)."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def allowed_hosts(channel: str, config: Mapping[str, Any]) -> list[str]:
    hosts = [str(h).lower() for h in config.get("recording_hosts") or []]
    if channel == "mango":
        hosts.append(httpx.URL(str(config.get("api_url") or mango.DEFAULT_API_URL)).host)
    if not config.get("recording_hosts"):
        hosts.extend(DEFAULT_HOSTS.get(channel, []))
    return hosts


def check_url(url: str, hosts: list[str], *, allow_private: bool) -> None:
    """Refuse what the source did not name, and internal addresses (SSRF). Checked again after
    every redirect."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"recording URL scheme {parsed.scheme!r} is not http(s)", retry=False)
    host = parsed.host.lower()
    if not any(host == h or fnmatch(host, h) for h in hosts):
        raise FetchError(
            f"host {host!r} is not one of this source's recording_hosts {hosts}", retry=False
        )
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}", retry=True) from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global:
            raise FetchError(f"{host} resolves to the non-public address {addr}", retry=False)


def source_url(
    ref: Mapping[str, Any], *, config: Mapping[str, Any], secrets: Mapping[str, str]
) -> str:
    if ref.get("kind") == "url" and ref.get("url"):
        return str(ref["url"])
    if ref.get("kind") == "mango" and ref.get("recording_id"):
        key, salt = secrets.get("key"), secrets.get("salt")
        if not key or not salt:
            raise FetchError("the Mango source has no key/salt to sign the download", retry=False)
        return mango.recording_link(
            api_url=str(config.get("api_url") or mango.DEFAULT_API_URL),
            key=key,
            salt=salt,
            recording_id=str(ref["recording_id"]),
        )
    raise FetchError(f"no way to download a recording reference {sorted(ref)}", retry=False)


def download(url: str, *, hosts: list[str], settings: Settings, store: files.FileStore) -> Fetched:
    """Stream ``url`` into the store; ``FetchError`` says whether a retry may help."""
    timeout = httpx.Timeout(settings.recording_download_timeout_seconds, connect=10.0)
    limit = settings.recording_max_bytes
    with httpx.Client(timeout=timeout, follow_redirects=False) as http:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, hosts, allow_private=settings.recording_allow_private_hosts)
            try:
                with http.stream("GET", url) as resp:
                    if resp.is_redirect:
                        url = urljoin(url, resp.headers.get("location", ""))
                        continue
                    _check_status(resp)
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        raise FetchError(
                            f"recording is {declared} bytes, over {limit}", retry=False
                        )
                    got = _store(resp, store, limit)
            except files.TooLarge:
                raise FetchError(f"recording is over {limit} bytes", retry=False) from None
            except OSError as exc:
                # Disk full, quota, read-only mount: ours to fix, not the PBX's. The call is
                # delivered without it meanwhile; the job retries until space is back.
                raise FetchError(
                    f"cannot store the recording in {store.directory}: "
                    f"{exc.strerror or type(exc).__name__}",
                    retry=True,
                ) from None
            except httpx.HTTPError as exc:
                raise FetchError(f"download failed: {type(exc).__name__}", retry=True) from None
            if got.size == 0:
                raise FetchError("the PBX sent an empty recording", retry=True)
            return got
    raise FetchError("too many redirects", retry=False)


def _store(resp: httpx.Response, store: files.FileStore, limit: int) -> Fetched:
    head = bytearray()

    def chunks() -> Iterator[bytes]:
        for chunk in resp.iter_bytes(1024 * 256):
            if len(head) < 16:
                head.extend(chunk[:16])
            yield chunk

    sha, size = store.put_stream(chunks(), max_bytes=limit)
    return Fetched(sha, size, sniff(bytes(head)) or "")


def _check_status(resp: httpx.Response) -> None:
    code = resp.status_code
    if code == 200:
        return
    # 404 too: PBXs publish a recording a little after announcing it.
    retry = code >= 500 or code in (404, 408, 425, 429)
    raise FetchError(f"PBX answered HTTP {code}", retry=retry)


def can_convert(settings: Settings) -> bool:
    return bool(settings.recording_ffmpeg and shutil.which(settings.recording_ffmpeg))


def convert(store: files.FileStore, sha: str, settings: Settings) -> Fetched:
    """Another format (.ogg, .opus, .gsm…) becomes .mp3 with ffmpeg, if it is installed."""
    binary = shutil.which(settings.recording_ffmpeg) if settings.recording_ffmpeg else None
    if not binary:
        raise FetchError("not .mp3 or .wav, and ffmpeg is not installed to convert it", retry=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "call.mp3"
        done = subprocess.run(  # noqa: S603 - fixed argv, our own file paths
            [binary, "-nostdin", "-loglevel", "error", "-i", str(store.path(sha)), str(out)],
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0 or not out.exists():
            reason = done.stderr.decode("utf-8", "replace")[-200:]
            raise FetchError(f"ffmpeg could not convert the recording: {reason}", retry=False)
        with out.open("rb") as fh:
            new_sha, size = store.put_stream(iter(lambda: fh.read(1 << 20), b""))
    return Fetched(new_sha, size, "mp3")


def mark_stored(
    session: Session,
    appeal: Appeal,
    call: TelephonyCall,
    *,
    sha: str,
    name: str,
    size: int,
    media_type: str = "",
) -> None:
    """The recording is in the store: link it from the appeal and queue its attach step."""
    ext = name.rsplit(".", 1)[-1].lower()
    media = media_type or FORMATS.get(ext, "application/octet-stream")
    calls_store.save(
        session,
        call,
        recording_state=RecordingState.stored,
        recording_sha=sha,
        recording_name=name,
        recording_size=size,
        recording_error=None,
    )
    entry = {**files.attachment(sha, name=name, size=size, media_type=media), "role": "recording"}
    appeal.attachments = [
        *(a for a in appeal.attachments or [] if a.get("role") != "recording"),
        entry,
    ]
    session.add(appeal)
    if appeal.state != AppealState.filtered and appeal.delivery_state != DeliveryState.none:
        enqueue_delivery(session, appeal, f":rec:{sha[:16]}")


def run_fetch(ctx: JobContext) -> None:
    settings = get_settings()
    store = files.store_for(settings)
    for job in ctx.jobs:
        appeal_id, ref = int(job.payload["appeal_id"]), dict(job.payload["ref"])
        with ctx.read() as s:
            appeal = s.get(Appeal, appeal_id)
            source = _source(s, appeal)
        if appeal is None or source is None:
            ctx.fail(job, "appeal or its source is gone", retry=False)
            continue
        try:
            url = source_url(ref, config=source.config, secrets=source.secrets)
            got = download(
                url, hosts=allowed_hosts(appeal.channel, source.config), settings=settings,
                store=store,
            )  # fmt: skip
            if got.ext not in FORMATS:
                got = convert(store, got.sha256, settings)
        except FetchError as exc:
            _record_failure(ctx, job, appeal_id, str(exc), retry=exc.retry)
            continue
        name = f"call-{appeal_id}.{got.ext}"
        session = ctx.session
        files.record(
            session.connection(),
            sha256=got.sha256,
            size=got.size,
            name=name,
            media_type=FORMATS[got.ext],
            channel=appeal.channel,
            source=appeal.source,
        )
        live = session.get(Appeal, appeal_id)
        assert live is not None
        call = calls_store.lock_for_appeal(session, live)
        mark_stored(session, live, call, sha=got.sha256, name=name, size=got.size)
        ctx.log.info("recording stored", extra={"appeal_id": appeal_id, "size": got.size})


def _source(session: Session, appeal: Appeal | None) -> Any:
    if appeal is None:
        return None
    for row in sources_store.list_all(session):
        if row.channel == appeal.channel and row.source == appeal.source:
            return sources_store.to_config(row)
    return None


def _record_failure(ctx: JobContext, job: Any, appeal_id: int, error: str, *, retry: bool) -> None:
    """A refusal is final and said on the call; a transient failure backs off (and the call says
    ``failed`` only if it never works)."""
    session = ctx.session
    live = session.get(Appeal, appeal_id)
    if live is not None:
        call = calls_store.lock_for_appeal(session, live)
        state = RecordingState.pending if retry else RecordingState.refused
        calls_store.save(session, call, recording_state=state, recording_error=error[:2000])
    ctx.fail(job, error, retry=retry)


def delivery_mode(settings: Settings) -> str:
    """``url`` only when Bitrix24 can reach us: it refuses links to non-public addresses."""
    if settings.recording_delivery in ("url", "upload"):
        return settings.recording_delivery
    host = httpx.URL(settings.effective_public_url()).host
    try:
        return "url" if ipaddress.ip_address(host).is_global else "upload"
    except ValueError:
        return "upload" if host in ("localhost", "") or host.endswith(".local") else "url"


def signed_recording_url(settings: Settings, sha: str, name: str) -> str:
    expires = int(time.time()) + settings.recording_url_ttl_seconds
    sig = files.sign(sha, expires, settings)
    base = settings.effective_public_url()
    return f"{base}/telephony/recordings/{sha}/{quote(name)}?exp={expires}&sig={sig}"


HANDLERS = [JobHandler(FETCH_JOB, run_fetch)]
