"""/team: the team's day for its supervisor (and team lead; every team for the admin office).

Who checked in today and where, visits filed today, due later today and overdue, the reports waiting
for review (with the review buttons, for those who review) and the open alarms. The counting is in
bot/services/team_view.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import refuse, serves, show
from bot.i18n import all_translations
from bot.services import case_desk, targets, team_view
from bot.services.errors import DomainError
from bot.services.policy import Action

LISTED = 30  # check-ins and alarms listed by name (the counts cover everyone)


@serves(Action.TEAM_VIEW)
async def team(update: Update, context: FieldbotContext) -> None:
    runtime, t = context.runtime, context.t
    now = runtime.clock.now()
    try:
        async with runtime.db.read() as session:
            day = await team_view.team_day(session, context.staff, now=now, calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="team.view")
        return
    tz = runtime.tz
    head = [
        t("team.head", team=day.team or t("team.every_team"), date=t.date(runtime.calendar.working_date(now))),
        t("team.counts", done=day.done_today, due=day.due_today, overdue=day.overdue),
        t("team.checked_in", count=len(day.checked_in), total=day.collectors),
    ]
    if day.progress is not None:  # this month against the targets
        head.append(t("team.target", amount=t.money(Decimal(day.progress.recovered_fen) / 100),
                      target=t.money(Decimal(day.progress.target_fen) / 100) if day.progress.target_fen else "-"))
        head += [t("team.default_rate", portfolio=t(targets.PORTFOLIO_NAMES[r.portfolio]), rate=f"{r.rate_pct}%",
                   target=f"{r.target_pct.normalize():f}%" if r.target_pct is not None else "-")
                 for r in day.progress.rates]
    lines = [t("team.checkin_line", name=c.name, time=t.datetime(c.at, tz), case_no=c.case_no)
             for c in day.checked_in[:LISTED]]
    late = sum(w.late for w in day.waiting)
    lines.append(t("team.waiting", count=len(day.waiting), late=late))
    lines += [team_view.waiting_line(t, w, tz) for w in day.waiting[:team_view.SHOWN]]
    if len(day.waiting) > team_view.SHOWN:
        lines.append(t("team.more", count=len(day.waiting) - team_view.SHOWN))
    lines.append(t("team.alarms", count=len(day.alarms)))
    lines += [t("team.alarm_line", name=a.name, reason=a.reason, status=a.status, since=t.datetime(a.raised_at, tz))
              for a in day.alarms[:LISTED]]
    if day.letters_expired:  # a registered letter's term ended: the case waits for the supervisor's next step
        lines.append(t("team.letters_expired", count=len(day.letters_expired)))
        lines += [t("team.letter_line", case_no=case_no, end=t.date(end)) for case_no, end in
                  day.letters_expired[:LISTED]]
    markup = None
    if day.may_review and day.waiting:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                       for row in team_view.review_buttons(t, day.waiting)])
    # the newest lines are kept if the day is too long for one message (the counts always stay)
    await show(update, context, case_desk.fit(head, lines, lambda n: t("desk.hidden", count=n)), markup)


def handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    return [
        CommandHandler("team", team),
        MessageHandler(filters.Text(all_translations("menu.team")), team),
    ]
