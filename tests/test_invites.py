"""Invite codes: single use, 7-day expiry, 128+ random bits, lock-out after five wrong codes."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.services import invites, staff
from bot.services.invites import RedeemOutcome
from bot.storage.db import Database
from bot.storage.models import Invite, Role, Staff

USER = 555001


async def _invite(db: Database, clock: ManualClock, name: str = "张三") -> tuple[int, str]:
    async with db.write() as session:
        member = await staff.add_staff(session, name=name, role=Role.COLLECTOR, team="A", now=clock.now())
        code = await invites.create_invite(session, member.id, now=clock.now())
    return member.id, code


async def _redeem(db: Database, clock: ManualClock, code: str, user: int = USER) -> RedeemOutcome:
    async with db.write() as session:
        result = await invites.redeem(session, code, telegram_user_id=user, language_code="en", now=clock.now())
    return result.outcome


async def test_code_binds_the_account_once(any_database: Database, clock: ManualClock) -> None:
    staff_id, code = await _invite(any_database, clock)
    assert await _redeem(any_database, clock, code) is RedeemOutcome.OK
    assert await _redeem(any_database, clock, code, user=USER + 1) is RedeemOutcome.USED
    async with any_database.read() as session:
        member = await session.get(Staff, staff_id)
        invite = await session.scalar(select(Invite).where(Invite.staff_id == staff_id))
    assert member is not None and member.telegram_user_id == USER and member.locale == "en"
    assert invite is not None and invite.used_by_telegram_id == USER
    assert invite.code_hash != code and code not in invite.code_hash  # only the hash is kept


async def test_code_is_long_random_and_deep_link_safe(database: Database, clock: ManualClock) -> None:
    codes = {(await _invite(database, clock, f"p{i}"))[1] for i in range(20)}
    assert len(codes) == 20
    for code in codes:
        assert len(code) * math.log2(64) >= 128
        assert all(c.isalnum() or c in "-_" for c in code) and len(code) <= 64
    assert invites.deep_link("fieldbot_bot", "abc") == "https://t.me/fieldbot_bot?start=abc"


async def test_code_expires_after_seven_days(database: Database, clock: ManualClock) -> None:
    _, code = await _invite(database, clock)
    clock.advance(timedelta(days=7, seconds=1))
    assert await _redeem(database, clock, code) is RedeemOutcome.EXPIRED


async def test_code_still_works_just_before_expiry(database: Database, clock: ManualClock) -> None:
    _, code = await _invite(database, clock)
    clock.advance(timedelta(days=6, hours=23))
    assert await _redeem(database, clock, code) is RedeemOutcome.OK


async def test_sixth_wrong_try_within_an_hour_is_locked_out(database: Database, clock: ManualClock) -> None:
    _, code = await _invite(database, clock)
    for _ in range(5):
        assert await _redeem(database, clock, "wrong-code") is RedeemOutcome.WRONG
        clock.advance(minutes=5)
    # Locked: even the right code is refused now.
    assert await _redeem(database, clock, code) is RedeemOutcome.LOCKED
    # Another account is not affected by this one's lock.
    assert await _redeem(database, clock, "wrong-code", user=USER + 7) is RedeemOutcome.WRONG
    clock.advance(minutes=41)  # the first failure is now more than an hour old
    assert await _redeem(database, clock, code) is RedeemOutcome.OK


async def test_new_invite_voids_the_old_one(database: Database, clock: ManualClock) -> None:
    staff_id, old = await _invite(database, clock)
    async with database.write() as session:
        new = await invites.create_invite(session, staff_id, now=clock.now())
    assert await _redeem(database, clock, old) is RedeemOutcome.EXPIRED
    assert await _redeem(database, clock, new) is RedeemOutcome.OK


async def test_deactivated_staff_cannot_redeem(database: Database, clock: ManualClock) -> None:
    staff_id, code = await _invite(database, clock)
    async with database.write() as session:
        await staff.deactivate(session, staff_id, now=clock.now())
    assert await _redeem(database, clock, code) is RedeemOutcome.WRONG


async def test_rehired_account_moves_to_the_new_record(database: Database, clock: ManualClock) -> None:
    old_id, code = await _invite(database, clock)
    assert await _redeem(database, clock, code) is RedeemOutcome.OK
    async with database.write() as session:
        await staff.deactivate(session, old_id, now=clock.now())
    new_id, code2 = await _invite(database, clock, "张三")
    assert await _redeem(database, clock, code2) is RedeemOutcome.OK
    async with database.read() as session:
        old = await session.get(Staff, old_id)
        new = await session.get(Staff, new_id)
    assert old is not None and old.telegram_user_id is None
    assert new is not None and new.telegram_user_id == USER
