"""Small things a busy person does: a refused button gets one answer, a calendar arrow tapped twice,
a review whose evidence file has gone from the media folder, and an error told in the person's language."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.i18n import SUPPORTED_LOCALES, translator
from bot.sandbox.botapi import ApiCall
from bot.sandbox.harness import BotHarness
from bot.storage.models import Evidence, Staff, Visit
from tests.field_office import ANN, BOB, BOSS, PHOTO_1, VOICE, file_visit

pytestmark = pytest.mark.usefixtures("field")

INTERNAL = "Something went wrong"
ANY_INTERNAL = tuple(translator(locale)("error.internal") for locale in SUPPORTED_LOCALES)


def _answers(calls: list[ApiCall]) -> list[ApiCall]:
    return [c for c in calls if c.method == "answerCallbackQuery"]


async def _walk_to_amount(harness: BotHarness, case_id: int) -> None:
    """Ann's visit of ZS-1 up to the promised amount (the next question is the promised date)."""
    await harness.send(harness.updates.button(ANN, f"v:in:{case_id}", forge=True))
    await harness.send(harness.updates.location(ANN, 31.2306, 121.4739))
    await harness.send(harness.updates.button(ANN, "v:dur:30"))
    await harness.send(harness.updates.button(ANN, "v:code:PTP"))
    await harness.send(harness.updates.text(ANN, "800"))


async def _walk_to_filed(harness: BotHarness, case_id: int) -> int:
    """Ann's visit of ZS-1 through the bot, with a photo and a recording, filed; returns the visit id."""
    await _walk_to_amount(harness, case_id)
    await harness.send(harness.updates.text(ANN, "明天"))
    await harness.send(harness.photo_update(ANN, PHOTO_1))
    await harness.send(harness.voice_update(ANN, VOICE))
    await harness.send(harness.updates.button(ANN, "v:done"))
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert harness.replies(calls)[-1].startswith("✅ Report filed")
    async with harness.db.read() as session:
        return (await session.scalars(select(Visit.id))).one()


async def test_a_refused_check_in_is_answered_once_with_the_reason(harness: BotHarness,
                                                                   field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.button(ANN, f"v:in:{field['bobs_case']}", forge=True))
    answers = _answers(calls)
    assert len(answers) == 1, [a.params for a in answers]  # Telegram refuses a second answer to the same press
    assert answers[0].params["text"] == "You are not allowed to do that."
    assert answers[0].params.get("show_alert") is True


async def test_a_refused_resume_is_answered_once_with_the_reason(harness: BotHarness, field: dict[str, int]) -> None:
    bobs_visit = await file_visit(harness, field["bob"], field["bobs_case"], "NOBODY", {"revisit_date": "2026-11-04"})
    calls = await harness.send(harness.updates.button(ANN, f"v:resume:{bobs_visit}", forge=True))
    answers = _answers(calls)
    assert len(answers) == 1, [a.params for a in answers]
    assert answers[0].params["text"] == "You are not allowed to do that."
    # Bob's own, but already filed: one answer, the reason
    calls = await harness.send(harness.updates.button(BOB, f"v:resume:{bobs_visit}", forge=True))
    answers = _answers(calls)
    assert [a.params.get("text") for a in answers] == ["That report has already been filed and cannot be changed."]


async def test_a_resume_that_goes_ahead_is_answered_once(harness: BotHarness, field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    async with harness.db.read() as session:
        visit_id = (await session.scalars(select(Visit.id))).one()
    calls = await harness.send(harness.updates.button(ANN, f"v:resume:{visit_id}", forge=True))
    assert len(_answers(calls)) == 1
    assert harness.replies(calls)[-2].startswith("Case ZS-1")  # then the results needing no check-in


async def test_two_quick_taps_on_a_visit_calendar_arrow_are_harmless(harness: BotHarness,
                                                                     field: dict[str, int]) -> None:
    await _walk_to_amount(harness, field["case"])
    await harness.send(harness.updates.button(ANN, "v:cal:202611"))
    first, second = (harness.updates.button(ANN, "v:cal:202612") for _ in range(2))  # both on November's page
    await harness.send(first)
    calls = await harness.send(second)
    assert not any(t in ANY_INTERNAL for t in harness.replies(calls)), harness.replies(calls)
    assert len(_answers(calls)) == 1
    await harness.send(harness.updates.button(ANN, "v:d:20261224"))
    async with harness.db.read() as session:
        visit = (await session.scalars(select(Visit))).one()
    assert visit.details["answers"]["promise_date"] == "2026-12-24"


async def test_two_quick_taps_on_an_extension_calendar_arrow_are_harmless(harness: BotHarness,
                                                                          field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:ext:{field['case']}", forge=True))
    await harness.send(harness.updates.text(ANN, "The debtor is travelling"))
    await harness.send(harness.updates.button(ANN, "x:cal:202611"))
    first, second = (harness.updates.button(ANN, "x:cal:202612") for _ in range(2))
    await harness.send(first)
    calls = await harness.send(second)
    assert not any(t in ANY_INTERNAL for t in harness.replies(calls)), harness.replies(calls)
    assert len(_answers(calls)) == 1


async def test_review_files_with_one_file_gone_sends_the_rest_and_says_what_is_missing(
        harness: BotHarness, field: dict[str, int]) -> None:
    visit_id = await _walk_to_filed(harness, field["case"])
    async with harness.db.read() as session:
        photo = (await session.scalars(select(Evidence).where(Evidence.kind == "photo"))).one()
    assert photo.path is not None and photo.sha256 is not None
    harness.runtime.media.path(photo.path).unlink()  # gone from the media folder (a disk problem, a bad restore)
    calls = await harness.send(harness.updates.button(BOSS, f"rv:files:{visit_id}", forge=True))
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1 and "1/1" in documents[0].params["caption"]  # the recording still goes out
    texts = harness.replies(calls)
    assert not any(INTERNAL in t for t in texts)
    lost = [t for t in texts if "could not be found" in t]
    assert len(lost) == 1 and "ZS-1" in lost[0] and "Photo" in lost[0] and photo.sha256[:12] in lost[0]
    assert len(_answers(calls)) == 1


async def test_review_files_missing_notice_is_in_the_supervisor_s_language(harness: BotHarness,
                                                                           field: dict[str, int]) -> None:
    visit_id = await _walk_to_filed(harness, field["case"])
    async with harness.db.write() as session:
        boss = await session.get(Staff, field["boss"])
        assert boss is not None
        boss.locale = "zh_CN"
        photo = (await session.scalars(select(Evidence).where(Evidence.kind == "photo"))).one()
    assert photo.path is not None
    harness.runtime.media.path(photo.path).unlink()
    calls = await harness.send(harness.updates.button(BOSS, f"rv:files:{visit_id}", forge=True))
    assert any("找不到" in t and "照片" in t for t in harness.replies(calls))


async def test_an_internal_error_is_told_in_the_person_s_language(harness: BotHarness,
                                                                  field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:ext:{field['case']}", forge=True))
    await harness.send(harness.updates.text(ANN, "The debtor is travelling"))
    harness.api.fail_next("editMessageReplyMarkup", status=400, description="Bad Request: message can't be edited")
    calls = await harness.send(harness.updates.button(ANN, "x:cal:202611"))
    replies = harness.replies(calls)
    assert any(t.startswith(INTERNAL) for t in replies), replies  # Ann reads English, the office default is Chinese
