"""All configuration: environment variables ``CLIENTHUB_*`` and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SAMPLE_RULES_DIR = Path(__file__).resolve().parent.parent / "routing_rules" / "sample"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLIENTHUB_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage. SQLite by default (WAL, synchronous=FULL); postgresql+psycopg://… to scale out.
    database_url: str = "sqlite:///./clienthub.db"
    # Key for secrets at rest (Fernet, urlsafe base64 of 32 bytes). Empty: a key file is created
    # next to the SQLite database, or taken from ``key_file``.
    secret_key: SecretStr = SecretStr("")
    key_file: Path = Path("./clienthub.key")

    # HTTP.
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = (
        ""  # how staff reach this instance (links from Bitrix24 deals); default host:port
    )
    max_body_bytes: int = 1_048_576  # larger webhook bodies get 413
    ingest_batch_max: int = 256  # group commit: at most this many events in one transaction

    # Worker and queue.
    worker_threads: int = 2
    job_lease_seconds: float = 30.0  # renewed by a heartbeat; a dead worker's job returns after it
    job_poll_seconds: float = 0.2
    # Every Nth claim round offers background jobs (escalations, status reports) first, so that
    # a long delivery backlog still lets them through; 0 = background only when nothing else.
    background_share: int = 5
    retry_base_seconds: float = 2.0
    retry_max_delay_seconds: float = 1800.0
    retry_horizon_hours: float = 24.0  # then the job is dead (visible, retryable)
    # Fault injection for crash tests only: "KIND:after_handler" makes the worker SIGKILL itself
    # after the job's effect and before its commit. Some kinds have points of their own:
    # "reply.send:after_send", "deliver.appeal:after_batch", "telephony.call:<step>".
    fault_kill_at: str = ""

    # Scheduler.
    scheduler_enabled: bool = True
    retention_days: int = 365  # raw events and done jobs older than this are pruned

    # Logging.
    log_level: str = "INFO"
    log_json: bool = True

    # Bitrix24. No webhook URL and no application: the built-in sandbox portal is used.
    b24_webhook_url: SecretStr = SecretStr("")  # https://portal/rest/1/code/
    b24_client_id: str = ""
    b24_client_secret: SecretStr = SecretStr("")
    b24_oauth_url: str = "https://oauth.bitrix.info/oauth/token/"
    b24_rate_burst: int = 50
    b24_rate_per_second: float = 2.0
    b24_timeout_seconds: float = 30.0
    b24_batch_appeals: int = 12  # appeals delivered together in one batch request
    sandbox_enabled: bool = (
        True  # mount the sandbox portal in `clienthub run` when no portal is set
    )
    sandbox_db: Path = Path("./clienthub-sandbox.db")

    # The first admin UI user (hub/bootstrap.py ensure_first_admin).
    first_admin: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: on a start with no UI users, `clienthub run`/`web` create `admin` with "
        "a random password printed once in the start-up banner (stderr, so also in the process's "
        "log); off (production): nobody is created, make users with `clienthub users add`.",
    )
    first_admin_password: SecretStr = Field(
        default=SecretStr(""),
        description="The first admin's password instead of a random one (compose, CI); at least "
        "10 characters. Used only when `admin` is created; change it later with "
        "`clienthub users passwd admin`.",
    )

    initial_sources: list[str] = Field(default_factory=lambda: ["form/site"])
    # Published on first start when the database holds no rule version yet ("" to skip).
    initial_rules_dir: str = str(
        Path(__file__).resolve().parent.parent / "routing_rules" / "sample"
    )

    # Bitrix24 delivery (hub/bitrix24). A worker takes up to b24_deliver_claim appeals at once:
    # one lookup request serves all of them, creates go in batches of b24_batch_appeals.
    b24_deliver_claim: int = 96
    b24_portal_domain: str = ""  # when set, install callbacks from any other portal are refused
    # The sandbox portal: empty URL means the one `clienthub run` mounts at /sandbox.
    sandbox_url: str = ""
    sandbox_webhook_code: str = "sandbox"
    sandbox_rate_burst: int = 50
    sandbox_rate_per_second: float = 2.0

    # Files kept for appeals (form uploads, e-mail attachments): content-addressed blobs here,
    # one ``stored_files`` row each (hub/files.py).
    files_dir: Path = Path("./clienthub-files")
    # Proxies whose X-Forwarded-For is believed (CIDRs, e.g. ["127.0.0.1/32"]); from anyone else
    # the TCP peer is the client address (per-IP limits of site forms).
    trusted_proxies: list[str] = Field(default_factory=list)
    # SSRF guard (hub/netguard.py) for URLs fetched on a payload's word (recordings, attachments,
    # Telegram files): public addresses only, unless this is on (tests with fakes on loopback) or
    # the address is in fetch_allow_networks (CIDRs, e.g. a PBX in the office LAN).
    allow_private_fetch: bool = False
    fetch_allow_networks: list[str] = Field(default_factory=list)
    # Reviews rated at or below this get ``fields.low_rating = true``; rules route them.
    review_low_rating_max: int = 3
    # 2GIS and Yandex publish no reviews API. These switches enable the UNOFFICIAL cabinet
    # endpoints that integrators reverse-engineered: they may break without notice and may breach
    # the platforms' terms. Off: reviews still arrive through notification e-mails.
    twogis_unofficial_cabinet_api: bool = False
    yandex_unofficial_cabinet_api: bool = False

    # Replies through Bitrix24 (hub/replies.py, hub/bitrix24/openlines.py). The connector id is
    # what imconnector.register gets (lower case, a-z0-9_ only); messages of these channels are
    # also sent into the open line so operators answer them in the chat.
    b24_connector_id: str = "clienthub"
    b24_connector_name: str = "ClientHub"
    b24_openline_channels: list[str] = Field(default_factory=lambda: ["vk", "telegram", "ok"])
    # A deal user field (e.g. UF_CRM_CLIENTHUB_CHAT, type string) that gets the chat link; empty:
    # the link goes into the deal's source description only.
    b24_deal_chat_field: str = ""
    reply_attachment_max_bytes: int = 20_000_000
    # A reply found mid-send more recently than this may still be in flight in a worker whose
    # lease ran out (stalled, not dead): wait before calling it uncertain. Longer than any
    # platform client's timeout.
    reply_send_grace_seconds: float = 60.0
    # The sandbox portal's built-in local application (client id and secret it registers).
    sandbox_app_client_id: str = "local.clienthub.sandbox"
    sandbox_app_client_secret: SecretStr = SecretStr("sandbox-app-secret")

    # Telephony (hub/telephony.py, hub/telephony_recordings.py, hub/bitrix24/telephony.py).
    # A call is routed when the PBX reports its end, or after this long without an end event.
    call_settle_seconds: float = 1800.0
    # Call recordings live in the file store (files_dir); larger ones are refused.
    recording_max_bytes: int = 100 * 1024 * 1024
    recording_download_timeout_seconds: float = 120.0
    # Loopback and private addresses are never fetched (SSRF) unless this is on (tests, a PBX in
    # the office LAN); the host must still be one of the source's PBX hosts.
    recording_allow_private_hosts: bool = False
    # ffmpeg converts recordings that are neither .mp3 nor .wav; empty: such files are refused.
    recording_ffmpeg: str = "ffmpeg"
    # How Bitrix24 gets the recording: "url" (a signed link it downloads; needs a public
    # public_url), "upload" (sent in the request), "auto" (url when public_url is public).
    recording_delivery: str = "auto"
    recording_url_ttl_seconds: int = 3600
    # Smaller recordings go inline (FILE_CONTENT, base64); larger ones through uploadUrl.
    recording_inline_max_bytes: int = 5 * 1024 * 1024
    # Missed calls: the "call back" task's deadline, in minutes after the call.
    callback_task_minutes: int = 60

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
