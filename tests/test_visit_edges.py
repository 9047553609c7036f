"""The visit flow's refusals and side roads: no recording, forwarded media, big files, bad answers,
foreign buttons, far check-ins, /cancel and resume, a returned report amended, the phone, the route."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.storage.models import AuditEntry, Case, Evidence, FlowState, Staff, Visit
from tests.field_office import ANN, BOB, BOSS, PHOTO_1, VOICE

pytestmark = pytest.mark.usefixtures("field")


async def to_step(harness: BotHarness, ids: dict[str, int], last: str, *, lat: float = 31.2306) -> None:
    """Walk Ann's visit of ZS-1 up to and including ``last``."""
    steps = [
        ("check in", lambda: harness.updates.button(ANN, f"v:in:{ids['case']}", forge=True)),
        ("location", lambda: harness.updates.location(ANN, lat, 121.4739)),
        ("duration", lambda: harness.updates.button(ANN, "v:dur:30")),
        ("code", lambda: harness.updates.button(ANN, "v:code:PTP")),
        ("amount", lambda: harness.updates.text(ANN, "800")),
        ("date", lambda: harness.updates.text(ANN, "明天")),
    ]
    for name, make in steps:
        await harness.send(make())
        if name == last:
            return


async def _visit(harness: BotHarness) -> Visit:
    async with harness.db.read() as session:
        visit = (await session.scalars(select(Visit))).one()
    return visit


async def test_filing_without_a_recording_is_refused_with_the_reason(harness: BotHarness,
                                                                     field: dict[str, int]) -> None:
    await to_step(harness, field, "date")
    await harness.send(harness.photo_update(ANN, PHOTO_1))
    await harness.send(harness.updates.button(ANN, "v:done"))
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert calls[-1].method == "answerCallbackQuery"
    assert calls[-1].params["text"].startswith("Company rules require a recording of every visit.")
    assert (await _visit(harness)).status == "draft"
    calls = await harness.send(harness.voice_update(ANN, VOICE))
    assert harness.replies(calls) == ["🎙 Recording saved."]
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert harness.replies(calls)[-1].startswith("✅ Report filed (version 1)")


async def test_forwarded_photo_and_forwarded_location_are_refused(harness: BotHarness, field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    calls = await harness.send(harness.updates.location(ANN, 31.2306, 121.4739, forwarded=True))
    assert "a forwarded location cannot be used" in harness.replies(calls)[0]
    assert (await _visit(harness)).checkin_at is None
    await to_step(harness, field, "date")
    calls = await harness.send(harness.photo_update(ANN, PHOTO_1, forwarded=True))
    assert harness.replies(calls) == ["Forwarded photos or recordings cannot be evidence; send ones you took yourself."]
    async with harness.db.read() as session:
        assert (await session.scalars(select(Evidence))).all() == []


async def test_a_25_megabyte_file_gets_the_size_answer_and_is_listed_missing(harness: BotHarness,
                                                                             field: dict[str, int]) -> None:
    await to_step(harness, field, "date")
    file_id, unique = harness.api.add_file_of_size(25 * 1024 * 1024)
    calls = await harness.send(harness.updates.audio(ANN, file_id, unique, size=25 * 1024 * 1024))
    assert "over Telegram's 20 MB download limit" in harness.replies(calls)[0]
    assert not any(c.method == "getFile" for c in calls)
    async with harness.db.read() as session:
        row = (await session.scalars(select(Evidence))).one()
    assert (row.status, row.file_id, row.sha256) == ("too_big", file_id, None)
    calls = await harness.send(harness.updates.button(ANN, "v:done"))
    assert "1 missing file(s)" in harness.replies(calls)[-1]


async def test_amount_abc_re_asks_the_same_question(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "code")
    calls = await harness.send(harness.updates.text(ANN, "abc"))
    assert harness.replies(calls) == ["That is not a valid amount. Please type a positive number, e.g. 1200 or "
                                      "1,200.50.", "Please enter: amount"]
    calls = await harness.send(harness.updates.text(ANN, "1200元"))
    assert harness.replies(calls) == ["Please enter: promised date"]
    calls = await harness.send(harness.updates.text(ANN, "yesterday-ish"))
    assert harness.replies(calls)[0].startswith("That date was not understood.")
    calls = await harness.send(harness.updates.text(ANN, "2026-10-01"))
    assert harness.replies(calls)[0] == "The date cannot be in the past."
    assert json.dumps((await _visit(harness)).details["answers"]) == '{"amount": "1200.00"}'


async def test_date_from_the_button_calendar(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "amount")
    calls = await harness.send(harness.updates.button(ANN, "v:cal:202611"))
    keyboard = calls[-1].params["reply_markup"]["inline_keyboard"]
    days = [b["callback_data"] for row in keyboard for b in row if b["callback_data"].startswith("v:d:")]
    assert days[0] == "v:d:20261102" and "v:d:20261101" not in days  # no past days
    await harness.send(harness.updates.button(ANN, "v:cal:202612"))
    await harness.send(harness.updates.button(ANN, "v:d:20261224"))
    assert (await _visit(harness)).details["answers"]["promise_date"] == "2026-12-24"


async def test_button_for_another_collector_s_case_is_refused_and_audited(harness: BotHarness,
                                                                         field: dict[str, int]) -> None:
    for data in (f"v:card:{field['bobs_case']}", f"v:in:{field['bobs_case']}", f"v:ph:{field['bobs_case']}"):
        calls = await harness.send(harness.updates.button(ANN, data, forge=True))
        assert calls[-1].method == "answerCallbackQuery"
        assert calls[-1].params["text"] == "You are not allowed to do that."
        assert not any(c.method in ("sendMessage", "editMessageText") for c in calls)
    async with harness.db.read() as session:
        refused = (await session.execute(select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.object_id)
                                         .where(AuditEntry.action.like("refused.%")))).all()
        visits_started = (await session.scalars(select(Visit))).all()
    assert refused == [("refused.case.card", field["ann"], str(field["bobs_case"])),
                       ("refused.visit.start", field["ann"], str(field["bobs_case"])),
                       ("refused.case.phone", field["ann"], str(field["bobs_case"]))]
    assert visits_started == []


async def test_supervisor_buttons_are_refused_to_collectors(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "date")
    calls = await harness.send(harness.updates.button(BOB, "rv:ok:1", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."


async def test_far_check_in_is_flagged_but_the_collector_goes_on(harness: BotHarness, field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    calls = await harness.send(harness.updates.location(ANN, 31.2404, 121.4737))  # about 1.1 km north
    assert harness.replies(calls)[0].startswith("⚠️ Checked in, but about 1108 m from the case address")
    assert harness.replies(calls)[1].startswith("How long should this visit take?")
    visit = await _visit(harness)
    assert visit.checkin_flagged and visit.checkin_distance_m == pytest.approx(1108.6, abs=1)
    async with harness.db.read() as session:
        me = await session.get(Staff, field["ann"])
    assert me is not None and (me.last_lat, me.last_lon) == (31.2404, 121.4737)


async def test_wrong_kinds_get_a_hint(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "date")
    for update in (harness.updates.sticker(ANN), harness.updates.contact(ANN, "+8613800138000", first_name="Li")):
        calls = await harness.send(update)
        assert harness.replies(calls) == ["Only photos and recordings (voice notes, audio files) are taken here."]
    calls = await harness.send(harness.document_update(ANN, b"%PDF-1.4", "contract.pdf", mime_type="application/pdf"))
    assert harness.replies(calls) == ["Only photos and recordings (voice notes, audio files) are taken here."]


async def test_cancel_keeps_the_draft_and_the_card_continues_it(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "amount")
    calls = await harness.send(harness.updates.command(ANN, "/cancel"))
    assert harness.replies(calls)[0].startswith("Left the report. What you entered is kept as a draft")
    async with harness.db.read() as session:
        assert (await session.scalars(select(FlowState))).all() == []
    calls = await harness.send(harness.updates.text(ANN, "2026-12-01"))
    assert harness.replies(calls) == ["Sorry, I did not understand that. Use the menu below or send /help."]
    calls = await harness.send(harness.updates.button(ANN, f"v:card:{field['case']}", forge=True))
    assert any(b["text"] == "✏️ Continue the visit report"
               for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row)
    calls = await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}"))
    assert harness.replies(calls)[-1] == "Please enter: promised date"
    assert (await _visit(harness)).details["answers"] == {"amount": "800.00"}


async def test_after_a_restart_the_collector_is_offered_to_continue(harness: BotHarness,
                                                                   field: dict[str, int]) -> None:
    await to_step(harness, field, "code")
    await harness.restart()
    await harness.restart()  # a second start (or a second worker) does not offer twice
    assert await harness.deliver_outbox() == 1
    offer = harness.api.last("sendMessage", ANN.id).params
    assert offer["text"].startswith("The bot restarted. Your visit report for case ZS-1 is not finished")
    calls = await harness.send(harness.updates.button(ANN, offer["reply_markup"]["inline_keyboard"][0][0]
                                                      ["callback_data"]))
    assert harness.replies(calls)[-1] == "Please enter: amount"


async def test_returned_report_is_amended_and_filed_again(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "date")
    await harness.send(harness.voice_update(ANN, VOICE))
    await harness.send(harness.updates.button(ANN, "v:done"))
    await harness.send(harness.updates.button(ANN, "v:file"))
    visit = await _visit(harness)
    await harness.deliver_outbox()
    await harness.send(harness.updates.button(BOSS, f"rv:ret:{visit.id}"))
    calls = await harness.send(harness.updates.text(BOSS, "Please add a photo of the door"))
    assert harness.replies(calls, BOSS.id)[-1] == "Report returned; the collector gets your comment."
    await harness.deliver_outbox()
    notice = harness.api.last("sendMessage", ANN.id).params
    assert notice["text"] == ("↩ Your visit report for case ZS-1 was returned by Boss: Please add a photo of the "
                              "door")
    calls = await harness.send(harness.updates.button(ANN, f"v:amend:{visit.id}"))
    assert "Supervisor's comment: Please add a photo of the door" in harness.replies(calls)[-1]
    await harness.send(harness.updates.button(ANN, "v:more"))
    await harness.send(harness.photo_update(ANN, PHOTO_1))
    await harness.send(harness.updates.button(ANN, "v:done"))
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert harness.replies(calls)[-1].startswith("✅ Report filed (version 2)")
    await harness.deliver_outbox()
    assert harness.api.last("sendMessage", BOSS.id).params["text"].startswith("📝 Ann filed a visit report")
    async with harness.db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "visit")
                                         .order_by(AuditEntry.seq))).all()
    assert [a for a in actions if a.startswith("visit.")][-3:] == ["visit.filed", "visit.returned", "visit.refiled"]


async def test_phone_is_shown_with_protection_and_audited(harness: BotHarness, field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.button(ANN, f"v:ph:{field['case']}", forge=True))
    sent = next(c for c in calls if c.method == "sendMessage").params
    assert sent["protect_content"] is True and "13800138000" in sent["text"] and "no threats" in sent["text"]
    harness.clock.advance(hours=13)  # 22:00 in Shanghai: quiet hours
    calls = await harness.send(harness.updates.button(ANN, f"v:ph:{field['case']}", forge=True))
    warning = next(c for c in calls if c.method == "sendMessage").params["text"]
    assert "quiet hours (21:00–08:00): do not call" in warning
    async with harness.db.read() as session:
        shown = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.phone_shown"))).all()
    assert len(shown) == 2 and shown[0].actor_id == field["ann"]


async def test_list_is_ordered_by_deadline_and_route_comes_with_a_picture(harness: BotHarness,
                                                                         field: dict[str, int]) -> None:
    from bot.services import assignment

    now = harness.clock.now()
    async with harness.db.write() as session:
        for n, (lat, lon) in enumerate([(31.25, 121.50), (31.21, 121.45)], start=3):
            case = Case(bank="招商银行", case_no=f"ZS-{n}", debtor_name="欧阳娜娜", address=f"地址{n}",
                        amount_due_fen=100000, status="new", created_at=now, updated_at=now, lat=lat, lon=lon)
            session.add(case)
            await session.flush()
            await assignment.assign_cases(session, [case.id], field["ann"], actor=None, reason="t", now=now,
                                          calendar=harness.app.bot_data["runtime"].calendar)
        first = await session.get(Case, field["case"])
        assert first is not None
        first.visit_due_at = now.replace(hour=0)  # overdue
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    text = calls[-1].params["text"]
    assert text.startswith("Visit list: 3 case(s), 1 overdue.")
    lines = text.splitlines()[1:4]
    assert lines[0].startswith("1. ⚠️ ZS-1 李*") and "欧阳**" in lines[1]
    assert calls[-1].params["protect_content"] is True
    calls = await harness.send(harness.updates.button(ANN, "v:route"))
    photo = next(c for c in calls if c.method == "sendPhoto").params
    assert photo["caption"].startswith("Today's route: 3 stops, about ")
    assert photo["photo"]["filename"] and photo["photo"]["size"] > 1000


async def test_a_custom_duration_is_typed_in_minutes(harness: BotHarness, field: dict[str, int]) -> None:
    await to_step(harness, field, "location")
    calls = await harness.send(harness.updates.button(ANN, "v:dur:custom"))
    assert harness.replies(calls)[-1] == "Type the planned minutes (5–480):"
    calls = await harness.send(harness.updates.text(ANN, "an hour or so"))
    assert harness.replies(calls) == ["Please type a number of minutes between 5 and 480."]
    calls = await harness.send(harness.updates.text(ANN, "45分钟"))
    assert harness.replies(calls)[-1] == "Choose the visit result:"
    assert (await _visit(harness)).planned_minutes == 45
