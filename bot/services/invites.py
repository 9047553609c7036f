"""Single-use invite codes that bind a Telegram account to a staff record.

Codes carry 144 random bits (``secrets.token_urlsafe(18)``), fit Telegram's deep-link alphabet,
expire after 7 days and are stored only as a SHA-256. Five failed codes from one Telegram account
within an hour lock that account out of invites until the hour has passed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import resolve_locale
from bot.services import audit
from bot.services.errors import DomainError
from bot.storage.models import Invite, InviteFailure, Staff

INVITE_TTL = timedelta(days=7)
LOCKOUT_WINDOW = timedelta(hours=1)
MAX_FAILURES = 5


class RedeemOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"
    ALREADY_REGISTERED = "already_registered"


@dataclass(frozen=True)
class RedeemResult:
    outcome: RedeemOutcome
    staff: Staff | None = None


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


async def create_invite(session: AsyncSession, staff_id: int, *, now: datetime, actor_id: int | None = None) -> str:
    """A fresh code for ``staff_id``; earlier unused codes of that person stop working."""
    staff = await session.get(Staff, staff_id)
    if staff is None or not staff.active:
        raise DomainError("staff.error.unknown", id=staff_id)
    for old in await session.scalars(select(Invite).where(Invite.staff_id == staff_id, Invite.used_at.is_(None))):
        old.expires_at = min(old.expires_at, now)
    code = secrets.token_urlsafe(18)
    session.add(Invite(code_hash=hash_code(code), staff_id=staff_id, created_at=now, expires_at=now + INVITE_TTL))
    await audit.record(session, action="invite.create", object_type="staff", object_id=staff_id, actor_id=actor_id,
                       details={"expires_at": (now + INVITE_TTL).isoformat()}, at=now)
    return code


async def _recent_failures(session: AsyncSession, telegram_user_id: int, now: datetime) -> int:
    count = await session.scalar(
        select(func.count()).select_from(InviteFailure).where(
            InviteFailure.telegram_user_id == telegram_user_id, InviteFailure.at > now - LOCKOUT_WINDOW
        )
    )
    return int(count or 0)


async def redeem(
    session: AsyncSession,
    code: str,
    *,
    telegram_user_id: int,
    language_code: str | None,
    now: datetime,
) -> RedeemResult:
    """Bind the account to the invited staff record, or say why not (failures are recorded, not raised)."""
    bound = await session.scalar(
        select(Staff).where(Staff.telegram_user_id == telegram_user_id, Staff.active.is_(True))
    )
    if bound is not None:
        return RedeemResult(RedeemOutcome.ALREADY_REGISTERED, bound)
    if await _recent_failures(session, telegram_user_id, now) >= MAX_FAILURES:
        await audit.record(session, action="invite.locked", object_type="telegram_user",
                           object_id=telegram_user_id, at=now)
        return RedeemResult(RedeemOutcome.LOCKED)

    invite = await session.scalar(select(Invite).where(Invite.code_hash == hash_code(code)))
    staff = await session.get(Staff, invite.staff_id) if invite is not None else None
    if invite is None or staff is None or not staff.active:
        outcome = RedeemOutcome.WRONG
    elif invite.used_at is not None:
        outcome = RedeemOutcome.USED
    elif invite.expires_at <= now:
        outcome = RedeemOutcome.EXPIRED
    else:
        outcome = RedeemOutcome.OK
    if outcome is not RedeemOutcome.OK or invite is None or staff is None:
        session.add(InviteFailure(telegram_user_id=telegram_user_id, at=now, reason=outcome.value))
        await audit.record(session, action="invite.failed", object_type="telegram_user",
                           object_id=telegram_user_id, details={"reason": outcome.value}, at=now)
        return RedeemResult(outcome)

    # A former (deactivated) record may still hold this Telegram account: release it.
    for previous in await session.scalars(select(Staff).where(Staff.telegram_user_id == telegram_user_id)):
        previous.telegram_user_id = None
    await session.flush()
    invite.used_at = now
    invite.used_by_telegram_id = telegram_user_id
    staff.telegram_user_id = telegram_user_id
    if staff.locale is None:
        staff.locale = resolve_locale(None, language_code)
    await audit.record(session, action="invite.redeemed", object_type="staff", object_id=staff.id,
                       actor_id=staff.id, details={"telegram_user_id": telegram_user_id}, at=now)
    return RedeemResult(RedeemOutcome.OK, staff)
