"""Secrets at rest (channel secrets, Bitrix24 tokens) are Fernet-encrypted with one instance key."""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from hub.settings import Settings, get_settings


class SecretKeyError(RuntimeError):
    pass


def _load_key(settings: Settings) -> bytes:
    configured = settings.secret_key.get_secret_value()
    if configured:
        return configured.encode()
    path = settings.key_file
    if path.exists():
        return path.read_bytes().strip()
    # First start with nothing configured: create the key beside the database, readable by us only.
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


@lru_cache(maxsize=4)
def _fernet(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except ValueError as exc:
        raise SecretKeyError(
            "CLIENTHUB_SECRET_KEY must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
        ) from exc


def fernet(settings: Settings | None = None) -> Fernet:
    return _fernet(_load_key(settings or get_settings()))


def encrypt(plain: str, settings: Settings | None = None) -> str:
    return fernet(settings).encrypt(plain.encode()).decode()


def decrypt(token: str, settings: Settings | None = None) -> str:
    try:
        return fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretKeyError("a stored secret cannot be decrypted with the current key") from exc


def derive_key(purpose: str, settings: Settings | None = None) -> bytes:
    """A key for one purpose (signing links), derived from the instance key so that no second
    secret needs configuring, and distinct per purpose."""
    return hmac.new(
        _load_key(settings or get_settings()), purpose.encode(), hashlib.sha256
    ).digest()


def mask(secret: str, keep: int = 4) -> str:
    """For display: never show a token back in full."""
    if len(secret) <= keep * 2:
        return "***"
    return f"{secret[:keep]}…{secret[-keep:]}"
