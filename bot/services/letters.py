"""Final notices by registered letter and their 10-day term.

The notice says "10天期限将以您签收信函当天开始计算" (the 10 days count from the day you sign for the
letter) and, for a letter refused or that could not be delivered, "以发出信函日期顺延3天开始计算期限"
(the term counts from the sending date moved on by 3 days). Read precisely, as fieldbot does:

* **signed**: the signing day is day 1; the term ends at the end (24:00, Asia/Shanghai) of day 10,
  which is ``signed_on + 9 days``. Signed on Friday 4 December 2026: the term runs to the end of
  Sunday 13 December.
* **refused or undeliverable**: day 1 is ``sent_on + 3 days``; the term ends at the end of its 10th day,
  ``sent_on + 12 days``. Sent on Monday 30 November 2026: day 1 is Thursday 3 December, the term ends
  at the end of Saturday 12 December.

These are **calendar days**, not working days: a letter's term is a legal term counted on the
calendar, weekends and public holidays included (unlike the SOP's visit deadlines, which use China's
working days). A letter still waiting for the post office's answer has no term yet.

Once the term is known, the letter carries its due times (a row with a due time, swept by
``letter_sweep`` in scheduler/jobs.py): ``remind_at`` at the start of the working day (09:00 by default)
two days before the last day, and ``expires_at`` at the end of the last day. The case's supervisor
is told at each; after expiry the case is on the supervisor's list for the next step (/team) until the
case is closed or put on hold, or a newer letter is sent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES, current_assignee_id
from bot.services.errors import DomainError
from bot.services.parsing import clean_text
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, Letter, LetterStatus, Role, Staff

TERM_DAYS = 10
UNSIGNED_DELAY_DAYS = 3  # refused or undeliverable: the term starts on the sending date + 3 days
REMIND_DAYS_BEFORE = 2
BATCH = 100
OUTCOMES = (LetterStatus.SIGNED.value, LetterStatus.REFUSED.value, LetterStatus.UNDELIVERABLE.value)


def term(outcome: str, *, sent_on: date, signed_on: date | None = None) -> tuple[date, date]:
    """The term's first and last day (both counted) for a letter ``outcome``: calendar days."""
    if outcome == LetterStatus.SIGNED.value:
        if signed_on is None:
            raise DomainError(N_("letter.error.signed_on"))
        start = signed_on
    elif outcome in (LetterStatus.REFUSED.value, LetterStatus.UNDELIVERABLE.value):
        start = sent_on + timedelta(days=UNSIGNED_DELAY_DAYS)
    else:
        raise DomainError(N_("letter.error.outcome"))
    return start, start + timedelta(days=TERM_DAYS - 1)


def ends_at(term_end: date, calendar: WorkCalendar) -> datetime:
    """The end of the term's last day: midnight after it, local time."""
    return datetime.combine(term_end + timedelta(days=1), time(0), calendar.tz)


def remind_at(term_end: date, calendar: WorkCalendar) -> datetime:
    return datetime.combine(term_end - timedelta(days=REMIND_DAYS_BEFORE), calendar.work_start, calendar.tz)


async def _case(session: AsyncSession, actor: StaffView | None, case_id: int) -> Case:
    await policy.require(session, actor, policy.Action.LETTER_RECORD, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    return case


async def latest(session: AsyncSession, case_id: int) -> Letter | None:
    found: Letter | None = await session.scalar(select(Letter).where(Letter.case_id == case_id)
                                                .order_by(Letter.id.desc()).limit(1))
    return found


async def waiting(session: AsyncSession, actor: StaffView | None, case_id: int) -> Letter | None:
    """The case's letter still waiting for the post office's answer, if ``actor`` may record letters."""
    await _case(session, actor, case_id)
    letter = await latest(session, case_id)
    return letter if letter is not None and letter.status == LetterStatus.SENT.value else None


async def check_case(session: AsyncSession, actor: StaffView | None, case_id: int) -> Case:
    """May ``actor`` record a letter for this case (theirs to, and the case still open)?"""
    case = await _case(session, actor, case_id)
    if case.status in CLOSED_STATUSES:
        raise DomainError(N_("letter.error.case_closed"), case_no=case.case_no)
    return case


async def record(session: AsyncSession, actor: StaffView | None, case_id: int, *, sent_on: date, tracking: str,
                 now: datetime, calendar: WorkCalendar) -> Letter:
    """A final notice posted for the case: its sending date and tracking number (audited on the case)."""
    case = await check_case(session, actor, case_id)
    tracking = clean_text(tracking or "")[:64]
    if not tracking:
        raise DomainError(N_("letter.error.tracking"))
    if sent_on > calendar.local(now).date():
        raise DomainError(N_("letter.error.future"), day=sent_on.isoformat())
    letter = Letter(case_id=case.id, sent_on=sent_on, tracking_no=tracking, status=LetterStatus.SENT.value,
                    recorded_by_id=actor.id if actor else None, created_at=now, updated_at=now)
    session.add(letter)
    await session.flush()
    await audit.record(session, action="letter.sent", object_type="case", object_id=case.id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"letter_id": letter.id, "sent_on": sent_on.isoformat(), "tracking": tracking})
    return letter


async def mark(session: AsyncSession, actor: StaffView | None, case_id: int, outcome: str, *, now: datetime,
               calendar: WorkCalendar, signed_on: date | None = None) -> Letter:
    """The post office's answer for the case's waiting letter: signed (on a date), refused or undeliverable.

    Fixes the term and its due times; a letter already answered is not answered again."""
    await _case(session, actor, case_id)
    letter = await session.scalar(select(Letter).where(Letter.case_id == case_id).order_by(Letter.id.desc())
                                  .limit(1).with_for_update())
    if letter is None or letter.status != LetterStatus.SENT.value:
        raise DomainError(N_("letter.error.none_waiting"))
    if outcome == LetterStatus.SIGNED.value and signed_on is not None:
        if signed_on < letter.sent_on or signed_on > calendar.local(now).date():
            raise DomainError(N_("letter.error.signed_range"), sent=letter.sent_on.isoformat())
    start, end = term(outcome, sent_on=letter.sent_on, signed_on=signed_on)
    letter.status, letter.signed_on = outcome, signed_on if outcome == LetterStatus.SIGNED.value else None
    letter.term_start, letter.term_end = start, end
    letter.remind_at, letter.expires_at = remind_at(end, calendar), ends_at(end, calendar)
    letter.updated_at = now
    await audit.record(session, action=f"letter.{outcome}", object_type="case", object_id=case_id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"letter_id": letter.id, "signed_on": signed_on.isoformat() if signed_on else None,
                                "term_start": start.isoformat(), "term_end": end.isoformat()})
    return letter


# ---- the sweep: 2 days before the end, and at the end -------------------------------------------------------


async def supervisors_of(session: AsyncSession, case: Case) -> list[Staff]:
    """Who follows the case's letter: the holder's supervisor(s), else the supervisors of the case's team."""
    holder = await current_assignee_id(session, case.id)
    if holder is not None:
        found = await reviewers_of(session, holder)
        if found:
            return found
    return list(await session.scalars(select(Staff).where(
        Staff.role == Role.SUPERVISOR.value, Staff.team == case.team, Staff.team.is_not(None),
        Staff.active.is_(True), Staff.telegram_user_id.is_not(None))))


async def _tell(session: AsyncSession, letter: Letter, case: Case, key: str, kind: str, *, now: datetime) -> None:
    assert letter.term_end is not None
    for person in await supervisors_of(session, case):
        assert person.telegram_user_id is not None
        t = t_for(person)
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=kind, now=now,
                             dedupe_key=f"{kind}:{letter.id}:{person.id}",
                             text=t(key, case_no=case.case_no, tracking=letter.tracking_no,
                                    end=t.date(letter.term_end)))


async def sweep(session: AsyncSession, *, now: datetime) -> int:
    """Remind the supervisors of letters whose term ends in 2 days; tell them of terms that ended.

    Each letter's due time is marked handled in the same transaction as its messages are queued, so a
    second run (or another process) finds nothing; an expired letter is not reminded any more."""
    handled = 0
    expired = list(await session.scalars(select(Letter).where(
        Letter.expires_at.is_not(None), Letter.expires_at <= now, Letter.expired_at.is_(None))
        .order_by(Letter.expires_at, Letter.id).limit(BATCH)))
    for letter in expired:
        case = await session.get(Case, letter.case_id)
        assert case is not None
        letter.expired_at = now
        letter.reminded_at = letter.reminded_at or now  # no reminder after the end
        await audit.record(session, action="letter.expired", object_type="case", object_id=case.id, at=now,
                           details={"letter_id": letter.id, "term_end": str(letter.term_end)})
        if case.status not in CLOSED_STATUSES:
            await _tell(session, letter, case, N_("letter.expired_notice"), "letter.expired", now=now)
        handled += 1
    due = list(await session.scalars(select(Letter).where(
        Letter.remind_at.is_not(None), Letter.remind_at <= now, Letter.reminded_at.is_(None))
        .order_by(Letter.remind_at, Letter.id).limit(BATCH)))
    for letter in due:
        case = await session.get(Case, letter.case_id)
        assert case is not None
        letter.reminded_at = now
        if case.status not in CLOSED_STATUSES:
            await _tell(session, letter, case, N_("letter.reminder"), "letter.reminder", now=now)
        handled += 1
    return handled


async def next_steps(session: AsyncSession, team: str | frozenset[str] | None) -> list[tuple[str, date]]:
    """Cases (of ``team``; None: every team) whose latest letter's term ended and that are still open:
    (case number, last day of the term), the supervisor's list for the next step."""
    newest = (select(Letter.case_id, func.max(Letter.id).label("id")).group_by(Letter.case_id).subquery())
    query = (select(Case.case_no, Letter.term_end).join(newest, newest.c.id == Letter.id)
             .join(Case, Case.id == Letter.case_id)
             .where(Letter.expired_at.is_not(None), Case.status.not_in(CLOSED_STATUSES))
             .order_by(Letter.term_end, Case.case_no))
    if team is not None:
        query = query.where(Case.team.in_([team] if isinstance(team, str) else team))
    return [(case_no, end) for case_no, end in (await session.execute(query)).all() if end is not None]
