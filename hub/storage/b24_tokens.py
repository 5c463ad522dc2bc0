"""The local application's OAuth tokens, Fernet-encrypted at rest (``b24_portal_tokens``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from hub.crypto import decrypt, encrypt, mask
from hub.models import PortalToken
from hub.settings import Settings
from hub.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class Tokens:
    """Decrypted tokens; ``repr`` masks them so a stray log line cannot leak one."""

    domain: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    client_endpoint: str
    member_id: str | None = None
    scope: str | None = None
    application_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"Tokens(domain={self.domain!r}, access_token={mask(self.access_token)!r}, "
            f"expires_at={self.expires_at.isoformat()})"
        )


def get_row(session: Session, domain: str | None = None) -> PortalToken | None:
    stmt = select(PortalToken).order_by(PortalToken.id)
    if domain:
        stmt = stmt.where(PortalToken.domain == domain)
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def load(session: Session, domain: str | None, settings: Settings | None = None) -> Tokens | None:
    row = get_row(session, domain)
    if row is None:
        return None
    return Tokens(
        domain=row.domain,
        access_token=decrypt(row.access_token_enc, settings),
        refresh_token=decrypt(row.refresh_token_enc, settings),
        expires_at=as_utc(row.expires_at),
        client_endpoint=row.client_endpoint or f"https://{row.domain}/rest/",
        member_id=row.member_id,
        scope=row.scope,
        application_token=(
            decrypt(row.application_token_enc, settings) if row.application_token_enc else None
        ),
    )


def save(session: Session, tokens: Tokens, settings: Settings | None = None) -> None:
    row = get_row(session, tokens.domain)
    if row is None:
        row = PortalToken(
            domain=tokens.domain, access_token_enc="", refresh_token_enc="", expires_at=utcnow()
        )
    row.member_id = tokens.member_id or row.member_id
    row.client_endpoint = tokens.client_endpoint
    row.access_token_enc = encrypt(tokens.access_token, settings)
    row.refresh_token_enc = encrypt(tokens.refresh_token, settings)
    if tokens.application_token:
        row.application_token_enc = encrypt(tokens.application_token, settings)
    row.expires_at = tokens.expires_at
    row.scope = tokens.scope or row.scope
    row.updated_at = utcnow()
    session.add(row)
