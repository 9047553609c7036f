"""Visit result codes: what each one asks for, how answers are checked, what evidence a report of it must
carry, and what it does to the case.

Payment channels deliberately offer no cash: collectors do not take money in hand; debtors pay the
bank through its own channels and the collector records how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from bot.i18n import N_
from bot.services.geocoding import normalize_address
from bot.services.parsing import parse_amount, parse_date
from bot.storage.models import CaseStatus


class Kind(StrEnum):
    AMOUNT = "amount"
    DATE = "date"
    TEXT = "text"
    CHOICE = "choice"
    YESNO = "yesno"
    ADDRESS = "address"  # a place the case moves to: typed, geocoded, and on filing the case's new address


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] = ()
    future: bool = True  # dates: today or later
    unknown: bool = False  # "unknown" is an answer (typed, e.g. 不详, or its button), stored as ""


@dataclass(frozen=True)
class Outcome:
    """What filing a code does to the case: its status, and the next action (dated by ``date_field``)."""

    status: CaseStatus | None  # None: leave as it is
    next_action: str | None = None
    date_field: str | None = None
    to_supervisor: bool = False  # routed to the supervisor with priority
    due_at_once: bool = False  # no date asked: the next action is due on the working day of filing
    due_after: int = 0  # with due_at_once: that many working days later (0: the day of filing)
    relocate: str | None = None  # the answer (an ADDRESS) that becomes the case's address and coordinates


@dataclass(frozen=True)
class EvidenceRule:
    """What a report of one code needs before it can be filed.

    ``checkin``: a check-in (the collector's live location) was made; its distance to the case address is
    always recorded and flagged beyond the radius, and a rule without it also files without one.
    ``recording``: a voice note or audio file received during the visit is stored (the SOP).
    ``duration``: the planned length of the visit (the safety timer) was chosen before the result.
    """

    checkin: bool = True
    recording: bool = True
    duration: bool = True


CHANNELS = ("bank_transfer", "bank_app", "wechat", "alipay", "other")
RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "relative", "colleague", "neighbour", "other")

DISPOSITIONS: dict[str, tuple[Field, ...]] = {
    "PAID": (Field("amount", Kind.AMOUNT), Field("channel", Kind.CHOICE, choices=CHANNELS)),
    "PART": (Field("amount", Kind.AMOUNT), Field("next_date", Kind.DATE)),
    "PTP": (Field("amount", Kind.AMOUNT), Field("promise_date", Kind.DATE)),
    "RTP": (Field("reason", Kind.TEXT),),
    "DISPUTE": (Field("what", Kind.TEXT),),
    "HARDSHIP": (Field("note", Kind.TEXT),),
    "TPC": (Field("relationship", Kind.CHOICE, choices=RELATIONSHIPS), Field("message_left", Kind.YESNO)),
    "NOBODY": (Field("revisit_date", Kind.DATE),),
    "MOVED": (Field("source", Kind.TEXT), Field("new_address", Kind.ADDRESS, unknown=True)),
    "BAD_ADDR": (),
    "DECEASED": (Field("source", Kind.TEXT),),
    "REFUSED_ENTRY": (),
    "ABORTED_SAFETY": (),
    "NOT_VISITED": (Field("reason", Kind.TEXT), Field("new_date", Kind.DATE)),
}

OUTCOMES: dict[str, Outcome] = {
    "PAID": Outcome(CaseStatus.PAID),
    "PART": Outcome(CaseStatus.VISITED, "follow_up", "next_date"),
    "PTP": Outcome(CaseStatus.PROMISED, "ptp_due", "promise_date"),
    "RTP": Outcome(CaseStatus.VISITED, to_supervisor=True),
    "DISPUTE": Outcome(CaseStatus.DISPUTED, to_supervisor=True),
    "HARDSHIP": Outcome(CaseStatus.VISITED),
    "TPC": Outcome(CaseStatus.VISITED),
    "NOBODY": Outcome(CaseStatus.VISITED, "revisit", "revisit_date"),
    "MOVED": Outcome(CaseStatus.VISITED, "locate", due_at_once=True, relocate="new_address"),
    "BAD_ADDR": Outcome(CaseStatus.VISITED, "locate", due_at_once=True),
    "DECEASED": Outcome(CaseStatus.VISITED, to_supervisor=True),
    "REFUSED_ENTRY": Outcome(CaseStatus.VISITED),
    # Left for safety: back on the list the next working day (the supervisor, told at once, may reassign or
    # hold the case before then), so it never silently drops off every list.
    "ABORTED_SAFETY": Outcome(CaseStatus.VISITED, "revisit", to_supervisor=True, due_at_once=True, due_after=1),
    "NOT_VISITED": Outcome(None, "revisit", "new_date"),
}

SOP = EvidenceRule()  # every visit is checked in, voice-recorded and filed with the report
EVIDENCE: dict[str, EvidenceRule] = {
    **{code: SOP for code in DISPOSITIONS},
    # the collector left for their safety: whatever they recorded is kept, nothing more is asked of them
    "ABORTED_SAFETY": EvidenceRule(checkin=False, recording=False, duration=False),
    # the collector never went: a reason and a new date
    "NOT_VISITED": EvidenceRule(checkin=False, recording=False, duration=False),
}


def evidence_rule(code: str | None) -> EvidenceRule:
    """The evidence a report of ``code`` needs; the SOP's while no result is chosen."""
    return EVIDENCE.get(code, SOP) if code is not None else SOP


def codes_without(*, checkin: bool = False, duration: bool = False) -> tuple[str, ...]:
    """The codes a collector may choose before checking in (``checkin``) or before the duration (``duration``)."""
    return tuple(code for code, rule in EVIDENCE.items()
                 if not (checkin and rule.checkin) and not (duration and rule.duration))


# Labels, for extraction: every code, field, choice and next action has a message id.
LABELS = (
    N_("code.PAID"), N_("code.PART"), N_("code.PTP"), N_("code.RTP"), N_("code.DISPUTE"), N_("code.HARDSHIP"),
    N_("code.TPC"), N_("code.NOBODY"), N_("code.MOVED"), N_("code.BAD_ADDR"), N_("code.DECEASED"),
    N_("code.REFUSED_ENTRY"), N_("code.ABORTED_SAFETY"), N_("code.NOT_VISITED"),
    N_("field.amount"), N_("field.channel"), N_("field.next_date"), N_("field.promise_date"), N_("field.reason"),
    N_("field.what"), N_("field.note"), N_("field.relationship"), N_("field.message_left"),
    N_("field.revisit_date"), N_("field.source"), N_("field.new_address"), N_("field.new_date"),
    N_("choice.bank_transfer"), N_("choice.bank_app"), N_("choice.wechat"), N_("choice.alipay"), N_("choice.other"),
    N_("choice.spouse"), N_("choice.parent"), N_("choice.child"), N_("choice.sibling"), N_("choice.relative"),
    N_("choice.colleague"), N_("choice.neighbour"), N_("choice.yes"), N_("choice.no"),
    N_("promise.open"), N_("promise.kept"), N_("promise.broken"),
    N_("next.follow_up"), N_("next.ptp_due"), N_("next.revisit"), N_("next.locate"), N_("next.ptp_check"),
)

MAX_TEXT = 500
# typed answers that mean "the new address is not known" (compared lower-case, without end punctuation)
UNKNOWN_WORDS = frozenset({"不详", "不知道", "未知", "不清楚", "无", "unknown", "not known", "don't know", "dont know",
                           "n/a", "?", "？"})
MAX_DATE_AHEAD = timedelta(days=180)


class AnswerError(ValueError):
    """An answer that does not fit the question; ``key`` is the translated hint to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def field(code: str, name: str) -> Field:
    return next(f for f in DISPOSITIONS[code] if f.name == name)


def next_field(code: str, answers: dict[str, object]) -> Field | None:
    """The first question of ``code`` not answered yet (optional ones count as answered when skipped)."""
    return next((f for f in DISPOSITIONS[code] if f.name not in answers), None)


def check_answer(spec: Field, text: str, *, today: date) -> object:
    """The stored value of a typed answer, or :class:`AnswerError` with the hint to re-ask with."""
    text = text.strip()
    if spec.kind is Kind.AMOUNT:
        amount = parse_amount(text)
        if amount is None or amount <= 0:
            raise AnswerError(N_("visit.hint.amount"))
        if amount > Decimal("100000000"):
            raise AnswerError(N_("visit.hint.amount_large"))
        return str(amount)
    if spec.kind is Kind.DATE:
        day = parse_date(text, today=today)
        if day is None:
            raise AnswerError(N_("visit.hint.date"))
        return check_date(spec, day, today=today).isoformat()
    if spec.kind is Kind.TEXT:
        if not text:
            raise AnswerError(N_("visit.hint.text"))
        return text[:MAX_TEXT]
    if spec.kind is Kind.ADDRESS:
        return check_address(spec, text)
    raise AnswerError(N_("visit.hint.use_buttons"))


def check_address(spec: Field, text: str) -> str:
    """A new address as typed (whitespace tidied), or "" for "unknown" where that is an answer."""
    address = normalize_address(text)
    if spec.unknown and address.lower().rstrip("。.!！") in UNKNOWN_WORDS:
        return ""
    if len(address) < 2 or not any(c.isalpha() for c in address):
        raise AnswerError(N_("visit.hint.address_unknown") if spec.unknown else N_("visit.hint.address"))
    return address[:MAX_TEXT]


def check_date(spec: Field, day: date, *, today: date) -> date:
    if spec.future and day < today:
        raise AnswerError(N_("visit.hint.date_past"))
    if day > today + MAX_DATE_AHEAD:
        raise AnswerError(N_("visit.hint.date_far"))
    return day


def check_choice(spec: Field, value: str) -> str:
    allowed = ("yes", "no") if spec.kind is Kind.YESNO else spec.choices
    if value not in allowed:
        raise AnswerError(N_("error.stale_button"))
    return value


def complete(code: str, answers: dict[str, object]) -> bool:
    return all(f.name in answers for f in DISPOSITIONS[code] if f.required) and next_field(code, answers) is None
