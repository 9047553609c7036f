"""A branch report's approval by a manager of its branch and by head office: approve, or return with a comment;
/reports lists the branch reports waiting for the person's approval."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import BranchReportApprove, BranchReportReturn
from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, pressed, refuse, serves, write_once
from bot.handlers.routing import AtStep
from bot.services import branch_reports, flows
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import BranchReportStep


@serves(Action.BRANCH_REPORT_DECIDE)
@ignore_replays
async def approve(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None and update.effective_chat is not None
    try:
        async with write_once(update, context) as session:
            report_id = pressed(update, BranchReportApprove).report_id
            report = await branch_reports.approve(session, context.staff, report_id, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="branch_report.decide")
        return
    await query.answer()
    await drop_buttons(update, context)
    key = "branch_report.approved_done" if report.status == branch_reports.APPROVED else "branch_report.approval_noted"
    await context.bot.send_message(update.effective_chat.id, context.t(key, team=report.team,
                                                                       month=f"{report.period_start:%Y-%m}"))


@serves(Action.BRANCH_REPORT_DECIDE)
@ignore_replays
async def ask_comment(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None and update.effective_chat is not None
    try:
        async with write_once(update, context) as session:
            await branch_reports.start_return(session, context.staff, pressed(update, BranchReportReturn).report_id,
                                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="branch_report.decide")
        return
    await query.answer()
    await context.bot.send_message(update.effective_chat.id, context.t("branch_report.ask_comment"))


@serves(Action.BRANCH_REPORT_DECIDE)
@ignore_replays
async def comment_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    flow = context.flow
    assert message is not None and message.text is not None and context.staff is not None and flow is not None
    comment = message.text.strip()[:1000]
    if not comment:
        await context.bot.send_message(message.chat.id, context.t("branch_report.ask_comment"))
        return
    try:
        async with write_once(update, context) as session:
            await flows.clear(session, context.staff.id, BranchReportStep.FLOW)
            report = await branch_reports.return_report(session, context.staff, int(flow.data["report_id"]), comment,
                                                        now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="branch_report.decide")
        return
    await context.bot.send_message(message.chat.id, context.t("branch_report.returned_done", team=report.team,
                                                              month=f"{report.period_start:%Y-%m}"))


@serves(Action.BRANCH_REPORT_DECIDE)
async def waiting(update: Update, context: FieldbotContext) -> None:
    """/reports: the branch reports waiting for this person's approval, each with its buttons."""
    chat = update.effective_chat
    assert chat is not None and context.staff is not None
    t = context.t
    try:
        async with context.runtime.db.read() as session:
            found = await branch_reports.waiting_for(session, context.staff)
    except DomainError as error:
        await refuse(update, context, error, what="branch_report.list")
        return
    if not found:
        await context.bot.send_message(chat.id, t("branch_report.none_waiting"))
        return
    for report in found:
        rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                for row in branch_reports.buttons_for(t, report)]
        await context.bot.send_message(chat.id, t("branch_report.waiting_line", team=report.team,
                                                  branch=report.branch or "-", month=f"{report.period_start:%Y-%m}"),
                                       reply_markup=InlineKeyboardMarkup(rows))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("reports", waiting),
        CallbackQueryHandler(approve, pattern=BranchReportApprove.pattern()),
        CallbackQueryHandler(ask_comment, pattern=BranchReportReturn.pattern()),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(BranchReportStep.COMMENT), comment_typed),
    ]
