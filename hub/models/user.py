"""Staff who use the admin UI, their server-side sessions and login attempts.

Sessions live in the database rather than in a signed cookie so that logging out, disabling a
user or changing a password ends every session at once, and so that any web process behind a
proxy can serve any request (invariant 7: the UI needs a login; roles decide who may do what).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from hub.models.types import UTCDateTime
from hub.timeutil import utcnow


class Role(StrEnum):
    admin = "admin"  # everything, users included
    editor = "editor"  # the rule directory
    reviewer = "reviewer"  # appeals, traces, audit (read only)
    operator = "operator"  # queue, dead letters, channels


class User(SQLModel, table=True):
    __tablename__ = "ui_users"
    __table_args__ = (
        Index("uq_ui_users_login", "login", unique=True),
        # One ClientHub account per portal user: SSO must know whom to log in (NULLs repeat).
        Index("uq_ui_users_bitrix_user", "bitrix_user_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64)
    name: str = Field(default="", max_length=255)
    password_hash: str = Field(max_length=255)  # argon2id, with its parameters and salt
    role: str = Field(default=Role.reviewer, max_length=16)
    language: str = Field(default="ru", max_length=8)
    enabled: bool = True
    bitrix_user_id: int | None = None  # for single sign-on from the Bitrix24 portal
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserSession(SQLModel, table=True):
    """One login. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_user", "user_id"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="ui_users.id")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ip: str | None = Field(default=None, max_length=64)


class SsoTicket(SQLModel, table=True):
    """A one-time, short-lived sign-in ticket from the Bitrix24 portal (hub/bitrix24/sso.py).

    Kept apart from ``ui_sessions`` so that no reader of sessions (cookies, bearer tokens) can
    ever accept a ticket; only its SHA-256 is stored, as for sessions.
    """

    __tablename__ = "ui_sso_tickets"
    __table_args__ = (Index("ix_ui_sso_tickets_user", "user_id"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="ui_users.id")
    bitrix_user_id: int  # the link it was issued for: unlinking in between voids it
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """Failed logins, counted per login and per address to slow down password guessing."""

    __tablename__ = "ui_login_attempts"
    __table_args__ = (
        Index("ix_ui_login_attempts_login", "login", "at"),
        Index("ix_ui_login_attempts_ip", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    login: str = Field(max_length=64)
    ip: str = Field(max_length=64)
