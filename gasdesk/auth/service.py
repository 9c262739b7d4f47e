"""Users and authentication: creating users, logging in with lock-out, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import ApiToken, User
from gasdesk.auth.roles import Role
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.db import commit
from gasdesk.errors import AccountLocked, Conflict, InvalidInput, NotAuthenticated, NotFound
from gasdesk.events import emit
from gasdesk.security.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,62}$")


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"未知角色 {role!r}；可选: {', '.join(r.value for r in Role)}", code="invalid_role") from None


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"密码至少 {MIN_PASSWORD_LENGTH} 位", code="weak_password")
    return password


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidInput("用户名只能包含小写字母、数字、点、横线和下划线（2–63 位）", code="invalid_username")
    return username


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username.strip().lower()))


async def do_create_user(
    session: AsyncSession,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
) -> User:
    """Create a staff user (validated), audited."""
    username = check_username(username)
    role_value = check_role(role)
    check_new_password(password)
    if await get_user_by_username(session, username):
        raise Conflict(f"用户名 {username} 已存在", code="username_taken")
    user = User(
        username=username,
        display_name=(display_name or username).strip()[:64],
        role=role_value.value,
        password_hash=hash_password(password),
        is_active=True,
        failed_logins=0,
        session_epoch=0,
    )
    session.add(user)
    await session.flush()
    record_audit(session, actor, "user.create", "user", user.id, after=user.snapshot())
    emit(session, "user.created", {"user_id": user.id, "role": user.role})
    return user


async def access_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("用户不存在", code="user_not_found")
    return user


async def do_update_user(
    session: AsyncSession,
    actor: Actor,
    user: User,
    *,
    display_name: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's profile, role, activity or password; audited."""
    before = user.snapshot()
    if display_name is not None:
        user.display_name = display_name.strip()[:64] or user.username
    if role is not None:
        user.role = check_role(role).value
    if is_active is not None:
        if not is_active and actor.user_id == user.id:
            raise InvalidInput("不能停用自己的账号", code="cannot_deactivate_self")
        user.is_active = is_active
        if not is_active:
            user.session_epoch += 1
    if password is not None:
        user.password_hash = hash_password(check_new_password(password))
        user.session_epoch += 1
        user.failed_logins = 0
        user.locked_until = None
    after = user.snapshot()
    if password is not None:
        after = {**after, "password": "(changed)"}
    record_audit(session, actor, "user.update", "user", user.id, before=before, after=after)
    emit(session, "user.updated", {"user_id": user.id})
    return user


async def authenticate(session: AsyncSession, username: str, password: str, *, source: str = "web") -> User:
    """Check a login. Failed attempts are counted and committed even though we raise.

    After ``login_max_failures`` consecutive failures the account is locked for
    ``login_lockout_s`` seconds, whatever password is tried meanwhile.
    """
    settings = get_settings()
    user = await get_user_by_username(session, username or "")
    now = utcnow()
    if user is None or not user.is_active:
        # Same answer as a wrong password: do not reveal which usernames exist.
        raise NotAuthenticated("用户名或密码错误", code="bad_credentials")
    if user.locked_until and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise AccountLocked(f"登录失败次数过多，账号已锁定，请约 {minutes} 分钟后再试", code="account_locked")
    if not verify_password(user.password_hash, password or ""):
        user.failed_logins += 1
        actor = Actor(None, username[:80], source)
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_s)
            user.failed_logins = 0
            record_audit(session, actor, "auth.lockout", "user", user.id)
        else:
            record_audit(session, actor, "auth.login_failed", "user", user.id)
        await commit(session)
        raise NotAuthenticated("用户名或密码错误", code="bad_credentials")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def do_issue_api_token(session: AsyncSession, user: User) -> tuple[str, ApiToken]:
    """Create a bearer token; the plaintext is returned once and never stored."""
    token = "gd_" + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        user_id=user.id,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + timedelta(seconds=get_settings().api_token_ttl_s),
        revoked=False,
    )
    session.add(row)
    await session.flush()
    return token, row


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked or row.expires_at <= utcnow():
        return None
    user = await session.get(User, row.user_id)
    return user if user and user.is_active else None


async def do_revoke_api_token(session: AsyncSession, token: str) -> bool:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None:
        return False
    row.revoked = True
    return True
