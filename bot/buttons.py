"""Every inline button the bot sends, declared once with its typed fields and the policy action it serves.

A button is a small frozen dataclass: ``CaseCard(case_id=7).pack()`` gives ``"v:card:7"`` (callback
data is at most 64 bytes, checked when packed), ``CaseCard.pattern()`` is the regular expression a
``CallbackQueryHandler`` matches, and ``CaseCard.unpack(data)`` gives the typed value back (or
``ValueError`` for anything forged). Services build buttons with ``pack()``; handlers match and read
them with the same class, so there is no hand-written ``split(":")`` left to disagree.

Each class names the :class:`~bot.services.policy.Action` it serves and, where it points at an object,
which field holds that object's id (``target``) and what kind of object it is. :data:`BUTTONS` lists
them all; the authorization matrix test walks that list, so a button declared without a policy, or a
handler pattern that matches no declared button, fails CI. No Telegram import here: services use it.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform, get_type_hints

from bot.services.policy import OBJECT_KIND, Action

MAX_BYTES = 64


class Button:
    """Base of every declared button. Subclasses are frozen dataclasses registered in :data:`BUTTONS`."""

    prefix: ClassVar[str]
    action: ClassVar[Action | None]
    target: ClassVar[str | None]
    kind: ClassVar[str | None]
    why_no_policy: ClassVar[str]
    _fields: ClassVar[tuple[tuple[str, Any], ...]]
    _pattern: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, *, prefix: str, action: Action | None, target: str | None = None,
                          kind: str | None = None, why_no_policy: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix in BUTTONS:
            raise TypeError(f"button prefix {prefix!r} declared twice")
        if action is None and not why_no_policy:
            raise TypeError(f"{cls.__name__}: a button without a policy action must say why")
        cls.prefix, cls.action, cls.target, cls.why_no_policy = prefix, action, target, why_no_policy
        cls.kind = kind or (OBJECT_KIND[action] if action is not None and target is not None else None)
        BUTTONS[prefix] = cls

    @classmethod
    def _setup(cls) -> None:
        hints = get_type_hints(cls)
        cls._fields = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        if cls.target is not None and cls.target not in {name for name, _ in cls._fields}:
            raise TypeError(f"{cls.__name__}: target {cls.target!r} is not a field")
        parts = [re.escape(cls.prefix)] + [f"({_regex(kind)})" for _, kind in cls._fields]
        cls._pattern = re.compile("^" + ":".join(parts) + "$")

    @classmethod
    def pattern(cls) -> re.Pattern[str]:
        return cls._pattern

    def pack(self) -> str:
        values = [_encode(getattr(self, name)) for name, _ in self._fields]
        data = ":".join([self.prefix, *values])
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @classmethod
    def unpack(cls, data: str | None) -> Self:
        match = cls._pattern.match(data or "")
        if match is None:
            raise ValueError(f"not a {cls.__name__} button: {data!r}")
        values = {name: _decode(kind, raw) for (name, kind), raw in zip(cls._fields, match.groups(), strict=True)}
        return cls(**values)

    @property
    def target_id(self) -> int | None:
        return int(getattr(self, self.target)) if self.target is not None else None


BUTTONS: dict[str, type[Button]] = {}


class Month(str):
    """A calendar page: ``YYYYMM``."""


class Nonce(str):
    """A short hex token (a plan the pressing person confirms)."""


class Word(str):
    """A lower-case word (a locale, a resolution, a choice): letters, digits and ``_``."""


class Code(str):
    """An upper-case code (a result code)."""


def _regex(kind: Any) -> str:
    if kind is int:
        return r"\d{1,9}"
    if kind is date:
        return r"\d{8}"
    if kind is Month:
        return r"\d{6}"
    if kind is Nonce:
        return r"[0-9a-f]{1,32}"
    if kind is Word:
        return r"[A-Za-z0-9_]{1,24}"
    if kind is Code:
        return r"[A-Z_]{1,24}"
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return "|".join(re.escape(m.value) for m in kind)
    raise TypeError(f"no callback encoding for {kind!r}")


def _encode(value: Any) -> str:
    if isinstance(value, date):
        return f"{value:%Y%m%d}"
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


def _decode(kind: Any, raw: str) -> Any:
    if kind is int:
        return int(raw)
    if kind is date:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))  # ValueError for 20261399
    if kind is Month:
        if not 1 <= int(raw[4:]) <= 12:
            raise ValueError(f"no month {raw}")
        return Month(raw)
    return kind(raw)


ButtonType = TypeVar("ButtonType", bound=type[Button])


@dataclass_transform(frozen_default=True)
def button(cls: ButtonType) -> ButtonType:
    """Class decorator: make ``cls`` a frozen dataclass and compile its pattern (typed as one for mypy)."""
    dataclasses.dataclass(frozen=True)(cls)  # in place: without slots the class itself is returned
    cls._setup()
    return cls


def parse(data: str | None) -> Button | None:
    """The declared button ``data`` is, or None (an old keyboard or a forged press)."""
    if not data:
        return None
    head = data.split(":", 2)
    for size in (2, 1):
        cls = BUTTONS.get(":".join(head[:size]))
        if cls is not None:
            try:
                return cls.unpack(data)
            except ValueError:
                return None
    return None


# ---- the visit list and the case card ----------------------------------------------------------------------

W = Action.CASE_WORK


@button
class VisitListPage(Button, prefix="v:list", action=W):
    offset: int  # the first item shown


@button
class CaseCard(Button, prefix="v:card", action=W, target="case_id"):
    case_id: int


@button
class CasePhone(Button, prefix="v:ph", action=W, target="case_id"):
    case_id: int


@button
class RoutePicture(Button, prefix="v:route", action=W):
    pass


@button
class DayPlanFile(Button, prefix="v:plan", action=Action.DAY_PLAN_FILE):
    """📋 File today's plan: the list in route order, to the supervisor, once a day."""


# ---- writing a visit report --------------------------------------------------------------------------------

V = Action.VISIT_WRITE


@button
class CheckIn(Button, prefix="v:in", action=W, target="case_id"):
    case_id: int


@button
class VisitResume(Button, prefix="v:resume", action=V, target="visit_id"):
    visit_id: int


@button
class VisitAmend(Button, prefix="v:amend", action=V, target="visit_id"):
    visit_id: int


@button
class VisitDuration(Button, prefix="v:dur", action=V):
    minutes: Word  # a number of minutes, or "custom"


@button
class ResultCode(Button, prefix="v:code", action=V):
    code: Code


@button
class AnswerDate(Button, prefix="v:d", action=V):
    day: date


@button
class AnswerChoice(Button, prefix="v:ch", action=V):
    choice: Word


@button
class AnswerSkip(Button, prefix="v:skip", action=V):
    pass


@button
class VisitCalendarPage(Button, prefix="v:cal", action=V):
    month: Month


@button
class Inert(Button, prefix="v:noop", action=None, why_no_policy="a calendar heading or blank day: does nothing"):
    pass


@button
class EvidenceDone(Button, prefix="v:done", action=V):
    pass


@button
class MoreEvidence(Button, prefix="v:more", action=V):
    pass


@button
class Recode(Button, prefix="v:recode", action=V):
    pass


@button
class FileReport(Button, prefix="v:file", action=V):
    pass


# ---- review ------------------------------------------------------------------------------------------------

RV = Action.VISIT_REVIEW


@button
class ReviewApprove(Button, prefix="rv:ok", action=RV, target="visit_id"):
    visit_id: int


@button
class ReviewReturn(Button, prefix="rv:ret", action=RV, target="visit_id"):
    visit_id: int


@button
class ReviewFiles(Button, prefix="rv:files", action=RV, target="visit_id"):
    visit_id: int


# ---- extensions --------------------------------------------------------------------------------------------


@button
class ExtensionAsk(Button, prefix="v:ext", action=Action.EXTENSION_ASK, target="case_id"):
    case_id: int


@button
class ExtensionDate(Button, prefix="x:d", action=Action.EXTENSION_ASK):
    day: date


@button
class ExtensionCalendarPage(Button, prefix="x:cal", action=Action.EXTENSION_ASK):
    month: Month


@button
class ExtensionApprove(Button, prefix="ex:ok", action=Action.EXTENSION_DECIDE, target="request_id"):
    request_id: int


@button
class ExtensionReject(Button, prefix="ex:no", action=Action.EXTENSION_DECIDE, target="request_id"):
    request_id: int


# ---- emergencies -------------------------------------------------------------------------------------------


@button
class AlarmAcknowledge(Button, prefix="sos:ack", action=Action.INCIDENT_ACK, target="incident_id"):
    incident_id: int


@button
class AlarmResolve(Button, prefix="sos:res", action=Action.INCIDENT_RESOLVE, target="incident_id"):
    incident_id: int


@button
class AlarmResolution(Button, prefix="sos:rr", action=Action.INCIDENT_RESOLVE, target="incident_id"):
    incident_id: int
    resolution: Word


@button
class ImSafe(Button, prefix="sos:safe", action=Action.SAFETY_OWN):
    pass


@button
class SafetyMoreTime(Button, prefix="sf:more", action=Action.SAFETY_OWN, target="visit_id", kind="visit"):
    visit_id: int


@button
class SafetyDone(Button, prefix="sf:done", action=Action.SAFETY_OWN, target="visit_id", kind="visit"):
    visit_id: int


# ---- onboarding --------------------------------------------------------------------------------------------


@button
class Language(Button, prefix="lang", action=Action.PROFILE_OWN):
    locale: Word


# ---- assignment --------------------------------------------------------------------------------------------

AS = Action.CASE_ASSIGN


@button
class AssignPage(Button, prefix="asg:p", action=AS):
    offset: int  # the first case shown (a multiple of the page size)


@button
class AssignPickCase(Button, prefix="asg:c", action=AS, target="case_id"):
    case_id: int


@button
class AssignTo(Button, prefix="asg:to", action=AS, target="case_id"):
    case_id: int
    collector_id: int


@button
class AssignNearest(Button, prefix="asg:near", action=AS):
    pass


@button
class AssignByArea(Button, prefix="asg:area", action=AS):
    pass


@button
class AssignAreaTo(Button, prefix="asg:areato", action=AS, target="collector_id", kind="staff"):
    collector_id: int


@button
class AssignConfirm(Button, prefix="asg:ok", action=AS):
    nonce: Nonce


@button
class AssignCancel(Button, prefix="asg:no", action=AS):
    pass


# ---- phone collector to field ------------------------------------------------------------------------------

TF = Action.CASE_TO_FIELD


@button
class ToFieldCase(Button, prefix="tf:c", action=TF, target="case_id"):
    case_id: int


@button
class ToFieldCollector(Button, prefix="tf:to", action=TF, target="case_id"):
    case_id: int
    collector_id: int


# ---- handovers ---------------------------------------------------------------------------------------------

HR, HL, HD = Action.HANDOVER_RUN, Action.HANDOVER_LEAD, Action.HANDOVER_DEPART


@button
class HandoverFrom(Button, prefix="ho:from", action=HR, target="staff_id", kind="staff"):
    staff_id: int


@button
class HandoverSuccessor(Button, prefix="ho:succ", action=HR, target="staff_id", kind="staff"):
    staff_id: int


@button
class HandoverGo(Button, prefix="ho:go", action=HR):
    pass


@button
class HandoverChecklist(Button, prefix="ho:list", action=HD):
    pass


@button
class HandoverItemDone(Button, prefix="ho:ok", action=HD, target="item_id"):
    item_id: int


@button
class HandoverItemNote(Button, prefix="ho:note", action=HD, target="item_id"):
    item_id: int


@button
class HandoverReview(Button, prefix="ho:rev", action=HL, target="handover_id"):
    handover_id: int


@button
class HandoverReassign(Button, prefix="ho:re", action=HL, target="item_id", kind="handover_item"):
    item_id: int


@button
class HandoverReassignTo(Button, prefix="ho:to", action=HL, target="item_id", kind="handover_item"):
    item_id: int
    staff_id: int


@button
class HandoverLeadOk(Button, prefix="ho:lok", action=HL, target="handover_id"):
    handover_id: int


@button
class HandoverFlag(Button, prefix="ho:flag", action=HL, target="handover_id"):
    handover_id: int


class Decision(StrEnum):
    GO = "go"
    CANCEL = "cancel"


@button
class HandoverDecide(Button, prefix="ho:dec", action=Action.HANDOVER_DECIDE, target="issue_id"):
    issue_id: int
    decision: Decision


@button
class HandoverReceive(Button, prefix="ho:rcv", action=Action.HANDOVER_RECEIVE, target="handover_id"):
    handover_id: int


@button
class HandoverCancel(Button, prefix="ho:cancel", action=HR, target="handover_id"):
    handover_id: int


HV, HS = Action.HANDOVER_VIEW, Action.HANDOVER_STAND_IN


@button
class HandoverOpen(Button, prefix="ho:open", action=HV, target="handover_id"):
    handover_id: int


@button
class HandoverStandIn(Button, prefix="ho:si", action=HS, target="handover_id"):
    handover_id: int


@button
class HandoverStandInItem(Button, prefix="ho:sii", action=HS, target="item_id", kind="handover_item"):
    item_id: int


@button
class HandoverStandInAll(Button, prefix="ho:sia", action=HS, target="handover_id"):
    handover_id: int



# ---- the case desk (/case) -----------------------------------------------------------------------------------

CV, CS = Action.CASE_VIEW, Action.CASE_STATUS


@button
class DeskPage(Button, prefix="dk:p", action=CV):
    offset: int  # the first hit shown of the search kept in the person's flow state


@button
class DeskOpen(Button, prefix="dk:c", action=CV, target="case_id"):
    case_id: int


@button
class DeskReassign(Button, prefix="dk:re", action=AS, target="case_id"):
    case_id: int


@button
class DeskReassignTo(Button, prefix="dk:to", action=AS, target="case_id"):
    case_id: int
    collector_id: int


@button
class DeskBulkReassign(Button, prefix="dk:bulk", action=AS):
    pass


@button
class DeskBulkTo(Button, prefix="dk:bto", action=AS, target="collector_id", kind="staff"):
    collector_id: int


@button
class DeskHold(Button, prefix="dk:hold", action=CS, target="case_id"):
    case_id: int


@button
class DeskClose(Button, prefix="dk:close", action=CS, target="case_id"):
    case_id: int


@button
class DeskReopen(Button, prefix="dk:open", action=CS, target="case_id"):
    case_id: int


# ---- a case file sent to the bot ------------------------------------------------------------------------------


@button
class ImportTeam(Button, prefix="imp:team", action=Action.CASE_IMPORT):
    choice: int  # the n-th team offered for the file waiting in the flow state (0: no team)


# ---- inviting staff in the bot -------------------------------------------------------------------------------

SI = Action.STAFF_INVITE


@button
class InviteRole(Button, prefix="inv:role", action=SI):
    role: Word


@button
class InviteTeam(Button, prefix="inv:team", action=SI):
    choice: int  # the n-th team offered (0: no team)


@button
class InviteSupervisor(Button, prefix="inv:sup", action=SI, target="staff_id", kind="staff"):
    staff_id: int


@button
class InviteNoSupervisor(Button, prefix="inv:nosup", action=SI):
    pass


# ---- the rest of the procedure: a bank's emergency contact, registered letters, special procedures ----------


class AlertReason(StrEnum):
    AGAINST_INTEREST = "against_interest"  # the debtor acting against the bank's interests
    FORCE_MAJEURE = "force_majeure"


@button
class BankAlertReason(Button, prefix="bk:why", action=Action.BANK_ALERT, target="case_id"):
    case_id: int
    reason: AlertReason


class LetterOutcome(StrEnum):
    SIGNED = "signed"
    REFUSED = "refused"
    UNDELIVERABLE = "undeliverable"


@button
class LetterMark(Button, prefix="lt:mark", action=Action.LETTER_RECORD, target="case_id"):
    case_id: int  # the case's letter still waiting for the post office's answer
    outcome: LetterOutcome


class SpecialKind(StrEnum):
    LEGAL = "legal"  # legal action
    THIRD_PARTY = "third_party"  # a third party's help
    BANK_REQUEST = "bank_request"  # the bank's special request


@button
class SpecialApply(Button, prefix="sp:kind", action=Action.SPECIAL_APPLY, target="case_id"):
    case_id: int
    procedure: SpecialKind


@button
class SpecialApprove(Button, prefix="sp:ok", action=Action.SPECIAL_DECIDE, target="case_id"):
    case_id: int  # the case's special procedure waiting for a decision


@button
class SpecialReject(Button, prefix="sp:no", action=Action.SPECIAL_DECIDE, target="case_id"):
    case_id: int


@button
class SpecialArranged(Button, prefix="sp:arr", action=Action.SPECIAL_ARRANGE, target="case_id"):
    case_id: int


@button
class SpecialClose(Button, prefix="sp:close", action=Action.SPECIAL_CLOSE, target="case_id"):
    case_id: int


@button
class BranchReportApprove(Button, prefix="br:ok", action=Action.BRANCH_REPORT_DECIDE, target="report_id"):
    report_id: int  # a supervisor's monthly branch report waiting for approval


@button
class BranchReportReturn(Button, prefix="br:ret", action=Action.BRANCH_REPORT_DECIDE, target="report_id"):
    report_id: int
