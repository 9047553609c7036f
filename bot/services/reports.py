"""Weekly and monthly progress reports: per collector and per team, as text, a PNG chart and an XLSX.

The SOP asks for weekly progress reports and monthly full reports from every collector, and the
supervisor's monthly team report. Scheduled ones go out at the start of work on Monday (last week)
and on the 1st (last month); a ``report_runs`` row per period makes each go out exactly once. A
supervisor's monthly team report is also submitted for approval to the branch's manager(s) and head
office (:mod:`bot.services.branch_reports`). Who
gets what: a collector their own figures; a supervisor and a team lead their team's report (text,
chart, XLSX); an admin the report of every team, with the amount recovered per team.

"Recovered" is what the bank's repayment files say was paid in the period, counted for the
collector who held the case on the day it was paid. A monthly report also puts each collector's (and
team's) recovered amount against the month's target, and each portfolio with a default-rate target
against it (:mod:`bot.services.targets` defines the default rate). The chart draws names and the legend in the
reader's language with a CJK font shipped by the ``mplfonts`` package (Noto Sans CJK SC).
"""

from __future__ import annotations

import functools
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import DEFAULT_LOCALE, N_, Translator, translator
from bot.services import branch_reports, dispositions, outbox, policy, targets
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.errors import Forbidden
from bot.services.incidents import Figures, response_figures
from bot.services.people import t_for
from bot.storage.media import MediaStore
from bot.storage.models import (
    Assignment,
    Case,
    ExtensionRequest,
    ExtensionStatus,
    Payment,
    Promise,
    PromiseStatus,
    ReportRun,
    Role,
    Staff,
    Visit,
    VisitStatus,
)

WEEKLY, MONTHLY = "weekly", "monthly"
FIELD_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)
COUNTED_VISITS = (VisitStatus.FILED.value, VisitStatus.APPROVED.value, VisitStatus.RETURNED.value)


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # exclusive

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


def last_period(kind: str, today: date) -> Period:
    """The last complete week (Monday to Sunday) or calendar month before ``today``."""
    if kind == WEEKLY:
        this_monday = today - timedelta(days=today.weekday())
        return Period(WEEKLY, this_monday - timedelta(days=7), this_monday)
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return Period(MONTHLY, previous, first)


def due_at(kind: str, today: date, calendar: WorkCalendar) -> datetime:
    """When the report of the last period is due: Monday (or the 1st) at the start of work."""
    day = today - timedelta(days=today.weekday()) if kind == WEEKLY else today.replace(day=1)
    return datetime.combine(day, calendar.work_start, calendar.tz)


@dataclass
class CollectorStats:
    staff_id: int
    name: str
    visits: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    promises_made: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    promised_fen: int = 0
    paid_fen: int = 0
    overdue: int = 0
    extensions: int = 0
    extensions_approved: int = 0
    recovered_fen: int = 0  # the bank's payments in the period on the cases this collector held
    promises_partly: int = 0
    team: str | None = None

    def add(self, other: CollectorStats) -> None:
        for name in ("visits", "promises_made", "promises_kept", "promises_broken", "promised_fen", "paid_fen",
                     "overdue", "extensions", "extensions_approved", "recovered_fen", "promises_partly"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_code.update(other.by_code)


@dataclass
class Report:
    period: Period
    team: str | None
    rows: list[CollectorStats]
    visits: list[tuple[str, str, str, datetime, str, int | None]]  # collector, bank, case_no, filed, code, amount
    alarms: Figures | None = None  # SOS response times, in monthly team reports
    # monthly: the portfolios' default rates against their targets; recovered-amount targets by collector and team
    rates: list[targets.DefaultRate] = field(default_factory=list)
    recovered_targets: dict[int, int] = field(default_factory=dict)
    team_targets: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> CollectorStats:
        total = CollectorStats(0, "")
        for row in self.rows:
            total.add(row)
        return total


async def build(session: AsyncSession, period: Period, *, calendar: WorkCalendar,
                team: str | frozenset[str] | None = None, staff_ids: Sequence[int] | None = None) -> Report:
    """Count what each collector (of ``team`` or of a set of teams, or the given ones) did in ``period``."""
    teams = None if team is None else frozenset({team}) if isinstance(team, str) else team
    tz = calendar.tz
    start = datetime.combine(period.start, datetime.min.time(), tz)
    end = datetime.combine(period.end, datetime.min.time(), tz)
    query = select(Staff).where(Staff.role.in_(FIELD_ROLES)).order_by(Staff.name, Staff.id)
    if teams is not None:
        query = query.where(Staff.team.in_(teams))
    if staff_ids is not None:
        query = query.where(Staff.id.in_(staff_ids))
    people = list(await session.scalars(query))
    stats = {p.id: CollectorStats(p.id, p.name, team=p.team) for p in people}
    ids = list(stats)
    visit_rows = (await session.execute(
        select(Visit, Case.bank, Case.case_no).join(Case, Case.id == Visit.case_id)
        .where(Visit.collector_id.in_(ids), Visit.status.in_(COUNTED_VISITS), Visit.filed_at >= start,
               Visit.filed_at < end).order_by(Visit.filed_at))).all()
    details = []
    for visit, bank, case_no in visit_rows:
        row = stats[visit.collector_id]
        row.visits += 1
        row.by_code[visit.code or "-"] += 1
        if visit.code in ("PAID", "PART") and visit.amount_fen:
            row.paid_fen += visit.amount_fen
        assert visit.filed_at is not None
        details.append((row.name, bank, case_no, visit.filed_at, visit.code or "-", visit.amount_fen))
    for promise in await session.scalars(select(Promise).where(Promise.collector_id.in_(ids))):
        row = stats[promise.collector_id]
        if start <= promise.created_at < end:
            row.promises_made += 1
            row.promised_fen += promise.amount_fen
        if promise.resolved_at is not None and start <= promise.resolved_at < end:
            row.promises_kept += promise.status == PromiseStatus.KEPT.value
            row.promises_broken += promise.status == PromiseStatus.BROKEN.value
            row.promises_partly += promise.status == PromiseStatus.PARTLY_KEPT.value
    await _recovered(session, stats, period, tz)
    for staff_id, count in (await session.execute(
            select(Assignment.staff_id, func.count()).join(Case, Case.id == Assignment.case_id)
            .where(Assignment.ended_at.is_(None), Assignment.staff_id.in_(ids), Case.visit_overdue_at >= start,
                   Case.visit_overdue_at < end).group_by(Assignment.staff_id))).all():
        stats[staff_id].overdue = int(count)
    for request in await session.scalars(select(ExtensionRequest).where(
            ExtensionRequest.collector_id.in_(ids), ExtensionRequest.created_at >= start,
            ExtensionRequest.created_at < end)):
        stats[request.collector_id].extensions += 1
        stats[request.collector_id].extensions_approved += request.status == ExtensionStatus.APPROVED.value
    label = team if isinstance(team, str) else ", ".join(sorted(team)) if team is not None else None
    report = Report(period, label, list(stats.values()), details)
    if period.kind == MONTHLY:
        month = targets.month_of(period.start)
        report.recovered_targets, team_targets = await targets.recovered_targets(session, month)
        if staff_ids is None:
            report.team_targets = {name: fen for name, fen in team_targets.items() if teams is None or name in teams}
    if period.kind == MONTHLY and staff_ids is None:
        report.alarms = await response_figures(session, start, end, team=team)
        report.rates = [await targets.default_rate(session, portfolio, start=start, end=end, team=team)
                        for portfolio in await targets.rate_targets(session)]
    return report


async def _recovered(session: AsyncSession, stats: dict[int, CollectorStats], period: Period, tz: ZoneInfo) -> None:
    """Add the period's bank payments to the collector who held each case on the day it was paid."""
    paid = (await session.execute(select(Payment.case_id, Payment.paid_on, Payment.amount_fen).where(
        Payment.paid_on >= period.start, Payment.paid_on < period.end))).tuples().all()
    if not paid:
        return
    spans: dict[int, list[tuple[date, date | None, int]]] = {}
    for case_id, staff_id, assigned_at, ended_at in (await session.execute(
            select(Assignment.case_id, Assignment.staff_id, Assignment.assigned_at, Assignment.ended_at)
            .where(Assignment.case_id.in_({case_id for case_id, _, _ in paid}))
            .order_by(Assignment.assigned_at, Assignment.id))).tuples():
        spans.setdefault(case_id, []).append((assigned_at.astimezone(tz).date(), ended_at.astimezone(tz).date()
                                              if ended_at else None, staff_id))
    for case_id, paid_on, amount in paid:
        holder = None
        for since, until, staff_id in spans.get(case_id, []):
            if since <= paid_on and (until is None or until >= paid_on):
                holder = staff_id  # the latest assignment covering that day
        if holder is None and spans.get(case_id):
            holder = spans[case_id][-1][2]
        if holder in stats:
            stats[holder].recovered_fen += amount


@dataclass(frozen=True)
class Scope:
    """Whose figures a person's /report shows: their own, one team's, a branch's teams (``teams``), or (team
    and teams None) every team's."""

    personal: bool
    team: str | None
    teams: frozenset[str] | None = None


def scope_for(viewer: StaffView) -> Scope:
    """The widest report the policy lets ``viewer`` see (``REPORT_VIEW``: ANY, else TEAM or BRANCH, else SELF)."""
    reach = policy.RULES[policy.Action.REPORT_VIEW].get(viewer.role, frozenset())
    if policy.Reach.ANY in reach:
        return Scope(personal=False, team=None)
    if policy.Reach.TEAM in reach and viewer.team is not None:
        return Scope(personal=False, team=viewer.team)
    if policy.Reach.BRANCH in reach and viewer.branch_teams:
        return Scope(personal=False, team=viewer.branch, teams=viewer.branch_teams)
    if policy.Reach.SELF in reach:
        return Scope(personal=True, team=viewer.team)
    raise Forbidden(subject=("staff", viewer.id))


async def build_for(session: AsyncSession, viewer: StaffView, period: Period, *,
                    calendar: WorkCalendar) -> tuple[Report, Scope]:
    """The report ``viewer`` asked for with /report, as far as the policy lets them see."""
    scope = scope_for(viewer)
    staff_ids = [viewer.id] if scope.personal else None
    team = scope.teams if scope.teams is not None else scope.team
    return await build(session, period, calendar=calendar, team=team, staff_ids=staff_ids), scope


def _money(t: Translator, fen: int) -> str:
    return t.money(Decimal(fen) / 100)


def _codes(t: Translator, by_code: Counter[str]) -> str:
    return ", ".join(f"{t(f'code.{code}')} {n}" for code, n in sorted(by_code.items())) or "-"


def collector_line(t: Translator, row: CollectorStats) -> str:
    line = t(N_("report.line"), name=row.name, visits=row.visits, codes=_codes(t, row.by_code),
             made=row.promises_made, kept=row.promises_kept, broken=row.promises_broken,
             promised=_money(t, row.promised_fen), paid=_money(t, row.paid_fen), overdue=row.overdue,
             extensions=row.extensions, approved=row.extensions_approved)
    if row.recovered_fen or row.promises_partly:
        line += t(N_("report.recovered"), amount=_money(t, row.recovered_fen), partly=row.promises_partly)
    return line


def _against(t: Translator, name: str, recovered_fen: int, target_fen: int) -> str:
    share = f"{recovered_fen * 100 / target_fen:.0f}%" if target_fen else "-"
    return t(N_("report.target_line"), name=name, amount=_money(t, recovered_fen), target=_money(t, target_fen),
             share=share)


def target_lines(t: Translator, report: Report) -> list[str]:
    """A monthly report's progress: recovered against each target, the portfolios' default rates against theirs."""
    lines = [_against(t, row.name, row.recovered_fen, report.recovered_targets[row.staff_id])
             for row in report.rows if row.staff_id in report.recovered_targets]
    sums: dict[str, int] = {}
    for row in report.rows:
        sums[row.team or "-"] = sums.get(row.team or "-", 0) + row.recovered_fen
    lines += [_against(t, t(N_("report.team_name"), team=name), sums.get(name, 0), fen)
              for name, fen in sorted(report.team_targets.items())]
    for rate in report.rates:
        mark = "✅" if rate.within_target else "⚠️"
        lines.append(t(N_("report.default_rate"), mark=mark, portfolio=t(targets.PORTFOLIO_NAMES[rate.portfolio]),
                       rate=f"{rate.rate_pct}%", defaulted=rate.defaulted, cases=rate.cases,
                       target=f"{rate.target_pct.normalize():f}%" if rate.target_pct is not None else "-"))
    return lines


def team_lines(t: Translator, report: Report) -> list[str]:
    """Per team (in an all-teams report): visits and the amount recovered from the bank's files."""
    teams: dict[str, CollectorStats] = {}
    for row in report.rows:
        teams.setdefault(row.team or "-", CollectorStats(0, row.team or "-")).add(row)
    return [t(N_("report.team_line"), team=name, visits=row.visits, amount=_money(t, row.recovered_fen))
            for name, row in sorted(teams.items())]


def _seconds(figures: tuple[float, float, float] | None) -> str:
    return " / ".join(f"{v:.0f}s" for v in figures) if figures else "-"


def alarm_line(t: Translator, figures: Figures) -> str:
    """The month's SOS figures: delivery and acknowledgement times (median / 80th / 98.5th percentile)."""
    return t(N_("report.alarms"), count=figures.count, delivery=_seconds(figures.delivery),
             ack=_seconds(figures.acknowledgement))


def report_text(t: Translator, report: Report, *, personal: bool = False) -> str:
    title = N_("report.title_weekly") if report.period.kind == WEEKLY else N_("report.title_monthly")
    lines = [t(title, start=t.date(report.period.start), end=t.date(report.period.last_day),
               team=report.team or t("report.all_teams"))]
    lines += [collector_line(t, row) for row in report.rows]
    if not personal:
        total = report.total
        total.name = t("report.total_row")
        lines.append(collector_line(t, total))
        if report.team is None and report.rows:
            lines += team_lines(t, report)
    if report.alarms is not None:
        lines.append(alarm_line(t, report.alarms))
    lines += target_lines(t, report)
    return "\n".join(lines)


CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"


@functools.cache
def cjk_font() -> str | None:
    """The family name of the CJK font shipped by ``mplfonts``, registered with matplotlib (None without it)."""
    try:
        from importlib.resources import files

        path = files("mplfonts") / "fonts" / CJK_FONT_FILE
        if not path.is_file():
            return None
        from matplotlib import font_manager

        font_manager.fontManager.addfont(str(path))
        return str(font_manager.FontProperties(fname=str(path)).get_name())
    except (ImportError, OSError, RuntimeError):
        return None


def chart_labels(report: Report, t: Translator) -> tuple[list[str], dict[str, str]]:
    """What the chart writes: one label per collector, and the legend (result code → its name in ``t``'s
    language). Names are written as they are (the CJK font draws them); only without that font are
    names that need it written as ``#id``."""
    readable = cjk_font() is not None
    labels = [r.name if readable or r.name.isascii() else f"#{r.staff_id}" for r in report.rows] or ["-"]
    codes = [c for c in dispositions.DISPOSITIONS if any(r.by_code.get(c) for r in report.rows)]
    return labels, {code: t(f"code.{code}") for code in codes}


def chart_png(report: Report, t: Translator | None = None) -> bytes:
    """Visits per collector, stacked by result code, in the reader's language (default: the office's)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if t is None:
        t = translator(DEFAULT_LOCALE)
    labels, legend = chart_labels(report, t)
    family = cjk_font()
    style: dict[str, Any] = {"font.family": [family, "DejaVu Sans"]} if family else {}
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.8 * len(labels)), 4), dpi=100)
        try:
            positions = list(range(len(labels)))
            bottom = [0] * len(report.rows)
            for code, name in legend.items():
                values = [r.by_code.get(code, 0) for r in report.rows]
                ax.bar(positions[:len(values)], values, bottom=bottom, label=name)
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            if not legend:
                ax.bar(positions, [0] * len(labels))
            ax.set_xticks(positions, labels)
            ax.set_ylabel(t(N_("report.chart_visits")))
            ax.set_title(t(N_("report.chart_title"), team=report.team or t("report.all_teams"),
                           start=t.date(report.period.start), end=t.date(report.period.last_day)))
            if legend:
                ax.legend(fontsize=7, ncols=2)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()
        finally:
            plt.close(fig)


def xlsx_bytes(t: Translator, report: Report, tz: ZoneInfo) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = t("report.sheet_summary")[:31]
    headers = [t(k) for k in (N_("report.col.collector"), N_("report.col.visits"), N_("report.col.promises_made"),
                              N_("report.col.promises_kept"), N_("report.col.promises_broken"),
                              N_("report.col.promised"), N_("report.col.paid"), N_("report.col.overdue"),
                              N_("report.col.extensions"), N_("report.col.extensions_approved"))]
    extra = [t(N_("report.col.recovered")), t(N_("report.col.team"))]
    codes = list(dispositions.DISPOSITIONS)
    sheet.append(headers + [t(f"code.{c}") for c in codes] + extra)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in [*report.rows, report.total]:
        sheet.append([row.name or t("report.total_row"), row.visits, row.promises_made, row.promises_kept,
                      row.promises_broken, row.promised_fen / 100, row.paid_fen / 100, row.overdue,
                      row.extensions, row.extensions_approved] + [row.by_code.get(c, 0) for c in codes]
                     + [row.recovered_fen / 100, row.team or ""])
    detail = book.create_sheet(t("report.sheet_visits")[:31])
    detail.append([t(N_("report.col.collector")), t(N_("report.col.bank")), t(N_("report.col.case")),
                   t(N_("report.col.filed")), t(N_("report.col.code")), t(N_("report.col.amount"))])
    for name, bank, case_no, filed, code, amount in report.visits:
        detail.append([name, bank, case_no, filed.astimezone(tz).replace(tzinfo=None), t(f"code.{code}"),
                       amount / 100 if amount else None])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def send_due(session: AsyncSession, *, now: datetime, calendar: WorkCalendar, media: MediaStore) -> list[Period]:
    """Queue the weekly and monthly reports whose time has come and that have not gone out yet."""
    today = calendar.working_date(now)
    sent: list[Period] = []
    first_staff = await session.scalar(select(func.min(Staff.created_at)))
    for kind in (WEEKLY, MONTHLY):
        period = last_period(kind, today)
        if now < due_at(kind, today, calendar) or first_staff is None:
            continue
        if calendar.local(first_staff).date() >= period.end:
            continue  # nobody worked here during that period
        if await session.scalar(select(ReportRun.id).where(ReportRun.kind == kind,
                                                           ReportRun.period_start == period.start)):
            continue
        try:
            async with session.begin_nested():
                session.add(ReportRun(kind=kind, period_start=period.start, period_end=period.end, created_at=now))
        except IntegrityError:
            continue  # another process got there first
        staff = list(await session.scalars(select(Staff).where(Staff.active.is_(True),
                                                               Staff.telegram_user_id.is_not(None))))
        for person in staff:
            t = t_for(person)
            assert person.telegram_user_id is not None
            if person.role in FIELD_ROLES:
                report = await build(session, period, calendar=calendar, staff_ids=[person.id], team=person.team)
                await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=f"report.{kind}", now=now,
                                     priority=outbox.Priority.BULK, text=report_text(t, report, personal=True),
                                     dedupe_key=f"report:{kind}:{period.start}:{person.id}")
            elif person.role in (Role.SUPERVISOR.value, Role.TEAM_LEAD.value):
                await queue_team_report(session, person, period, now=now, calendar=calendar, media=media)
                if kind == MONTHLY and person.role == Role.SUPERVISOR.value and person.team is not None:
                    # the supervisor's monthly team report goes to the branch's manager(s) and head office
                    team_report = await build(session, period, calendar=calendar, team=person.team)
                    await branch_reports.submit(session, person, period.start, now=now,
                                                render=functools.partial(report_text, report=team_report))
            elif person.role == Role.ADMIN.value:
                await queue_team_report(session, person, period, now=now, calendar=calendar, media=media,
                                        all_teams=True)
        sent.append(period)
    return sent


async def queue_team_report(session: AsyncSession, supervisor: Staff, period: Period, *, now: datetime,
                            calendar: WorkCalendar, media: MediaStore, all_teams: bool = False) -> None:
    """The team's report to its supervisor or team lead (every team's to an admin): the text, the chart as a
    photo, the XLSX as a document, in the reader's language."""
    t = t_for(supervisor)
    assert supervisor.telegram_user_id is not None
    team = None if all_teams else supervisor.team
    report = await build(session, period, calendar=calendar, team=team)
    png = await media.put(chart_png(report, t), kind="reports", suffix=".png")
    workbook = await media.put(xlsx_bytes(t, report, calendar.tz), kind="reports", suffix=".xlsx")
    stem = f"{period.kind}-{team or 'all'}-{period.start:%Y%m%d}"
    key = f"report:{period.kind}:{period.start}:{supervisor.id}"
    await outbox.enqueue(session, chat_id=supervisor.telegram_user_id, kind=f"report.{period.kind}", now=now,
                         priority=outbox.Priority.BULK, text=report_text(t, report), dedupe_key=key)
    await outbox.enqueue(session, chat_id=supervisor.telegram_user_id, kind=f"report.{period.kind}", now=now,
                         priority=outbox.Priority.BULK, text=t("report.chart_caption"), dedupe_key=f"{key}:png",
                         attachment=outbox.Attachment(png.path, f"{stem}.png", as_photo=True))
    await outbox.enqueue(session, chat_id=supervisor.telegram_user_id, kind=f"report.{period.kind}", now=now,
                         priority=outbox.Priority.BULK, text=t("report.xlsx_caption"), dedupe_key=f"{key}:xlsx",
                         attachment=outbox.Attachment(workbook.path, f"{stem}.xlsx"))


async def claim_daily(session: AsyncSession, kind: str, day: date, now: datetime) -> bool:
    """True once per ``kind`` and day, across restarts and processes (a row in ``report_runs``)."""
    if await session.scalar(select(ReportRun.id).where(ReportRun.kind == kind, ReportRun.period_start == day)):
        return False
    try:
        async with session.begin_nested():
            session.add(ReportRun(kind=kind, period_start=day, period_end=day + timedelta(days=1), created_at=now))
    except IntegrityError:
        return False
    return True
