"""The monthly reconciliation with a bank (SOP): its cases, the month's visits, promises and payments, as XLSX.

:func:`build` reads one bank and one calendar month; :func:`xlsx_bytes` writes four sheets, each
ending in a totals row (cases: amount due, paid in the month, paid in all; visits: how many;
promises: promised and paid; payments: the month's sum). The figures are the database's, so the
bank's own statement can be laid next to them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, Translator
from bot.services import policy
from bot.services.actor import StaffView
from bot.storage.models import Assignment, Case, Payment, Promise, Staff, Visit, VisitStatus

COUNTED_VISITS = (VisitStatus.FILED.value, VisitStatus.APPROVED.value, VisitStatus.RETURNED.value)
STATUS_NAMES = (N_("recon.status.new"), N_("recon.status.assigned"), N_("recon.status.visited"),
                N_("recon.status.promised"), N_("recon.status.paid"), N_("recon.status.disputed"),
                N_("recon.status.on_hold"), N_("recon.status.closed"), N_("promise.partial"))


class BadMonth(ValueError):
    """``--month`` is not YYYY-MM."""


def parse_month(text: str) -> date:
    """``2026-11`` → 1 November 2026."""
    try:
        year, month = (int(part) for part in text.strip().split("-"))
        return date(year, month, 1)
    except (ValueError, TypeError):
        raise BadMonth(text) from None


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


@dataclass(frozen=True)
class CaseLine:
    case_no: str
    debtor_name: str
    status: str
    status_reason: str | None
    collector: str | None
    amount_due_fen: int
    paid_month_fen: int
    paid_total_fen: int


@dataclass(frozen=True)
class VisitLine:
    filed_at: datetime
    collector: str
    case_no: str
    code: str
    amount_fen: int | None


@dataclass(frozen=True)
class PromiseLine:
    case_no: str
    collector: str
    amount_fen: int
    created_at: datetime
    due_on: date
    status: str
    paid_fen: int


@dataclass(frozen=True)
class PaymentLine:
    case_no: str
    paid_on: date
    amount_fen: int
    channel: str | None
    reference: str | None


@dataclass
class Reconciliation:
    bank: str
    month: date
    cases: list[CaseLine] = field(default_factory=list)
    visits: list[VisitLine] = field(default_factory=list)
    promises: list[PromiseLine] = field(default_factory=list)
    payments: list[PaymentLine] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "cases": len(self.cases),
            "amount_due_fen": sum(c.amount_due_fen for c in self.cases),
            "paid_month_fen": sum(c.paid_month_fen for c in self.cases),
            "paid_total_fen": sum(c.paid_total_fen for c in self.cases),
            "visits": len(self.visits),
            "promises": len(self.promises),
            "promised_fen": sum(p.amount_fen for p in self.promises),
            "promise_paid_fen": sum(p.paid_fen for p in self.promises),
            "payments": len(self.payments),
            "payments_fen": sum(p.amount_fen for p in self.payments),
        }


async def build(session: AsyncSession, bank: str, month: date, *, tz: ZoneInfo) -> Reconciliation:
    """The bank's cases entrusted before the month ended (and later ones with something in the month), and
    what happened on them in the month."""
    first, end = month.replace(day=1), next_month(month.replace(day=1))
    start_at, end_at = datetime.combine(first, datetime.min.time(), tz), datetime.combine(end, datetime.min.time(), tz)
    result = Reconciliation(bank=bank, month=first)
    cases = list(await session.scalars(select(Case).where(Case.bank == bank).order_by(Case.case_no)))
    ids = [c.id for c in cases]
    numbers = {c.id: c.case_no for c in cases}
    names = {s.id: s.name for s in await session.scalars(select(Staff))}
    holder: dict[int, int] = {}
    for case_id, staff_id in (await session.execute(
            select(Assignment.case_id, Assignment.staff_id).where(Assignment.case_id.in_(ids))
            .where(Assignment.assigned_at < end_at).order_by(Assignment.assigned_at, Assignment.id))).tuples():
        holder[case_id] = staff_id  # the last one assigned before the month ended
    paid_month: dict[int, int] = {}
    paid_total: dict[int, int] = {}
    for payment in await session.scalars(select(Payment).where(Payment.case_id.in_(ids))
                                         .order_by(Payment.paid_on, Payment.id)):
        if payment.paid_on >= end:
            continue
        paid_total[payment.case_id] = paid_total.get(payment.case_id, 0) + payment.amount_fen
        if payment.paid_on >= first:
            paid_month[payment.case_id] = paid_month.get(payment.case_id, 0) + payment.amount_fen
            result.payments.append(PaymentLine(numbers[payment.case_id], payment.paid_on, payment.amount_fen,
                                               payment.channel, payment.reference))
    for visit in await session.scalars(select(Visit).where(
            Visit.case_id.in_(ids), Visit.status.in_(COUNTED_VISITS), Visit.filed_at >= start_at,
            Visit.filed_at < end_at).order_by(Visit.filed_at, Visit.id)):
        assert visit.filed_at is not None
        result.visits.append(VisitLine(visit.filed_at, names.get(visit.collector_id, "?"), numbers[visit.case_id],
                                       visit.code or "-", visit.amount_fen))
    for promise in await session.scalars(select(Promise).where(Promise.case_id.in_(ids)).order_by(
            Promise.due_on, Promise.id)):
        made_in = start_at <= promise.created_at < end_at
        due_in = first <= promise.due_on < end
        if made_in or due_in:
            result.promises.append(PromiseLine(numbers[promise.case_id], names.get(promise.collector_id, "?"),
                                               promise.amount_fen, promise.created_at, promise.due_on, promise.status,
                                               promise.paid_fen))
    # The cases sheet: every case the bank had entrusted by the month's end, and any entered later that
    # has something in the month (a payment dated in it, say), so every other sheet's case is on it.
    seen = {v.case_no for v in result.visits} | {p.case_no for p in result.promises}
    for case in cases:
        if case.created_at >= end_at and case.id not in paid_month and case.case_no not in seen:
            continue
        holder_id = holder.get(case.id)
        result.cases.append(CaseLine(case.case_no, case.debtor_name, case.status, case.status_reason,
                                     names.get(holder_id) if holder_id else None, case.amount_due_fen,
                                     paid_month.get(case.id, 0), paid_total.get(case.id, 0)))
    return result


async def build_for(session: AsyncSession, actor: StaffView | None, bank: str, month: date, *,
                    tz: ZoneInfo) -> Reconciliation:
    """The reconciliation asked for in the bot: the bank's files in and out are the admins' (``CASE_IMPORT``)."""
    policy.require_role(actor, policy.Action.CASE_IMPORT, subject=("bank", bank))
    return await build(session, bank, month, tz=tz)


async def banks_for(session: AsyncSession, actor: StaffView | None) -> list[str]:
    """The banks there are cases of (to choose from), for those who may reconcile."""
    policy.require_role(actor, policy.Action.CASE_IMPORT, subject=("bank", "*"))
    return list(await session.scalars(select(Case.bank).distinct().order_by(Case.bank)))


def looks_like_month(text: str) -> bool:
    parts = text.strip().split("-")
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


def xlsx_bytes(t: Translator, recon: Reconciliation, tz: ZoneInfo) -> bytes:
    """The workbook: cases, visits, promises, payments; money in yuan; a bold totals row on each sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    book = Workbook()
    totals = recon.totals
    total_label = t(N_("recon.total"))

    def sheet(title: str, headers: list[str], rows: list[list[object]], total: list[object], *,
              first: bool = False) -> None:
        ws = book.active if first else book.create_sheet()
        ws.title = title[:31]
        ws.append(headers)
        for row in rows:
            ws.append(row)
        ws.append(total)
        for cell in (*ws[1], *ws[ws.max_row]):
            cell.font = bold
        for column, header in zip(ws.columns, headers, strict=False):
            ws.column_dimensions[column[0].column_letter].width = max(10, min(40, len(header) * 2 + 2))
        ws.freeze_panes = "A2"

    def money(fen: int | None) -> float | None:
        value = _yuan(fen)
        return None if value is None else float(value)

    sheet(t(N_("recon.sheet.cases")), [t(k) for k in (
        N_("recon.col.case"), N_("recon.col.debtor"), N_("recon.col.status"), N_("recon.col.reason"),
        N_("recon.col.collector"), N_("recon.col.amount_due"), N_("recon.col.paid_month"), N_("recon.col.paid_total"))],
        [[c.case_no, c.debtor_name, t(f"recon.status.{c.status}"), c.status_reason or "", c.collector or "",
          money(c.amount_due_fen), money(c.paid_month_fen), money(c.paid_total_fen)] for c in recon.cases],
        [total_label, totals["cases"], "", "", "", money(totals["amount_due_fen"]), money(totals["paid_month_fen"]),
         money(totals["paid_total_fen"])], first=True)
    sheet(t(N_("recon.sheet.visits")), [t(k) for k in (
        N_("recon.col.date"), N_("recon.col.collector"), N_("recon.col.case"), N_("recon.col.code"),
        N_("recon.col.amount"))],
        [[v.filed_at.astimezone(tz).replace(tzinfo=None), v.collector, v.case_no,
          f"{v.code} {t(f'code.{v.code}')}" if v.code != "-" else "-", money(v.amount_fen)] for v in recon.visits],
        [total_label, totals["visits"], "", "", ""])
    sheet(t(N_("recon.sheet.promises")), [t(k) for k in (
        N_("recon.col.case"), N_("recon.col.collector"), N_("recon.col.amount"), N_("recon.col.made"),
        N_("recon.col.due"), N_("recon.col.status"), N_("recon.col.paid"))],
        [[p.case_no, p.collector, money(p.amount_fen), p.created_at.astimezone(tz).date(), p.due_on,
          t(f"promise.{p.status}"), money(p.paid_fen)] for p in recon.promises],
        [total_label, totals["promises"], money(totals["promised_fen"]), "", "", "", money(totals["promise_paid_fen"])])
    sheet(t(N_("recon.sheet.payments")), [t(k) for k in (
        N_("recon.col.case"), N_("recon.col.date"), N_("recon.col.amount"), N_("recon.col.channel"),
        N_("recon.col.reference"))],
        [[p.case_no, p.paid_on, money(p.amount_fen), p.channel or "", p.reference or ""] for p in recon.payments],
        [total_label, totals["payments"], money(totals["payments_fen"]), "", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def summary_text(t: Translator, recon: Reconciliation) -> str:
    totals = recon.totals
    return t(N_("recon.summary"), bank=recon.bank, month=f"{recon.month:%Y-%m}", cases=totals["cases"],
             visits=totals["visits"], promises=totals["promises"], payments=totals["payments"],
             paid=t.money(Decimal(totals["payments_fen"]) / 100))
