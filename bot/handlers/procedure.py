"""The rest of the procedure in chat: /banks, /bankalert CASE_NO, /letter CASE_NO and /special CASE_NO.

Each handler reads the update and calls one service (bot/services/banks.py, letters.py, special.py),
which asks the policy; a typed answer waits in a declared step (bot/steps.py), saved at every answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import (
    AlertReason,
    BankAlertReason,
    LetterMark,
    LetterOutcome,
    SpecialApply,
    SpecialApprove,
    SpecialArranged,
    SpecialClose,
    SpecialKind,
    SpecialReject,
)
from bot.context import FieldbotContext
from bot.handlers.common import (
    ask_for_text,
    drop_buttons,
    ignore_replays,
    pressed,
    refuse,
    say,
    serves,
    show,
    write_once,
)
from bot.handlers.routing import AtStep
from bot.i18n import N_
from bot.services import banks, flows, letters, special
from bot.services.errors import DomainError
from bot.services.parsing import parse_date
from bot.services.policy import Action
from bot.steps import BankAlertStep, LetterStep, SpecialStep
from bot.storage.models import Letter

Rows = list[list[InlineKeyboardButton]]


def _case_no(context: FieldbotContext) -> str:
    return " ".join(context.args or []).strip()[:64]


def _text(update: Update) -> str:
    message = update.effective_message
    assert message is not None and message.text is not None
    return message.text


def _data(context: FieldbotContext) -> dict[str, Any]:
    assert context.flow is not None
    return context.flow.data


# ---- banks -------------------------------------------------------------------------------------------------


@serves(Action.BANK_MANAGE)
async def bank_list(update: Update, context: FieldbotContext) -> None:
    t = context.t
    try:
        async with context.runtime.db.read() as session:
            found = await banks.list_banks(session, context.staff)
    except DomainError as error:
        await refuse(update, context, error, what="bank.list")
        return
    if not found:
        await say(update, context, "bank.none")
        return
    lines = [t("bank.head", count=len(found))]
    lines += [t("bank.line", name=b.name, agreement=b.agreement_no, start=t.date(b.agreement_start),
                end=t.date(b.agreement_end), routine=b.routine_contact, emergency=b.emergency_contact)
              for b in found]
    await show(update, context, "\n\n".join(lines), edit=False)


@serves(Action.BANK_ALERT)
async def bank_alert(update: Update, context: FieldbotContext) -> None:
    case_no, t = _case_no(context), context.t
    if not case_no:
        await say(update, context, "bankalert.usage")
        return
    try:
        async with context.runtime.db.read() as session:
            case = await banks.find_case(session, case_no)
            target = await banks.alert_target(session, context.staff, case.id)
    except DomainError as error:
        await refuse(update, context, error, what="bank.alert")
        return
    buttons = [[InlineKeyboardButton(t(f"bank.reason.{r.value}"),
                                     callback_data=BankAlertReason(case_id=case.id, reason=r).pack())]
               for r in AlertReason]
    await show(update, context, t("bankalert.ask_reason", case_no=case.case_no, bank=target.bank.name),
               InlineKeyboardMarkup(buttons), edit=False)


@serves(Action.BANK_ALERT)
async def bank_alert_reason(update: Update, context: FieldbotContext) -> None:
    chosen = pressed(update, BankAlertReason)
    await ask_for_text(update, context, BankAlertStep.NOTE, {"case_id": chosen.case_id, "reason": chosen.reason.value},
                       "bankalert.ask_note", what="bank.alert",
                       check=lambda session: banks.alert_target(session, context.staff, chosen.case_id))


@serves(Action.BANK_ALERT)
@ignore_replays
async def bank_alert_note(update: Update, context: FieldbotContext) -> None:
    staff, data = context.staff, _data(context)
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            alert, bank = await banks.report(session, staff, int(data["case_id"]), reason=str(data["reason"]),
                                             note=_text(update), now=context.runtime.clock.now())
            await flows.clear(session, staff.id, BankAlertStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="bank.alert")
        return
    await say(update, context, "bankalert.recorded", bank=bank.name, contact=alert.emergency_contact)


# ---- registered letters ------------------------------------------------------------------------------------


def _outcome_buttons(context: FieldbotContext, case_id: int) -> InlineKeyboardMarkup:
    t = context.t
    return InlineKeyboardMarkup([[InlineKeyboardButton(t(f"letter.btn.{o.value}"),
                                                       callback_data=LetterMark(case_id=case_id, outcome=o).pack())]
                                 for o in LetterOutcome])


def _term_text(context: FieldbotContext, letter: Letter) -> str:
    t = context.t
    assert letter.term_start is not None and letter.term_end is not None
    return t(f"letter.term.{letter.status}", start=t.date(letter.term_start), end=t.date(letter.term_end))


@serves(Action.LETTER_RECORD)
async def letter(update: Update, context: FieldbotContext) -> None:
    case_no, staff, runtime = _case_no(context), context.staff, context.runtime
    assert staff is not None
    if not case_no:
        await say(update, context, "letter.usage")
        return
    try:
        async with runtime.db.write() as session:
            case = await banks.find_case(session, case_no)
            waiting = await letters.waiting(session, staff, case.id)
            if waiting is None:
                await letters.check_case(session, staff, case.id)
                await flows.enter(session, staff.id, LetterStep.SENT, {"case_id": case.id}, now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="letter.record")
        return
    if waiting is not None:
        await show(update, context, context.t("letter.waiting", case_no=case.case_no, tracking=waiting.tracking_no,
                                              sent=context.t.date(waiting.sent_on)),
                   _outcome_buttons(context, case.id), edit=False)
        return
    await say(update, context, "letter.ask_sent", case_no=case.case_no)


def _typed_date(update: Update, context: FieldbotContext) -> date | None:
    return parse_date(_text(update), today=context.runtime.calendar.local(context.runtime.clock.now()).date())


@serves(Action.LETTER_RECORD)
async def letter_sent(update: Update, context: FieldbotContext) -> None:
    staff, runtime, data = context.staff, context.runtime, _data(context)
    assert staff is not None
    sent_on = _typed_date(update, context)
    if sent_on is None:
        await say(update, context, "letter.error.date")
        return
    try:
        async with runtime.db.write() as session:
            await letters.check_case(session, staff, int(data["case_id"]))
            await flows.enter(session, staff.id, LetterStep.TRACKING,
                              {"case_id": data["case_id"], "sent_on": sent_on.isoformat()}, now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="letter.record")
        return
    await say(update, context, "letter.ask_tracking")


@serves(Action.LETTER_RECORD)
@ignore_replays
async def letter_tracking(update: Update, context: FieldbotContext) -> None:
    staff, runtime, data = context.staff, context.runtime, _data(context)
    assert staff is not None
    case_id = int(data["case_id"])
    try:
        async with write_once(update, context) as session:
            recorded = await letters.record(session, staff, case_id, sent_on=date.fromisoformat(str(data["sent_on"])),
                                            tracking=_text(update), now=runtime.clock.now(),
                                            calendar=runtime.calendar)
            await flows.clear(session, staff.id, LetterStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="letter.record")
        return
    await show(update, context, context.t("letter.recorded", tracking=recorded.tracking_no,
                                          sent=context.t.date(recorded.sent_on)),
               _outcome_buttons(context, case_id), edit=False)


@serves(Action.LETTER_RECORD)
@ignore_replays
async def letter_mark(update: Update, context: FieldbotContext) -> None:
    chosen, staff, runtime = pressed(update, LetterMark), context.staff, context.runtime
    assert staff is not None
    if chosen.outcome is LetterOutcome.SIGNED:
        async def check(session: AsyncSession) -> object:
            if await letters.waiting(session, staff, chosen.case_id) is None:
                raise DomainError(N_("letter.error.none_waiting"))
            return None

        await ask_for_text(update, context, LetterStep.SIGNED, {"case_id": chosen.case_id}, "letter.ask_signed",
                           check=check, what="letter.record")
        return
    try:
        async with write_once(update, context) as session:
            marked = await letters.mark(session, staff, chosen.case_id, chosen.outcome.value,
                                        now=runtime.clock.now(), calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="letter.record")
        return
    await drop_buttons(update, context)
    await show(update, context, _term_text(context, marked), edit=False)


@serves(Action.LETTER_RECORD)
@ignore_replays
async def letter_signed(update: Update, context: FieldbotContext) -> None:
    staff, runtime, data = context.staff, context.runtime, _data(context)
    assert staff is not None
    signed_on = _typed_date(update, context)
    if signed_on is None:
        await say(update, context, "letter.error.date")
        return
    try:
        async with write_once(update, context) as session:
            marked = await letters.mark(session, staff, int(data["case_id"]), LetterOutcome.SIGNED.value,
                                        signed_on=signed_on, now=runtime.clock.now(), calendar=runtime.calendar)
            await flows.clear(session, staff.id, LetterStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="letter.record")
        return
    await show(update, context, _term_text(context, marked), edit=False)


# ---- special procedures ------------------------------------------------------------------------------------


@serves(Action.SPECIAL_APPLY)
async def special_begin(update: Update, context: FieldbotContext) -> None:
    case_no, t = _case_no(context), context.t
    if not case_no:
        await say(update, context, "special.usage")
        return
    try:
        async with context.runtime.db.read() as session:
            case = await banks.find_case(session, case_no)
            await special.check_apply(session, context.staff, case.id)
    except DomainError as error:
        await refuse(update, context, error, what="special.apply")
        return
    buttons = [[InlineKeyboardButton(t(f"special.kind.{k.value}"),
                                     callback_data=SpecialApply(case_id=case.id, procedure=k).pack())]
               for k in SpecialKind]
    await show(update, context, t("special.ask_kind", case_no=case.case_no), InlineKeyboardMarkup(buttons),
               edit=False)


@serves(Action.SPECIAL_APPLY)
async def special_kind(update: Update, context: FieldbotContext) -> None:
    chosen = pressed(update, SpecialApply)
    await ask_for_text(update, context, SpecialStep.REASON, {"case_id": chosen.case_id, "kind": chosen.procedure.value},
                       "special.ask_reason", what="special.apply",
                       check=lambda session: special.check_apply(session, context.staff, chosen.case_id))


@serves(Action.SPECIAL_APPLY)
@ignore_replays
async def special_reason(update: Update, context: FieldbotContext) -> None:
    staff, data = context.staff, _data(context)
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            await special.apply(session, staff, int(data["case_id"]), kind=str(data["kind"]), reason=_text(update),
                                now=context.runtime.clock.now())
            await flows.clear(session, staff.id, SpecialStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="special.apply")
        return
    await say(update, context, "special.applied")


async def _decide(update: Update, context: FieldbotContext, case_id: int, approve: bool) -> None:
    try:
        async with write_once(update, context) as session:
            await special.decide(session, context.staff, case_id, approve=approve, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="special.decide")
        return
    await drop_buttons(update, context)
    await say(update, context, N_("special.approved") if approve else N_("special.rejected"))


@serves(Action.SPECIAL_DECIDE)
@ignore_replays
async def special_approve(update: Update, context: FieldbotContext) -> None:
    await _decide(update, context, pressed(update, SpecialApprove).case_id, True)


@serves(Action.SPECIAL_DECIDE)
@ignore_replays
async def special_reject(update: Update, context: FieldbotContext) -> None:
    await _decide(update, context, pressed(update, SpecialReject).case_id, False)


@serves(Action.SPECIAL_ARRANGE)
@ignore_replays
async def special_arranged(update: Update, context: FieldbotContext) -> None:
    try:
        async with write_once(update, context) as session:
            await special.arrange(session, context.staff, pressed(update, SpecialArranged).case_id,
                                  now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="special.arrange")
        return
    await drop_buttons(update, context)
    await say(update, context, "special.arranged")


@serves(Action.SPECIAL_CLOSE)
async def special_close(update: Update, context: FieldbotContext) -> None:
    case_id = pressed(update, SpecialClose).case_id
    await ask_for_text(update, context, SpecialStep.RESULT, {"case_id": case_id}, "special.ask_result",
                       what="special.close",
                       check=lambda session: special.check_close(session, context.staff, case_id))


@serves(Action.SPECIAL_CLOSE)
@ignore_replays
async def special_result(update: Update, context: FieldbotContext) -> None:
    staff, data = context.staff, _data(context)
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            await special.close(session, staff, int(data["case_id"]), result=_text(update),
                                now=context.runtime.clock.now())
            await flows.clear(session, staff.id, SpecialStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="special.close")
        return
    await say(update, context, "special.closed")


def handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CommandHandler("banks", bank_list),
        CommandHandler("bankalert", bank_alert),
        CallbackQueryHandler(bank_alert_reason, pattern=BankAlertReason.pattern()),
        MessageHandler(text & AtStep(BankAlertStep.NOTE), bank_alert_note),
        CommandHandler("letter", letter),
        MessageHandler(text & AtStep(LetterStep.SENT), letter_sent),
        MessageHandler(text & AtStep(LetterStep.TRACKING), letter_tracking),
        MessageHandler(text & AtStep(LetterStep.SIGNED), letter_signed),
        CallbackQueryHandler(letter_mark, pattern=LetterMark.pattern()),
        CommandHandler("special", special_begin),
        CallbackQueryHandler(special_kind, pattern=SpecialApply.pattern()),
        MessageHandler(text & AtStep(SpecialStep.REASON), special_reason),
        CallbackQueryHandler(special_approve, pattern=SpecialApprove.pattern()),
        CallbackQueryHandler(special_reject, pattern=SpecialReject.pattern()),
        CallbackQueryHandler(special_arranged, pattern=SpecialArranged.pattern()),
        CallbackQueryHandler(special_close, pattern=SpecialClose.pattern()),
        MessageHandler(text & AtStep(SpecialStep.RESULT), special_result),
    ]
