"""Private chats only: in a group the bot answers nothing and changes nothing, except that the alert
group's members may acknowledge an alarm there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.i18n import translator
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser, group_chat
from bot.storage.models import AuditEntry, InboxEntry, Incident, OutboxMessage, Role
from tests.field_office import ANN, BOSS, add_case

ALERT_GROUP = -1001234567890
TEAM_GROUP = group_chat(-1009876543210, "Team A chat")
STRANGER = FakeUser(3999, "Stranger", language_code="en")


async def counts(harness: BotHarness) -> dict[str, int]:
    async with harness.db.read() as session:
        return {name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in (("incidents", Incident), ("outbox", OutboxMessage), ("audit", AuditEntry),
                                    ("inbox", InboxEntry))}


@pytest.fixture
async def office(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotHarness]:
    """Boss and Ann (with a case), on a bot that has an alert group configured."""
    harness = BotHarness(sandbox_settings(tmp_path, supervisors_chat_id=ALERT_GROUP), clock)
    await harness.start()
    try:
        boss = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
        ann = await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
        await add_case(harness, "ZS-1", ann, (31.2304, 121.4737))
        await harness.deliver_outbox()
        harness.api.clear()
        yield harness
    finally:
        await harness.close()
    assert harness.api.violations == [], harness.api.violations


@pytest.mark.parametrize("chat", [TEAM_GROUP, group_chat(-4012345, "small group", kind="group"),
                                  group_chat(ALERT_GROUP, "the alert group")])
async def test_visits_in_a_group_gets_no_answer(office: BotHarness, chat: dict[str, object]) -> None:
    before = await counts(office)
    calls = await office.send(office.updates.command(ANN, "/visits", chat=chat))
    assert calls == []  # not a word, to the group or to anyone
    assert await counts(office) == before
    # the same command in the private chat is answered as usual
    assert office.replies(await office.send(office.updates.command(ANN, "/visits")), ANN.id)


async def test_sos_text_in_a_group_raises_nothing(office: BotHarness) -> None:
    before = await counts(office)
    for text in (translator("en")("menu.sos"), translator("zh_CN")("menu.sos")):
        assert await office.send(office.updates.text(ANN, text, chat=TEAM_GROUP)) == []
    assert await office.send(office.updates.command(ANN, "/sos", chat=TEAM_GROUP)) == []
    await office.tick()
    after = await counts(office)
    assert after["incidents"] == 0 and after["outbox"] == before["outbox"] and after == before
    assert office.api.calls == []


async def test_group_buttons_other_than_acknowledge_are_ignored(office: BotHarness) -> None:
    before = await counts(office)
    for data in ("v:in:1", "lang:en", "sos:res:1", "sos:safe"):
        calls = await office.send(office.updates.button(BOSS, data, chat=group_chat(ALERT_GROUP), forge=True))
        assert calls == [], data  # no answerCallbackQuery, no message
    assert await counts(office) == before


async def test_strangers_in_a_group_get_no_refusal(office: BotHarness) -> None:
    assert await office.send(office.updates.text(STRANGER, "hello bot", chat=TEAM_GROUP)) == []
    assert await office.send(office.updates.command(STRANGER, "/start", "not-a-code", chat=TEAM_GROUP)) == []
    async with office.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.object_id == str(STRANGER.id))) == 0


async def test_acknowledge_in_the_alert_group_reaches_the_handler(office: BotHarness) -> None:
    await office.send(office.updates.command(ANN, "/sos"))
    await office.deliver_outbox()
    group_alerts = office.api.texts(ALERT_GROUP)
    assert group_alerts, "the alert group gets the alarm"
    office.clock.advance(seconds=20)
    # the same button in some other group does nothing
    assert await office.send(office.updates.button(BOSS, "sos:ack:1", chat=TEAM_GROUP, forge=True)) == []
    async with office.db.read() as session:
        assert (await session.scalars(select(Incident))).one().owner_id is None
    await office.send(office.updates.button(BOSS, "sos:ack:1", chat=group_chat(ALERT_GROUP)))
    async with office.db.read() as session:
        incident = (await session.scalars(select(Incident))).one()
    assert incident.owner_id is not None and incident.acknowledged_at is not None


async def test_acknowledge_in_the_group_when_no_alert_group_is_configured(harness: BotHarness) -> None:
    boss = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
    await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
    await harness.send(harness.updates.command(ANN, "/sos"))
    harness.api.clear()
    assert await harness.send(harness.updates.button(BOSS, "sos:ack:1", chat=group_chat(ALERT_GROUP),
                                                     forge=True)) == []
    async with harness.db.read() as session:
        assert (await session.scalars(select(Incident))).one().owner_id is None
