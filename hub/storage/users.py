"""UI users, their sessions and failed logins. Nothing here commits (the caller's unit of work)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.models import LoginAttempt, SsoTicket, User, UserSession
from hub.timeutil import utcnow


class UserExists(Exception):
    """A user with this login is already there."""


class BitrixUserTaken(Exception):
    """Another ClientHub user is already linked to this Bitrix24 user (the message: its login)."""


def create(
    session: Session,
    *,
    login: str,
    password_hash: str,
    role: str,
    name: str = "",
    language: str = "ru",
) -> User:
    if get_by_login(session, login) is not None:
        raise UserExists(login)
    user = User(login=login, name=name, password_hash=password_hash, role=role, language=language)
    session.add(user)
    session.flush()
    return user


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_by_login(session: Session, login: str) -> User | None:
    return session.execute(select(User).where(User.login == login)).scalar_one_or_none()


def list_all(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.login)).scalars())


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(User)).scalar_one())


@dataclass(frozen=True)
class SessionUser:
    """What a request needs to know about who is logged in."""

    user_id: int
    login: str
    name: str
    role: str
    language: str
    csrf_token: str
    token_hash: str


def open_session(
    session: Session,
    *,
    user: User,
    token_hash: str,
    csrf_token: str,
    expires_at: datetime,
    ip: str | None,
) -> None:
    assert user.id is not None
    session.add(
        UserSession(
            token_hash=token_hash,
            user_id=user.id,
            csrf_token=csrf_token,
            expires_at=expires_at,
            ip=ip,
        )
    )
    user.last_login_at = utcnow()
    session.add(user)


def find_session(session: Session, token_hash: str) -> SessionUser | None:
    """The live session of an enabled user, in one indexed query."""
    row = session.execute(
        select(
            User.id,
            User.login,
            User.name,
            User.role,
            User.language,
            UserSession.csrf_token,
            UserSession.expires_at,
        )
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash, User.enabled.is_(True))
    ).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return SessionUser(
        row.id, row.login, row.name, row.role, row.language, row.csrf_token, token_hash
    )


def close_session(session: Session, token_hash: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))


def close_all_sessions(session: Session, user_id: int) -> int:
    """Disabling a user or changing a password ends every one of their logins, and voids the
    sign-in tickets not yet used."""
    session.execute(delete(SsoTicket).where(SsoTicket.user_id == user_id))
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return result.rowcount


def prune_sessions(session: Session) -> None:
    session.execute(delete(UserSession).where(UserSession.expires_at < utcnow()))


def update_user(session: Session, user_id: int, **values: object) -> None:
    session.execute(update(User).where(User.id == user_id).values(**values))


# -- single sign-on from the Bitrix24 portal (hub/bitrix24/sso.py) ------------------------------
def get_by_bitrix_user(session: Session, bitrix_user_id: int) -> User | None:
    return session.execute(
        select(User).where(User.bitrix_user_id == bitrix_user_id)
    ).scalar_one_or_none()


def link_bitrix_user(session: Session, user_id: int, bitrix_user_id: int | None) -> None:
    """Link (or, with None, unlink) the Bitrix24 user; one ClientHub user per portal user.
    Tickets issued for the previous link are voided."""
    if bitrix_user_id is not None:
        holder = get_by_bitrix_user(session, bitrix_user_id)
        if holder is not None and holder.id != user_id:
            raise BitrixUserTaken(holder.login)
    try:
        with session.begin_nested():  # a concurrent link loses on the unique index
            update_user(session, user_id, bitrix_user_id=bitrix_user_id)
    except IntegrityError:
        raise BitrixUserTaken("?") from None
    session.execute(delete(SsoTicket).where(SsoTicket.user_id == user_id))


def issue_ticket(session: Session, *, user: User, token_hash: str, expires_at: datetime) -> None:
    """A one-time sign-in ticket; expired, unused ones are swept here (nothing else does)."""
    assert user.id is not None and user.bitrix_user_id is not None
    session.execute(delete(SsoTicket).where(SsoTicket.expires_at < utcnow()))
    session.add(
        SsoTicket(
            token_hash=token_hash,
            user_id=user.id,
            bitrix_user_id=user.bitrix_user_id,
            expires_at=expires_at,
        )
    )


def redeem_ticket(session: Session, token_hash: str) -> User | None:
    """Consume a ticket: the enabled user it was issued for, or None when it is unknown, used,
    expired, or its link has changed. The DELETE decides between concurrent uses: only the one
    that removed the row wins (PostgreSQL blocks the other until commit, SQLite serialises)."""
    row = session.execute(
        select(SsoTicket.user_id, SsoTicket.bitrix_user_id, SsoTicket.expires_at).where(
            SsoTicket.token_hash == token_hash
        )
    ).first()
    if row is None:
        return None
    gone = session.execute(delete(SsoTicket).where(SsoTicket.token_hash == token_hash)).rowcount
    if gone != 1 or row.expires_at <= utcnow():
        return None
    user = get(session, row.user_id)
    if user is None or not user.enabled or user.bitrix_user_id != row.bitrix_user_id:
        return None
    return user


def record_failure(session: Session, *, login: str, ip: str) -> None:
    session.add(LoginAttempt(login=login[:64], ip=ip[:64]))


def failures_since(session: Session, *, login: str, ip: str, since: datetime) -> tuple[int, int]:
    """Failed attempts since ``since``: (for this login, from this address)."""
    by_login = session.execute(
        select(func.count()).where(LoginAttempt.login == login, LoginAttempt.at >= since)
    ).scalar_one()
    by_ip = session.execute(
        select(func.count()).where(LoginAttempt.ip == ip, LoginAttempt.at >= since)
    ).scalar_one()
    return int(by_login), int(by_ip)


def clear_failures(session: Session, *, login: str) -> None:
    """A successful login forgets this login's failures; everyone's day-old rows go too."""
    session.execute(
        delete(LoginAttempt).where(
            or_(LoginAttempt.login == login, LoginAttempt.at < utcnow() - timedelta(days=1))
        )
    )
