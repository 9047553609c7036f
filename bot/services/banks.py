"""The banks the agency works for: their agreements (number, start, end) and whom to contact.

A case links to its bank by name: ``Case.bank`` is the bank's name as its case files spell it (it is part
of the case's unique key with the case number), and :class:`Bank` rows are unique by that name. A name
lookup rather than a foreign key on the case means cases imported before the bank was registered, or
from a file that names the bank in a column, link at once, with no backfill and no second place where a
case's bank could disagree with its file. A bank registered again (a renewed agreement) keeps its row:
the new agreement replaces the old, and the audit log keeps what it was.

The agreement's end matters to retention (bot/services/retention.py): case material is kept five years
after the later of the case's ``contract_end`` and its bank's agreement end.

A report to the bank's emergency contact (/bankalert: the debtor acting against the bank's interests, or
force majeure) is a :class:`BankAlert` row and an audit entry on the case; the admin is shown the
contact to call or write. The case timeline shows it (bot/services/case_events.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, policy
from bot.services.actor import StaffView
from bot.services.errors import DomainError
from bot.services.parsing import clean_text
from bot.storage.models import Bank, BankAlert, Case

ALERT_REASONS = ("against_interest", "force_majeure")


def _required(value: str, what: str) -> str:
    text = clean_text(value or "")
    if not text:
        raise DomainError(N_("bank.error.required"), what=what)
    return text


async def add_bank(session: AsyncSession, *, name: str, agreement_no: str, start: date, end: date,
                   routine_contact: str, emergency_contact: str, now: datetime,
                   actor: StaffView | None = None) -> tuple[Bank, bool]:
    """Register a bank and its agreement, or replace the agreement of a bank already registered.

    Returns the bank and whether it is new. The end must not be before the start."""
    policy.require_role(actor, policy.Action.BANK_MANAGE)
    name = _required(name, "name")[:100]
    agreement_no = _required(agreement_no, "agreement")[:64]
    routine, emergency = _required(routine_contact, "routine-contact"), _required(emergency_contact,
                                                                                   "emergency-contact")
    if end < start:
        raise DomainError(N_("bank.error.end_before_start"), start=start.isoformat(), end=end.isoformat())
    bank = await session.scalar(select(Bank).where(Bank.name == name))
    created = bank is None
    before: dict[str, Any] | None = None
    if bank is None:
        bank = Bank(name=name, created_at=now)
        session.add(bank)
    else:
        before = describe(bank)
    bank.agreement_no, bank.agreement_start, bank.agreement_end = agreement_no, start, end
    bank.routine_contact, bank.emergency_contact, bank.updated_at = routine, emergency, now
    await session.flush()
    await audit.record(session, action="bank.added" if created else "bank.agreement_replaced", object_type="bank",
                       object_id=bank.id, actor_id=actor.id if actor else None, at=now,
                       details={"bank": describe(bank), "before": before})
    return bank, created


def describe(bank: Bank) -> dict[str, Any]:
    return {"name": bank.name, "agreement": bank.agreement_no, "start": bank.agreement_start.isoformat(),
            "end": bank.agreement_end.isoformat(), "routine_contact": bank.routine_contact,
            "emergency_contact": bank.emergency_contact}


async def list_banks(session: AsyncSession, actor: StaffView | None = None) -> list[Bank]:
    policy.require_role(actor, policy.Action.BANK_MANAGE)
    return list(await session.scalars(select(Bank).order_by(Bank.name)))


async def bank_of(session: AsyncSession, case: Case) -> Bank | None:
    """The bank (and its agreement) a case belongs to, by the case's bank name."""
    found: Bank | None = await session.scalar(select(Bank).where(Bank.name == case.bank))
    return found


async def agreement_ends(session: AsyncSession, names: Iterable[str]) -> dict[str, date]:
    """The agreement end of each of these banks that is registered."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = await session.execute(select(Bank.name, Bank.agreement_end).where(Bank.name.in_(wanted)))
    return {name: end for name, end in rows.all()}


# ---- reporting to the bank's emergency contact --------------------------------------------------------------


@dataclass(frozen=True)
class AlertTarget:
    case: Case
    bank: Bank


async def alert_target(session: AsyncSession, actor: StaffView | None, case_id: int) -> AlertTarget:
    """The case and its registered bank, if ``actor`` may report it; no registered bank is an error."""
    await policy.require(session, actor, policy.Action.BANK_ALERT, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    bank = await bank_of(session, case)
    if bank is None:
        raise DomainError(N_("bank.error.not_registered"), bank=case.bank)
    return AlertTarget(case, bank)


async def find_case(session: AsyncSession, case_no: str) -> Case:
    """The one case with this number (of any bank); several banks' cases of the same number are an error."""
    found = list(await session.scalars(select(Case).where(Case.case_no == case_no.strip()).limit(2)))
    if not found:
        raise DomainError(N_("procedure.error.no_case"), case_no=case_no)
    if len(found) > 1:
        raise DomainError(N_("procedure.error.ambiguous_case"), case_no=case_no)
    return found[0]


async def report(session: AsyncSession, actor: StaffView | None, case_id: int, *, reason: str, note: str,
                 now: datetime) -> tuple[BankAlert, Bank]:
    """Record a report of the case to its bank's emergency contact (a row and an audit entry on the case)."""
    if reason not in ALERT_REASONS:
        raise DomainError(N_("bank.error.reason"))
    target = await alert_target(session, actor, case_id)
    note = _required(note, "note")[:1000]
    alert = BankAlert(case_id=case_id, bank_id=target.bank.id, reason=reason, note=note,
                      emergency_contact=target.bank.emergency_contact,
                      reported_by_id=actor.id if actor else None, reported_at=now)
    session.add(alert)
    await session.flush()
    await audit.record(session, action="bank.alert", object_type="case", object_id=case_id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"alert_id": alert.id, "bank": target.bank.name, "reason_code": reason, "note": note,
                                "contact": target.bank.emergency_contact})
    return alert, target.bank
