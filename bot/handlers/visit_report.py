"""The visit itself: check in with a location, the planned duration, the result, evidence, filing.

Every answer is saved in the database as it arrives (the visit row and the person's flow step), so
after a restart the next update simply carries on, and ``/cancel`` keeps the draft. Each step that
changes something records the update, so a second delivery of the same update changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.buttons import (
    AnswerChoice,
    AnswerDate,
    AnswerSkip,
    CheckIn,
    Code,
    EvidenceDone,
    FileReport,
    Inert,
    MoreEvidence,
    Recode,
    ResultCode,
    VisitAmend,
    VisitCalendarPage,
    VisitDuration,
    VisitResume,
    Word,
)
from bot.context import FieldbotContext
from bot.handlers.common import ignore_replays, pressed, refuse, replace_buttons, serves, write_once
from bot.handlers.routing import AtStep
from bot.i18n import N_
from bot.keyboards import date_buttons, main_keyboard, month_keyboard, month_shown
from bot.services import dispositions, evidence, flows, visits
from bot.services.dispositions import AnswerError, Kind
from bot.services.errors import DomainError
from bot.services.parsing import parse_minutes
from bot.services.policy import Action
from bot.services.visit_summary import summary_text
from bot.steps import VisitStep
from bot.storage.models import Case, Visit

log = logging.getLogger(__name__)

DURATIONS = (30, 60, 90)
CUSTOM = Word("custom")
CODES_PER_ROW = 2
CODE_STEPS = (VisitStep.CODE, VisitStep.CONFIRM, VisitStep.FIELD, VisitStep.EVIDENCE)  # "change the result" works here
# results that need no check-in (or no planned duration) may be chosen before it: "not visited", "left for safety"
EARLY_CODES = {VisitStep.LOCATION: dispositions.codes_without(checkin=True),
               VisitStep.DURATION: dispositions.codes_without(duration=True)}


# ---- asking the question of a step ---------------------------------------------------------------------


async def _send(context: FieldbotContext, chat_id: int, text: str, markup: Any = None) -> Message:
    return await context.bot.send_message(chat_id, text, reply_markup=markup, protect_content=True)


def _code_rows(context: FieldbotContext, codes: Sequence[str]) -> list[list[InlineKeyboardButton]]:
    t = context.t
    return [[InlineKeyboardButton(t(f"code.{c}"), callback_data=ResultCode(Code(c)).pack())
             for c in codes[i:i + CODES_PER_ROW]]
            for i in range(0, len(codes), CODES_PER_ROW)]


async def ask(context: FieldbotContext, chat_id: int, visit: Visit, case: Case, step: VisitStep,
              data: dict[str, Any]) -> None:
    """Send the question of ``step`` (used after each answer and when resuming)."""
    t, runtime = context.t, context.runtime
    if step is VisitStep.LOCATION:
        keyboard = ReplyKeyboardMarkup([[KeyboardButton(t("visit.send_location"), request_location=True)]],
                                       resize_keyboard=True, one_time_keyboard=True)
        await _send(context, chat_id, t("visit.ask_location", case_no=case.case_no, address=case.address), keyboard)
        if EARLY_CODES[step]:
            await _send(context, chat_id, t("visit.without_checkin"),
                        InlineKeyboardMarkup(_code_rows(context, EARLY_CODES[step])))
    elif step is VisitStep.DURATION:
        minutes = [[InlineKeyboardButton(t("visit.minutes", minutes=m),
                                         callback_data=VisitDuration(Word(str(m))).pack()) for m in DURATIONS],
                   [InlineKeyboardButton(t("visit.duration_custom"), callback_data=VisitDuration(CUSTOM).pack())],
                   *_code_rows(context, EARLY_CODES[step])]
        await _send(context, chat_id, t("visit.ask_duration"), InlineKeyboardMarkup(minutes))
    elif step is VisitStep.DURATION_CUSTOM:
        await _send(context, chat_id, t("visit.ask_duration_minutes"))
    elif step is VisitStep.CODE:
        await _send(context, chat_id, t("visit.ask_code"),
                    InlineKeyboardMarkup(_code_rows(context, list(dispositions.DISPOSITIONS))))
    elif step is VisitStep.FIELD:
        assert visit.code is not None
        spec = dispositions.field(visit.code, data["field"])
        question = t("visit.ask_field", field=t(f"field.{spec.name}"))
        buttons: list[list[InlineKeyboardButton]] = []
        if spec.kind is Kind.DATE:
            buttons = date_buttons(t, runtime.calendar.working_date(runtime.clock.now()), day=AnswerDate,
                                   page=VisitCalendarPage)
        elif spec.kind is Kind.CHOICE:
            buttons = [[InlineKeyboardButton(t(f"choice.{c}"), callback_data=AnswerChoice(Word(c)).pack())]
                       for c in spec.choices]
        elif spec.kind is Kind.YESNO:
            buttons = [[InlineKeyboardButton(t("choice.yes"), callback_data=AnswerChoice(Word("yes")).pack()),
                        InlineKeyboardButton(t("choice.no"), callback_data=AnswerChoice(Word("no")).pack())]]
        if spec.unknown:
            buttons.append([InlineKeyboardButton(t("visit.unknown"), callback_data=AnswerSkip().pack())])
        elif not spec.required:
            buttons.append([InlineKeyboardButton(t("visit.skip"), callback_data=AnswerSkip().pack())])
        await _send(context, chat_id, question, InlineKeyboardMarkup(buttons) if buttons else None)
    elif step is VisitStep.EVIDENCE:
        done = InlineKeyboardMarkup([[InlineKeyboardButton(t("visit.evidence_done"),
                                                           callback_data=EvidenceDone().pack())]])
        required = dispositions.evidence_rule(visit.code).recording
        await _send(context, chat_id, t(N_("visit.ask_evidence") if required else N_("visit.ask_evidence_optional")),
                    done)
    elif step is VisitStep.CONFIRM:
        async with runtime.db.read() as session:
            files = await visits.evidence_of(session, visit.id)
        actions = [[InlineKeyboardButton(t("visit.file"), callback_data=FileReport().pack())],
                   [InlineKeyboardButton(t("visit.add_evidence"), callback_data=MoreEvidence().pack()),
                    InlineKeyboardButton(t("visit.change_code"), callback_data=Recode().pack())]]
        await _send(context, chat_id, t("visit.confirm") + "\n\n" + summary_text(t, case, visit, files, tz=runtime.tz),
                    InlineKeyboardMarkup(actions))


def next_step(visit: Visit) -> tuple[VisitStep, dict[str, Any]]:
    """Where a visit stands: the first thing still missing, in the order the flow asks for it."""
    data: dict[str, Any] = {"visit_id": visit.id}
    rule = dispositions.evidence_rule(visit.code)  # the SOP's until a result is chosen
    if visit.checkin_at is None and rule.checkin:
        return VisitStep.LOCATION, data
    if visit.planned_minutes is None and rule.duration:
        return VisitStep.DURATION, data
    if visit.code is None:
        return VisitStep.CODE, data
    missing = dispositions.next_field(visit.code, visits.answers_of(visit))
    if missing is not None:
        return VisitStep.FIELD, {**data, "field": missing.name}
    return VisitStep.EVIDENCE, data


async def _advance(update: Update, context: FieldbotContext, session: Any, visit: Visit,
                   step: VisitStep | None = None) -> tuple[VisitStep, dict[str, Any]]:
    """Save the person's next step in the same transaction as their answer."""
    assert context.staff is not None
    chosen, data = (step, {"visit_id": visit.id}) if step else next_step(visit)
    await flows.enter(session, context.staff.id, chosen, data, now=context.runtime.clock.now())
    return chosen, data


async def _then_ask(update: Update, context: FieldbotContext, visit_id: int, step: VisitStep,
                    data: dict[str, Any]) -> None:
    """Close the pressed button's spinner (the one answer to it: a refusal never gets here), then ask."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is None:
        return
    async with context.runtime.db.read() as session:
        visit = await session.get(Visit, visit_id)
        case = await session.get(Case, visit.case_id) if visit else None
    if visit is not None and case is not None:
        await ask(context, chat.id, visit, case, step, data)


async def _apply(update: Update, context: FieldbotContext, what: str,
                 change: Callable[[AsyncSession], Awaitable[Visit]]) -> Visit | None:
    """Apply one answer and save the next step in one transaction, then ask the next question.

    A refusal (someone else's case, a filed report, a bad value) is answered and audited instead.
    """
    try:
        async with write_once(update, context) as session:
            visit = await change(session)
            step, data = await _advance(update, context, session, visit)
            case = await session.get(Case, visit.case_id)  # usually already loaded by the change
    except DomainError as error:
        await refuse(update, context, error, what=what)
        return None
    # The committed rows serve the next question: no second transaction to read them again.
    if update.callback_query is not None:
        await update.callback_query.answer()
    if update.effective_chat is not None and case is not None:
        await ask(context, update.effective_chat.id, visit, case, step, data)
    return visit


def _visit_id(context: FieldbotContext) -> int | None:
    flow = context.flow
    if flow is None or flow.flow != VisitStep.FLOW or "visit_id" not in flow.data:
        return None
    return int(flow.data["visit_id"])


async def _stale(update: Update, context: FieldbotContext) -> None:
    await refuse(update, context, DomainError("error.stale_button"), what="visit.stale")


# ---- entering and leaving ------------------------------------------------------------------------------


@serves(Action.CASE_WORK)
@ignore_replays
async def begin(update: Update, context: FieldbotContext) -> None:
    """Check in (or carry on) from the case card."""
    assert context.staff is not None
    staff, case_id, now = context.staff, pressed(update, CheckIn).case_id, context.runtime.clock.now()
    await _apply(update, context, "visit.start", lambda session: visits.start(session, staff, case_id, now=now))


@serves(Action.VISIT_WRITE)
async def resume(update: Update, context: FieldbotContext) -> None:
    """The "continue" button after a restart, or "amend" on a returned report."""
    query = update.callback_query
    assert query is not None and context.staff is not None
    amend = VisitAmend.pattern().match(query.data or "") is not None
    visit_id = pressed(update, VisitAmend).visit_id if amend else pressed(update, VisitResume).visit_id
    try:
        async with context.runtime.db.write() as session:
            visit = await visits.own_open_visit(session, context.staff, visit_id)
            step, data = await _advance(update, context, session, visit, VisitStep.CONFIRM if amend else None)
    except DomainError as error:
        await refuse(update, context, error, what="visit.resume")
        return
    await _then_ask(update, context, visit.id, step, data)


# ---- the answers ---------------------------------------------------------------------------------------


@serves(Action.VISIT_WRITE)
@ignore_replays
async def location_received(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    visit_id = _visit_id(context)
    assert message is not None and message.location is not None and context.staff is not None
    if visit_id is None:
        return
    runtime, t = context.runtime, context.t
    try:
        async with write_once(update, context) as session:
            visit = await visits.check_in(session, context.staff, visit_id, lat=message.location.latitude,
                                          lon=message.location.longitude, sent_at=message.date,
                                          forwarded=message.forward_origin is not None, now=runtime.clock.now(),
                                          radius_m=runtime.settings.checkin_radius_m)
            step, data = await _advance(update, context, session, visit)
    except DomainError as error:
        await refuse(update, context, error, what="visit.checkin")
        return
    if visit.checkin_distance_m is None:
        text = t("visit.checked_in_no_coordinates")
    elif visit.checkin_flagged:
        text = t("visit.checked_in_far", meters=int(visit.checkin_distance_m),
                 radius=runtime.settings.checkin_radius_m)
    else:
        text = t("visit.checked_in", meters=int(visit.checkin_distance_m))
    await context.bot.send_message(message.chat.id, text, reply_markup=main_keyboard(t, context.staff.role))
    await _then_ask(update, context, visit.id, step, data)


async def _save_duration(update: Update, context: FieldbotContext, minutes: int) -> None:
    visit_id = _visit_id(context)
    assert context.staff is not None
    if visit_id is None:
        await _stale(update, context)
        return
    staff, now = context.staff, context.runtime.clock.now()
    await _apply(update, context, "visit.duration",
                 lambda session: visits.set_duration(session, staff, visit_id, minutes, now=now))


@serves(Action.VISIT_WRITE)
@ignore_replays
async def duration_chosen(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    choice = pressed(update, VisitDuration).minutes
    if choice == CUSTOM:
        visit_id = _visit_id(context)
        if visit_id is None:
            await _stale(update, context)
            return
        async with write_once(update, context) as session:
            await flows.enter(session, context.staff.id, VisitStep.DURATION_CUSTOM, {"visit_id": visit_id},
                              now=context.runtime.clock.now())
        await _then_ask(update, context, visit_id, VisitStep.DURATION_CUSTOM, {})
        return
    if not choice.isdigit():
        await _stale(update, context)
        return
    await _save_duration(update, context, int(choice))


@serves(Action.VISIT_WRITE)
@ignore_replays
async def duration_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    minutes = parse_minutes(message.text)
    if minutes is None:
        await context.bot.send_message(message.chat.id, context.t("visit.hint.duration"))
        return
    await _save_duration(update, context, minutes)


@serves(Action.VISIT_WRITE)
@ignore_replays
async def code_chosen(update: Update, context: FieldbotContext) -> None:
    visit_id = _visit_id(context)
    assert context.staff is not None
    code = pressed(update, ResultCode).code
    at = context.flow.at if context.flow is not None else None
    if visit_id is None or not (at in CODE_STEPS or (isinstance(at, VisitStep) and code in EARLY_CODES.get(at, ()))):
        await _stale(update, context)
        return
    staff, now = context.staff, context.runtime.clock.now()
    await _apply(update, context, "visit.code",
                 lambda session: visits.set_code(session, staff, visit_id, code, now=now))


async def _save_answer(update: Update, context: FieldbotContext, value: object,
                       located: tuple[float, float] | None = None) -> None:
    flow = context.flow
    visit_id = _visit_id(context)
    assert context.staff is not None
    if visit_id is None or flow is None or flow.at is not VisitStep.FIELD:
        await _stale(update, context)
        return
    staff, name, now = context.staff, flow.data["field"], context.runtime.clock.now()
    await _apply(update, context, "visit.answer",
                 lambda session: visits.answer(session, staff, visit_id, name, value, now=now, located=located))


async def _spec(context: FieldbotContext) -> dispositions.Field | None:
    flow, visit_id = context.flow, _visit_id(context)
    if flow is None or visit_id is None or flow.at is not VisitStep.FIELD:
        return None
    async with context.runtime.db.read() as session:
        visit = await session.get(Visit, visit_id)
    if visit is None or visit.code is None:
        return None
    return dispositions.field(visit.code, flow.data["field"])


async def _hint(update: Update, context: FieldbotContext, key: str) -> None:
    """A translated hint, then the same question again: nothing typed so far is lost."""
    chat = update.effective_chat
    flow, visit_id = context.flow, _visit_id(context)
    step = flow.at if flow is not None else None
    if chat is None or flow is None or visit_id is None or not isinstance(step, VisitStep):
        return
    log.info("visit answer refused for staff %s: %s", context.staff.id if context.staff else None, key)
    await context.bot.send_message(chat.id, context.t(key))
    await _then_ask(update, context, visit_id, step, flow.data)


@serves(Action.VISIT_WRITE)
@ignore_replays
async def answer_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    spec = await _spec(context)
    if spec is None:
        return
    today = context.runtime.calendar.working_date(context.runtime.clock.now())
    try:
        value = dispositions.check_answer(spec, message.text, today=today)
    except AnswerError as error:
        await _hint(update, context, error.key)
        return
    runtime = context.runtime
    located = await visits.locate_address(runtime.db, runtime.geocoder, str(value), now=runtime.clock.now()) \
        if spec.kind is Kind.ADDRESS else None
    await _save_answer(update, context, value, located)


@serves(Action.VISIT_WRITE)
@ignore_replays
async def answer_pressed(update: Update, context: FieldbotContext) -> None:
    """A date, a choice or "skip" pressed for the current question."""
    query = update.callback_query
    assert query is not None
    spec = await _spec(context)
    if spec is None:
        await _stale(update, context)
        return
    data = query.data or ""
    today = context.runtime.calendar.working_date(context.runtime.clock.now())
    try:
        if AnswerDate.pattern().match(data) and spec.kind is Kind.DATE:
            value: object = dispositions.check_date(spec, pressed(update, AnswerDate).day, today=today).isoformat()
        elif AnswerChoice.pattern().match(data) and spec.kind in (Kind.CHOICE, Kind.YESNO):
            value = dispositions.check_choice(spec, pressed(update, AnswerChoice).choice)
        elif AnswerSkip.pattern().match(data) and (spec.unknown or not spec.required):
            value = ""
        else:
            await _stale(update, context)
            return
    except (AnswerError, ValueError) as error:
        await _hint(update, context, error.key if isinstance(error, AnswerError) else "visit.hint.date")
        return
    await _save_answer(update, context, value)


@serves(Action.VISIT_WRITE)
async def calendar_page(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None
    today = context.runtime.calendar.working_date(context.runtime.clock.now())
    year, month = month_shown(pressed(update, VisitCalendarPage).month, today)
    await query.answer()
    await replace_buttons(update, context, month_keyboard(context.t, year, month, today, day=AnswerDate,
                                                          page=VisitCalendarPage))


async def noop(update: Update, context: FieldbotContext) -> None:
    """A calendar heading or a blank day: no action, so no policy (see :class:`bot.buttons.Inert`)."""
    if update.callback_query is not None:
        await update.callback_query.answer()


# ---- evidence ------------------------------------------------------------------------------------------


def _incoming(message: Message) -> evidence.Incoming | None:
    forwarded = message.forward_origin is not None
    if message.photo:
        biggest = message.photo[-1]
        return evidence.Incoming("photo", biggest.file_id, biggest.file_unique_id, biggest.file_size, None,
                                 message.date, forwarded)
    if message.voice:
        v = message.voice
        return evidence.Incoming("voice", v.file_id, v.file_unique_id, v.file_size, v.mime_type, message.date,
                                 forwarded)
    if message.audio:
        a = message.audio
        return evidence.Incoming("audio", a.file_id, a.file_unique_id, a.file_size, a.mime_type, message.date,
                                 forwarded)
    if message.document:
        d = message.document
        mime = d.mime_type or ""
        kind = "photo" if mime.startswith("image/") else "audio" if mime.startswith("audio/") else None
        if kind is not None:
            return evidence.Incoming(kind, d.file_id, d.file_unique_id, d.file_size, d.mime_type, message.date,
                                     forwarded)
    return None


@serves(Action.VISIT_WRITE)
@ignore_replays
async def media_received(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    visit_id = _visit_id(context)
    assert message is not None and context.staff is not None
    t, runtime = context.t, context.runtime
    item = _incoming(message)
    if item is None:
        await context.bot.send_message(message.chat.id, t("evidence.hint_kind"))
        return
    if visit_id is None:
        return
    async with runtime.db.read() as session:
        visit = await session.get(Visit, visit_id)
    if visit is None or not visits.takes_evidence(visit):
        await context.bot.send_message(message.chat.id, t("evidence.checkin_first"))
        return

    async def download() -> bytes:
        file = await context.bot.get_file(item.file_id)
        return bytes(await file.download_as_bytearray())

    try:
        result = await evidence.add(runtime.db, runtime.media, context.staff, visit_id, item, download=download,
                                    now=runtime.clock.now(), local_mode=runtime.settings.local_mode)
    except DomainError as error:
        await refuse(update, context, error, what="visit.evidence")
        return
    key = {
        evidence.Stored.STORED: N_("evidence.stored_photo") if item.kind == "photo"
        else N_("evidence.stored_recording"),
        evidence.Stored.DUPLICATE: N_("evidence.duplicate"),
        evidence.Stored.TOO_BIG: N_("evidence.too_big"),
    }[result]
    await context.bot.send_message(message.chat.id, t(key, mb=round((item.size or 0) / 1024 / 1024, 1)))


@serves(Action.VISIT_WRITE)
async def wrong_kind(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    if message is not None:
        await context.bot.send_message(message.chat.id, context.t("evidence.hint_kind"))


@serves(Action.VISIT_WRITE)
@ignore_replays
async def evidence_done(update: Update, context: FieldbotContext) -> None:
    visit_id = _visit_id(context)
    assert context.staff is not None
    if visit_id is None:
        await _stale(update, context)
        return
    try:
        async with write_once(update, context) as session:
            visit = await visits.own_open_visit(session, context.staff, visit_id)
            step, data = next_step(visit)
            if step is VisitStep.EVIDENCE:
                step = VisitStep.CONFIRM
            await flows.enter(session, context.staff.id, step, data, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.evidence_done")
        return
    await _then_ask(update, context, visit_id, step, data)


@serves(Action.VISIT_WRITE)
@ignore_replays
async def back_to(update: Update, context: FieldbotContext) -> None:
    """From the summary: add more evidence, or choose a different result."""
    query = update.callback_query
    visit_id = _visit_id(context)
    assert query is not None and context.staff is not None
    if visit_id is None:
        await _stale(update, context)
        return
    step = VisitStep.EVIDENCE if MoreEvidence.pattern().match(query.data or "") else VisitStep.CODE
    try:
        async with write_once(update, context) as session:
            await visits.own_open_visit(session, context.staff, visit_id)
            await flows.enter(session, context.staff.id, step, {"visit_id": visit_id},
                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.back")
        return
    await _then_ask(update, context, visit_id, step, {"visit_id": visit_id})


@serves(Action.VISIT_WRITE)
@ignore_replays
async def file_report(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    visit_id = _visit_id(context)
    assert query is not None and context.staff is not None
    if visit_id is None:
        await _stale(update, context)
        return
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            visit = await visits.file_report(session, context.staff, visit_id, now=runtime.clock.now(),
                                             calendar=runtime.calendar)
            await flows.clear(session, context.staff.id, VisitStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="visit.file")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("visit.filed", revision=visit.revision),
                                   reply_markup=main_keyboard(context.t, context.staff.role))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    in_visit = AtStep(flow=VisitStep)
    media = filters.PHOTO | filters.VOICE | filters.AUDIO | filters.Document.ALL
    wrong = (filters.Sticker.ALL | filters.CONTACT | filters.VIDEO | filters.VIDEO_NOTE | filters.ANIMATION
             | filters.POLL | filters.VENUE)
    text = filters.TEXT & ~filters.COMMAND
    return [
        CallbackQueryHandler(begin, pattern=CheckIn.pattern()),
        CallbackQueryHandler(resume, pattern=VisitResume.pattern()),
        CallbackQueryHandler(resume, pattern=VisitAmend.pattern()),
        MessageHandler(filters.LOCATION & AtStep(VisitStep.LOCATION), location_received),
        CallbackQueryHandler(duration_chosen, pattern=VisitDuration.pattern()),
        MessageHandler(text & AtStep(VisitStep.DURATION_CUSTOM), duration_typed),
        CallbackQueryHandler(code_chosen, pattern=ResultCode.pattern()),
        MessageHandler(text & AtStep(VisitStep.FIELD), answer_typed),
        CallbackQueryHandler(answer_pressed, pattern=AnswerDate.pattern()),
        CallbackQueryHandler(answer_pressed, pattern=AnswerChoice.pattern()),
        CallbackQueryHandler(answer_pressed, pattern=AnswerSkip.pattern()),
        CallbackQueryHandler(calendar_page, pattern=VisitCalendarPage.pattern()),
        CallbackQueryHandler(noop, pattern=Inert.pattern()),
        MessageHandler(media & in_visit, media_received),
        MessageHandler(wrong & in_visit, wrong_kind),
        CallbackQueryHandler(evidence_done, pattern=EvidenceDone.pattern()),
        CallbackQueryHandler(back_to, pattern=MoreEvidence.pattern()),
        CallbackQueryHandler(back_to, pattern=Recode.pattern()),
        CallbackQueryHandler(file_report, pattern=FileReport.pattern()),
    ]
