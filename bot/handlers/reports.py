"""/report week|month: a collector's own summary, or a supervisor's team report with its chart and XLSX.

/reconcile BANK [YYYY-MM]: an admin's monthly reconciliation with one bank, as XLSX (default: last month).
"""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import refuse, serves
from bot.i18n import all_translations
from bot.services import reconciliation, reports
from bot.services.errors import DomainError
from bot.services.policy import Action


@serves(Action.REPORT_VIEW)
async def report(update: Update, context: FieldbotContext) -> None:
    staff, runtime, t = context.staff, context.runtime, context.t
    chat = update.effective_chat
    assert staff is not None and chat is not None
    words = context.args or []
    kind = reports.MONTHLY if words and words[0].lower() in ("month", "monthly", "月", "月报") else reports.WEEKLY
    period = reports.last_period(kind, runtime.calendar.working_date(runtime.clock.now()))
    try:
        async with runtime.db.read() as session:
            built, scope = await reports.build_for(session, staff, period, calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="report.view")
        return
    if scope.personal:
        await context.bot.send_message(chat.id, reports.report_text(t, built, personal=True))
        return
    team = scope.team
    stem = f"{kind}-{team or 'all'}-{period.start:%Y%m%d}"
    await context.bot.send_message(chat.id, reports.report_text(t, built), protect_content=True)
    await context.bot.send_photo(chat.id, InputFile(reports.chart_png(built, t), filename=f"{stem}.png"),
                                 caption=t("report.chart_caption"), protect_content=True)
    await context.bot.send_document(chat.id, InputFile(reports.xlsx_bytes(t, built, runtime.tz),
                                                       filename=f"{stem}.xlsx"),
                                    caption=t("report.xlsx_caption"), protect_content=True)


@serves(Action.CASE_IMPORT)
async def reconcile(update: Update, context: FieldbotContext) -> None:
    """``/reconcile 招商银行 2026-11``: the month's cases, visits, promises and payments of one bank."""
    staff, runtime, t = context.staff, context.runtime, context.t
    chat = update.effective_chat
    assert staff is not None and chat is not None
    words = list(context.args or [])
    month_word = words.pop() if words and reconciliation.looks_like_month(words[-1]) else None
    bank = " ".join(words).strip()
    try:
        if month_word is not None:
            month = reconciliation.parse_month(month_word)
        else:
            today = runtime.calendar.working_date(runtime.clock.now())
            month = reports.last_period(reports.MONTHLY, today).start
    except reconciliation.BadMonth:
        bank = ""
    try:
        async with runtime.db.read() as session:
            if not bank:
                known = await reconciliation.banks_for(session, staff)
                await context.bot.send_message(chat.id, t("recon.how", banks=", ".join(known) or "-"))
                return
            built = await reconciliation.build_for(session, staff, bank, month, tz=runtime.tz)
    except DomainError as error:
        await refuse(update, context, error, what="reconcile")
        return
    await context.bot.send_document(
        chat.id, InputFile(reconciliation.xlsx_bytes(t, built, runtime.tz),
                           filename=f"reconciliation-{month:%Y-%m}.xlsx"),
        caption=reconciliation.summary_text(t, built), protect_content=True)


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("report", report),
        CommandHandler("reconcile", reconcile),
        MessageHandler(filters.Text(all_translations("menu.report")), report),
    ]
