"""Every multi-step conversation's steps, one enum per flow; the enum's class names its flow.

A saved flow state (``flow_states``) is a flow name and a step. Handlers route on them with
``AtStep(VisitStep.FIELD)`` and services save them with ``flows.enter(session, staff_id, VisitStep.FIELD, ...)``,
so the set of steps is declared here once and a typo is an ``AttributeError``, not a silent non-match.
No Telegram import here: services use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Step(StrEnum):
    """A step of one flow. Subclasses set ``FLOW`` (the name stored in ``flow_states.flow``)."""

    FLOW: ClassVar[str]

    @property
    def flow(self) -> str:
        return type(self).FLOW

    def __eq__(self, other: object) -> bool:
        # Two flows may both have a "note" step: they are different steps.
        if isinstance(other, Step):
            return type(self) is type(other) and self.value == other.value
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self).FLOW, self.value))


class VisitStep(Step):
    LOCATION = "location"
    DURATION = "duration"
    DURATION_CUSTOM = "duration_custom"
    CODE = "code"
    FIELD = "field"
    EVIDENCE = "evidence"
    CONFIRM = "confirm"


class ReviewStep(Step):
    COMMENT = "comment"


class ExtensionStep(Step):
    REASON = "reason"
    DATE = "date"


class AssignStep(Step):
    CONFIRM = "confirm"
    AREA = "area"
    AREA_COLLECTOR = "area_collector"


class HandoverStep(Step):
    SUCCESSORS = "successors"
    NOTE = "note"
    FLAG = "flag"
    STAND_IN_NOTE = "stand_in_note"


class InviteStep(Step):
    ROLE = "role"
    TEAM = "team"
    SUPERVISOR = "supervisor"
    NAME = "name"


class DeskStep(Step):
    RESULTS = "results"  # a /case search's hits, paged (the query is kept)
    REASSIGN_REASON = "reassign_reason"  # the reason for moving one or more cases to a collector
    STATUS_REASON = "status_reason"  # the reason for putting a case on hold, closing or reopening it


class IntakeStep(Step):
    TEAM = "team"  # a case file sent without naming its team: which team's supervisor assigns it


class BankAlertStep(Step):
    NOTE = "note"  # what happened, in the admin's words (the reason was a button)


class LetterStep(Step):
    SENT = "sent"  # the day the letter was posted
    TRACKING = "tracking"  # its tracking number
    SIGNED = "signed"  # the day the debtor signed for it


class SpecialStep(Step):
    REASON = "reason"  # why the procedure is needed (the kind was a button)
    RESULT = "result"  # the result it is closed with


class ToFieldStep(Step):
    NOTE = "note"


class FlagStep(Step):
    REASON = "reason"  # why the default looks malicious, and what the collector suggests


class ResolveStep(Step):
    NOTE = "note"


class SafeStep(Step):
    PIN = "pin"


class BranchReportStep(Step):
    COMMENT = "comment"  # why a branch report goes back to its supervisor


class PinStep(Step):
    CURRENT = "current"
    SAFETY = "safety"
    DURESS = "duress"


for _cls, _name in ((VisitStep, "visit"), (ReviewStep, "review"), (ExtensionStep, "extension"),
                    (AssignStep, "assign"), (HandoverStep, "handover"), (ToFieldStep, "tofield"),
                    (ResolveStep, "resolve"), (SafeStep, "safe"), (PinStep, "pin"),
                    (InviteStep, "invite"), (DeskStep, "desk"), (IntakeStep, "intake"),
                    (BankAlertStep, "bankalert"), (LetterStep, "letter"), (SpecialStep, "special"),
                    (FlagStep, "flag"), (BranchReportStep, "branch_report")):
    _cls.FLOW = _name  # an enum's class attribute set after creation: not a member

FLOWS: dict[str, type[Step]] = {cls.FLOW: cls for cls in Step.__subclasses__()}


def step_of(flow: str, step: str) -> Step | None:
    """The declared step a saved state names, or None for a state no flow knows (an old version's)."""
    cls = FLOWS.get(flow)
    if cls is None:
        return None
    try:
        return cls(step)
    except ValueError:
        return None
