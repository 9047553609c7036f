"""Portfolios and targets: a portfolio's default-rate target, a collector's or a team's recovered-amount target.

Targets are set from the shell (``fieldbot target set``)::

    fieldbot target set --portfolio student_loan --default-rate 5
    fieldbot target set --collector 7 --month 2026-12 --recovered 50000
    fieldbot target set --team A --month 2026-12 --recovered 200000

**Default rate** (违约率) of a portfolio for a month: of the portfolio's cases open at the month's end
(imported before it ended and not closed by then), the share in default, that is more than
:data:`DEFAULT_AFTER_DAYS` days overdue by the bank's latest file (逾期天数 > 90), or with a promise to pay
broken during that month. The monthly report puts it against the portfolio's target (lower is better).

**Recovered** is the monthly report's own figure: the bank's payments in the month on the cases the
collector held on the day of payment (:mod:`bot.services.reports`), against the collector's target for
that month, and the team's sum against the team's target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit
from bot.services.cases import CLOSED_STATUSES
from bot.services.errors import DomainError
from bot.storage.models import Case, Payment, Portfolio, Promise, PromiseStatus, Role, Staff, Target

DEFAULT_AFTER_DAYS = 90
PORTFOLIOS = tuple(p.value for p in Portfolio)
PORTFOLIO_NAMES = {Portfolio.CREDIT_CARD.value: N_("portfolio.credit_card"),
                   Portfolio.STUDENT_LOAN.value: N_("portfolio.student_loan"),
                   Portfolio.RECEIVABLES.value: N_("portfolio.receivables")}
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


def parse_month(text: str) -> str:
    if not _MONTH.match(text.strip()):
        raise DomainError(N_("target.error.month"), value=text)
    return text.strip()


def parse_portfolio(text: str) -> str:
    value = text.strip().lower().replace("-", "_").replace(" ", "_")
    if value not in PORTFOLIOS:
        raise DomainError(N_("target.error.portfolio"), value=text, known=", ".join(PORTFOLIOS))
    return value


def parse_amount(text: str, *, percent: bool = False) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", "").rstrip("%"))
    except InvalidOperation:
        value = Decimal(-1)
    if value < 0 or (percent and value > 100) or not value.is_finite():
        raise DomainError(N_("target.error.amount"), value=text)
    return value


async def _replace(session: AsyncSession, where: list[object], row: Target, *, now: datetime) -> Target:
    existing = await session.scalar(select(Target).where(*where))  # type: ignore[arg-type]
    if existing is not None:
        existing.default_rate_pct, existing.recovered_fen = row.default_rate_pct, row.recovered_fen
        existing.set_at = now
        row = existing
    else:
        session.add(row)
    await session.flush()
    await audit.record(session, action="target.set", object_type="target", object_id=row.id, at=now,
                       details={"portfolio": row.portfolio, "collector": row.collector_id, "team": row.team,
                                "month": row.month, "default_rate_pct": str(row.default_rate_pct)
                                if row.default_rate_pct is not None else None, "recovered_fen": row.recovered_fen})
    return row


async def set_default_rate(session: AsyncSession, portfolio: str, rate_pct: Decimal, *, now: datetime) -> Target:
    """The portfolio's default-rate target, in percent (a standing target, every month)."""
    portfolio = parse_portfolio(portfolio)
    row = Target(portfolio=portfolio, default_rate_pct=rate_pct.quantize(Decimal("0.01")), set_at=now)
    return await _replace(session, [Target.portfolio == portfolio, Target.month.is_(None)], row, now=now)


async def set_recovered(session: AsyncSession, *, month: str, amount_fen: int, collector_id: int | None = None,
                        team: str | None = None, now: datetime) -> Target:
    """A month's recovered-amount target of one collector or one team."""
    month = parse_month(month)
    if (collector_id is None) == (team is None):
        raise DomainError(N_("target.error.whose"))
    if collector_id is not None:
        person = await session.get(Staff, collector_id)
        if person is None or person.role not in (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value):
            raise DomainError(N_("target.error.collector"), value=str(collector_id))
        whose = Target.collector_id == collector_id
    else:
        whose = Target.team == team
    row = Target(collector_id=collector_id, team=team, month=month, recovered_fen=amount_fen, set_at=now)
    return await _replace(session, [whose, Target.month == month], row, now=now)


async def all_targets(session: AsyncSession) -> list[Target]:
    return list(await session.scalars(select(Target).order_by(Target.month, Target.portfolio, Target.team,
                                                              Target.collector_id)))


@dataclass(frozen=True)
class DefaultRate:
    portfolio: str
    cases: int  # open at the month's end
    defaulted: int
    target_pct: Decimal | None

    @property
    def rate_pct(self) -> Decimal:
        if not self.cases:
            return Decimal("0.0")
        return (Decimal(self.defaulted) * 100 / self.cases).quantize(Decimal("0.1"))

    @property
    def within_target(self) -> bool | None:
        return None if self.target_pct is None else self.rate_pct <= self.target_pct


async def default_rate(session: AsyncSession, portfolio: str, *, start: datetime, end: datetime,
                       team: str | frozenset[str] | None = None) -> DefaultRate:
    """The portfolio's default rate for the month [start, end) (see the module's definition), of one team or all."""
    open_at_end = [Case.portfolio == portfolio, Case.created_at < end,
                   or_(Case.status.not_in(CLOSED_STATUSES),
                       and_(Case.status_changed_at.is_not(None), Case.status_changed_at >= end))]
    if team is not None:
        open_at_end.append(Case.team.in_([team] if isinstance(team, str) else team))
    broken = select(Promise.case_id).where(Promise.status == PromiseStatus.BROKEN.value,
                                           Promise.resolved_at >= start, Promise.resolved_at < end)
    cases = int(await session.scalar(select(func.count()).select_from(Case).where(*open_at_end)) or 0)
    defaulted = int(await session.scalar(select(func.count()).select_from(Case).where(
        *open_at_end, or_(Case.overdue_days > DEFAULT_AFTER_DAYS, Case.id.in_(broken)))) or 0)
    target = await session.scalar(select(Target.default_rate_pct).where(Target.portfolio == portfolio,
                                                                        Target.month.is_(None)))
    return DefaultRate(portfolio, cases, defaulted, target)


async def rate_targets(session: AsyncSession) -> list[str]:
    """The portfolios with a default-rate target, in the order of :class:`Portfolio`."""
    having = set(await session.scalars(select(Target.portfolio).where(Target.portfolio.is_not(None),
                                                                      Target.month.is_(None))))
    return [p for p in PORTFOLIOS if p in having]


async def recovered_targets(session: AsyncSession, month: str) -> tuple[dict[int, int], dict[str, int]]:
    """The month's recovered-amount targets: by collector id, and by team."""
    by_collector: dict[int, int] = {}
    by_team: dict[str, int] = {}
    for row in await session.scalars(select(Target).where(Target.month == month, Target.recovered_fen.is_not(None))):
        assert row.recovered_fen is not None
        if row.collector_id is not None:
            by_collector[row.collector_id] = row.recovered_fen
        elif row.team is not None:
            by_team[row.team] = row.recovered_fen
    return by_collector, by_team


@dataclass(frozen=True)
class TeamProgress:
    """The month so far, for /team: the team's recovered amount against its target, the default rates."""

    month: str
    recovered_fen: int  # the bank's payments this month on the cases the team holds
    target_fen: int | None
    rates: list[DefaultRate]


async def team_progress(session: AsyncSession, team: str | frozenset[str] | None, *, now: datetime,
                        tz: ZoneInfo) -> TeamProgress | None:
    """This month's progress of ``team`` (some teams: a set of them; every team: None); None when no target
    concerns it."""
    today = now.astimezone(tz).date()
    month = month_of(today)
    _, by_team = await recovered_targets(session, month)
    wanted = {n: fen for n, fen in by_team.items() if team is None or n == team or (not isinstance(team, str)
                                                                                   and n in team)}
    target = by_team.get(team) if isinstance(team, str) else (sum(wanted.values()) if wanted else None)
    portfolios = await rate_targets(session)
    if target is None and not portfolios:
        return None
    first = today.replace(day=1)
    start = datetime.combine(first, time(0), tz)
    paid = select(func.coalesce(func.sum(Payment.amount_fen), 0)).join(Case, Case.id == Payment.case_id).where(
        Payment.paid_on >= first, Payment.paid_on <= today)
    if team is not None:
        paid = paid.where(Case.team.in_([team] if isinstance(team, str) else team))
    recovered = int(await session.scalar(paid) or 0)
    rates = [await default_rate(session, p, start=start, end=now, team=team) for p in portfolios]
    return TeamProgress(month, recovered, target, rates)
