"""/flag: a collector reports that a debtor's default looks malicious (恶意拖欠), with a suggestion.

The flag names an open case the collector works (holds, or was asked to visit) by its number; it goes to the collector's
supervisor through the outbox and is written to the audit log (``case.flag_malicious``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox, policy
from bot.services.actor import StaffView
from bot.services.cases import CLOSED_STATUSES
from bot.services.errors import DomainError, Forbidden
from bot.services.masking import mask_name
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, Staff

REASON_LIMIT = 1000


async def own_case(session: AsyncSession, actor: StaffView, case_no: str) -> Case:
    """The open case numbered ``case_no`` that ``actor`` works (CASE_FLAG: held, or asked of them by /tofield)."""
    policy.require_role(actor, policy.Action.CASE_FLAG)
    found = []
    for case in await session.scalars(select(Case).where(func.upper(Case.case_no) == case_no.strip().upper(),
                                                         Case.status.not_in(CLOSED_STATUSES))):
        try:
            await policy.require(session, actor, policy.Action.CASE_FLAG, case.id)
        except Forbidden:
            continue
        found.append(case)
    if not found:
        raise DomainError(N_("flag.error.no_case"), case_no=case_no.strip())
    if len(found) > 1:
        raise DomainError(N_("flag.error.ambiguous"), case_no=case_no.strip())
    return found[0]


async def flag_malicious(session: AsyncSession, actor: StaffView, case_id: int, reason: str, *,
                         now: datetime) -> int:
    """Flag the case's default as malicious; returns how many supervisors were told."""
    await policy.require(session, actor, policy.Action.CASE_FLAG, case_id)
    reason = reason.strip()[:REASON_LIMIT]
    if not reason:
        raise DomainError(N_("flag.error.reason"))
    case = await session.get(Case, case_id)
    collector = await session.get(Staff, actor.id)
    assert case is not None and collector is not None
    told = 0
    for boss in await reviewers_of(session, actor.id):
        assert boss.telegram_user_id is not None
        t = t_for(boss)
        await outbox.enqueue(session, chat_id=boss.telegram_user_id, kind="case.flag", now=now, protect_content=True,
                             priority=outbox.Priority.REVIEW,
                             text=t(N_("flag.to_supervisor"), name=collector.name, case_no=case.case_no,
                                    bank=case.bank, debtor=mask_name(case.debtor_name), reason=reason))
        told += 1
    await audit.record(session, action="case.flag_malicious", object_type="case", object_id=case_id,
                       actor_id=actor.id, at=now, details={"reason": reason, "supervisors": told})
    return told
