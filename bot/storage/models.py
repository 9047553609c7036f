"""SQLAlchemy 2 typed models: the database is the source of truth for everything fieldbot knows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class Role(StrEnum):
    COLLECTOR = "collector"
    PHONE_COLLECTOR = "phone_collector"
    SUPERVISOR = "supervisor"
    TEAM_LEAD = "team_lead"
    ADMIN = "admin"
    MANAGER = "manager"  # 公司经理: a branch's manager, reads every team of the branch
    HQ = "hq"  # head office: reads every branch


class CaseStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    VISITED = "visited"
    PROMISED = "promised"
    PAID = "paid"
    DISPUTED = "disputed"
    ON_HOLD = "on_hold"  # parked by a supervisor (with a reason): off the visit lists and deadlines
    CLOSED = "closed"


class Portfolio(StrEnum):
    """The line of business a case belongs to (the import's 产品 / 业务类型 / portfolio column)."""

    CREDIT_CARD = "credit_card"
    STUDENT_LOAN = "student_loan"
    RECEIVABLES = "receivables"


class VisitStatus(StrEnum):
    DRAFT = "draft"  # being filled in on the collector's phone
    FILED = "filed"  # waiting for the supervisor's review
    RETURNED = "returned"  # sent back with a comment, to amend and file again
    APPROVED = "approved"


class PromiseStatus(StrEnum):
    OPEN = "open"
    KEPT = "kept"  # paid in full by the promised date
    PARTLY_KEPT = "partial"  # some of it paid by the promised date
    BROKEN = "broken"


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(20))
    team: Mapped[str | None] = mapped_column(String(50), index=True)
    # the branch (分公司) a person works for; a team's branch is its supervisor's
    branch: Mapped[str | None] = mapped_column(String(50), index=True)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime]
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_location_at: Mapped[datetime | None]
    safety_pin_hash: Mapped[str | None] = mapped_column(String(200))
    duress_pin_hash: Mapped[str | None] = mapped_column(String(200))

    supervisor: Mapped[Staff | None] = relationship(remote_side=[id])


class Invite(Base):
    """A single-use invite. Only the SHA-256 of the code is stored, never the code."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_telegram_id: Mapped[int | None] = mapped_column(BigInteger)


class InviteFailure(Base):
    """A wrong, expired or reused code sent by a Telegram account (for the lock-out)."""

    __tablename__ = "invite_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(20))


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("bank", "case_no", name="uq_cases_bank_case_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank: Mapped[str] = mapped_column(String(100))
    case_no: Mapped[str] = mapped_column(String(64))
    debtor_name: Mapped[str] = mapped_column(String(100))
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    amount_due_fen: Mapped[int] = mapped_column(BigInteger)
    overdue_days: Mapped[int | None] = mapped_column(Integer)
    entrusted_on: Mapped[date | None] = mapped_column(Date)
    contract_end: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.NEW, index=True)
    team: Mapped[str | None] = mapped_column(String(50), index=True)
    portfolio: Mapped[str] = mapped_column(String(20), default=Portfolio.CREDIT_CARD,
                                           server_default=Portfolio.CREDIT_CARD.value)
    visit_due_at: Mapped[datetime | None]
    assign_due_at: Mapped[datetime | None] = mapped_column(index=True)
    unassigned_reported_at: Mapped[datetime | None]
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    next_action: Mapped[str | None] = mapped_column(String(20))
    next_action_on: Mapped[date | None] = mapped_column(Date, index=True)
    visit_done_at: Mapped[datetime | None]
    visit_overdue_at: Mapped[datetime | None] = mapped_column(index=True)
    # why the case is in its status (on hold; closed: paid_in_full, recalled, or the supervisor's words), when, by whom
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None]
    status_changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def amount_due(self) -> Decimal:
        return (Decimal(self.amount_due_fen) / 100).quantize(Decimal("0.01"))


class Assignment(Base):
    """Who works a case, kept as history: the current one has ``ended_at`` empty."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index(
            "uq_assignments_current_case",
            "case_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        # a collector's current cases (the visit list): read from the index alone
        Index(
            "ix_assignments_current_staff",
            "staff_id",
            "case_id",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    assigned_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only, hash-chained audit log: each row carries the hash of the row before it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class InboxEntry(Base):
    """An update (or media file) whose effect has been applied: a replay finds it and changes nothing."""

    __tablename__ = "inbox"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime]


class OutboxMessage(Base):
    """A message that must arrive. It is a row first; the outbox sweep sends it and marks it sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "priority", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    method: Mapped[str] = mapped_column(String(32), default="sendMessage")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The sender that took the row (an ``Instance.id``) and when; valid while that instance's heartbeat
    # is fresh. Kept on a sent row as a record of who sent it.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]


class CaseImport(Base):
    """One bank file taken in: when it arrived, when it was done, what it did, where the original is kept."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="cases", server_default="cases")  # cases | payments | recall
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(16))
    default_bank: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(50))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    received_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class GeocodeResult(Base):
    """A cached geocoder answer for one address (a miss is cached too, with no coordinates)."""

    __tablename__ = "geocode_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(500), unique=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    provider: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]


class FlowState(Base):
    """Where a person is in a multi-step conversation, saved at every step (survives restarts)."""

    __tablename__ = "flow_states"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class Visit(Base):
    """One field visit and its report: check-in, result, evidence, filing and review."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("uq_visits_open_per_case", "case_id", "collector_id", unique=True,
              sqlite_where=text("status IN ('draft', 'returned')"),
              postgresql_where=text("status IN ('draft', 'returned')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=VisitStatus.DRAFT, index=True)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    checkin_at: Mapped[datetime | None]
    checkin_lat: Mapped[float | None] = mapped_column(Float)
    checkin_lon: Mapped[float | None] = mapped_column(Float)
    checkin_distance_m: Mapped[float | None] = mapped_column(Float)
    checkin_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    planned_minutes: Mapped[int | None] = mapped_column(Integer)
    safety_due_at: Mapped[datetime | None] = mapped_column(index=True)
    safety_prompted_at: Mapped[datetime | None]
    code: Mapped[str | None] = mapped_column(String(20))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    action_date: Mapped[date | None] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filed_at: Mapped[datetime | None]
    revision: Mapped[int] = mapped_column(Integer, default=0)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(Integer)


class Evidence(Base):
    """A photo or recording sent during a visit; the file itself is in the media store by SHA-256."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("visit_id", "file_unique_id", name="uq_evidence_visit_file"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # photo | voice | audio
    status: Mapped[str] = mapped_column(String(12))  # stored | too_big
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(100))
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(100))
    sender_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    sent_at: Mapped[datetime]
    stored_at: Mapped[datetime]


class Promise(Base):
    """A promise to pay (PTP) made on a visit; followed up the working day after its date."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(10), default=PromiseStatus.OPEN, index=True)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # paid by the date, per the bank
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class Reminder(Base):
    """A message due at a moment: a deadline reminder, an overdue notice, a re-sent request.

    The deadline sweep finds due rows, queues their messages and marks them done in one transaction.
    ``key`` makes scheduling idempotent: the same reminder for the same deadline exists once.
    """

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_pending", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    extension_id: Mapped[int | None] = mapped_column(ForeignKey("extension_requests.id"))
    # a reminder of a phone collector's field request (/tofield) goes to that request's field collector
    field_request_id: Mapped[int | None] = mapped_column(ForeignKey("field_requests.id"))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # sent | skipped | cancelled


class ExtensionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ExtensionRequest(Base):
    """A collector asks for more time for a visit; the supervisor decides."""

    __tablename__ = "extension_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    proposed_on: Mapped[date] = mapped_column(Date)
    old_due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10), default=ExtensionStatus.PENDING, index=True)
    created_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    times_sent: Mapped[int] = mapped_column(Integer, default=1)


class BranchReport(Base):
    """A supervisor's monthly team report awaiting the approval of a manager of its branch and of head office."""

    __tablename__ = "branch_reports"
    __table_args__ = (UniqueConstraint("team", "period_start", name="uq_branch_reports_team_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(50))
    branch: Mapped[str | None] = mapped_column(String(50))
    period_start: Mapped[date] = mapped_column(Date)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | approved | returned
    created_at: Mapped[datetime]
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    manager_at: Mapped[datetime | None]
    hq_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    hq_at: Mapped[datetime | None]
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    returned_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)


class ReportRun(Base):
    """A periodic report that went out: one row per kind and period, so it is sent exactly once."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("kind", "period_start", name="uq_report_runs_kind_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # weekly | monthly
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]


class SweepLease(Base):
    """Which process runs the sweeps: held for a short time and renewed, taken over when it lapses."""

    __tablename__ = "sweep_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class Instance(Base):
    """A running bot process and its heartbeat (written every second): outbox claims of an instance
    whose heartbeat has gone stale are taken over by the others."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class IncidentStatus(StrEnum):
    OPEN = "open"  # raised, nobody owns it yet: it escalates
    ACKNOWLEDGED = "acknowledged"  # someone owns it and is reminded until it is resolved
    RESOLVED = "resolved"


class Incident(Base):
    """An emergency: SOS, a missed safety check-in, or a duress PIN. Its timers are columns, swept."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    reason: Mapped[str] = mapped_column(String(20))  # sos | missed_checkin
    status: Mapped[str] = mapped_column(String(14), default=IncidentStatus.OPEN, index=True)
    raised_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    level: Mapped[int] = mapped_column(Integer, default=1)
    rounds: Mapped[int] = mapped_column(Integer, default=1)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # the owner's copy of the collector's live location: one message, edited as the collector moves
    owner_location_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_location_message_id: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_at: Mapped[datetime | None]
    next_ping_at: Mapped[datetime | None] = mapped_column(index=True)
    first_delivered_at: Mapped[datetime | None]
    duress: Mapped[bool] = mapped_column(Boolean, default=False)
    collector_safe_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    location_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class IncidentEvent(Base):
    """One step on an incident's timeline: raised, delivered (to whom, when), retried, acknowledged, ..."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HandoverStatus(StrEnum):
    COLLECTING = "collecting"  # the departing collector confirms or notes each item
    LEAD_REVIEW = "lead_review"  # the team lead confirms, reassigns, or flags a problem
    RECEIVING = "receiving"  # the successors acknowledge their cases
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Handover(Base):
    """A collector's departure: their open cases pass to successors under the team lead's eye."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str] = mapped_column(String(12), default=HandoverStatus.COLLECTING, index=True)
    started_at: Mapped[datetime]
    last_day: Mapped[date | None] = mapped_column(Date)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # open incidents etc. at the start
    departing_confirmed_at: Mapped[datetime | None]
    lead_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lead_confirmed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)


class HandoverItem(Base):
    """One open case on a handover list, with what was open on it and who takes it over."""

    __tablename__ = "handover_items"
    __table_args__ = (UniqueConstraint("handover_id", "case_id", name="uq_handover_items_case"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handovers.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    successor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    departing_status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | noted
    departing_note: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime | None]
    previous_due_at: Mapped[datetime | None]


class HandoverIssue(Base):
    """A problem the team lead flagged; the supervisor decides, and until then nothing passes."""

    __tablename__ = "handover_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handovers.id"), index=True)
    raised_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    note: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(10))  # continue | cancel


class FieldRequest(Base):
    """A phone collector puts one of their cases on a field collector's visit list; the result comes back."""

    __tablename__ = "field_requests"
    __table_args__ = (
        # the open requests of a field collector (their visit list)
        Index("ix_field_requests_open", "field_collector_id", "case_id",
              sqlite_where=text("done_at IS NULL"), postgresql_where=text("done_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    field_collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # the hand-off starts the field visit's 2-working-day window, like an assignment
    visit_due_at: Mapped[datetime | None]
    visit_overdue_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))


class DayPlan(Base):
    """A field collector's plan of the day (the route order), filed with their supervisor once per working day."""

    __tablename__ = "day_plans"
    __table_args__ = (UniqueConstraint("collector_id", "day", name="uq_day_plans_collector_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collector_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    day: Mapped[date] = mapped_column(Date)
    case_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # in the order of the route
    filed_at: Mapped[datetime]


class Target(Base):
    """A target set with ``fieldbot target set``: a portfolio's default rate, or a month's recovered amount.

    Exactly one of ``portfolio`` (with ``default_rate_pct``), ``collector_id`` or ``team`` (with ``month``
    and ``recovered_fen``) says whose target it is; setting it again replaces the value.
    """

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio: Mapped[str | None] = mapped_column(String(20))
    collector_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    team: Mapped[str | None] = mapped_column(String(50))
    month: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM; none: standing (a default rate)
    default_rate_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    recovered_fen: Mapped[int | None] = mapped_column(BigInteger)
    set_at: Mapped[datetime]


class Backup(Base):
    """One run of ``fieldbot backup``: what it copied where, the manifest's hash, or why it failed."""

    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(primary_key=True)
    backup_id: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10))  # running | ok | failed
    targets: Mapped[list[str]] = mapped_column(JSON, default=list)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(Integer, default=0)
    bytes_copied: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class LegalHold(Base):
    """A hold on one case's material: while it is not released, the retention purge leaves the case alone."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))
    release_reason: Mapped[str | None] = mapped_column(Text)


class PurgedCase(Base):
    """The tombstone of a case whose material was purged after its retention period: what went, and when."""

    __tablename__ = "purged_cases"
    __table_args__ = (Index("ix_purged_cases_bank_case_no", "bank", "case_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank: Mapped[str] = mapped_column(String(100))
    case_no: Mapped[str] = mapped_column(String(64))
    contract_end: Mapped[date | None] = mapped_column(Date)
    entrusted_on: Mapped[date | None] = mapped_column(Date)
    case_created_at: Mapped[datetime | None]
    keep_until: Mapped[date] = mapped_column(Date)
    purged_at: Mapped[datetime]
    rows: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # table -> rows deleted
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # sha256, kind, deleted or kept


class Outage(Base):
    """A time the bot was down: from the last heartbeat before the gap to when a process came back.

    The SOP's 12-hour repair clock starts at ``down_since``; ``repair_due_at`` is that plus 12 hours."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(primary_key=True)
    down_since: Mapped[datetime] = mapped_column(unique=True)
    back_at: Mapped[datetime]
    repair_due_at: Mapped[datetime]
    notified_at: Mapped[datetime | None]


class Payment(Base):
    """Money the debtor paid the bank, from the bank's repayment file: it settles promises and closes paid cases.

    ``row_key`` (SHA-256 of bank, case number, amount, date, channel and the bank's reference) makes a
    row imported twice, or twice in one file, one payment."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date, index=True)
    channel: Mapped[str | None] = mapped_column(String(40))
    reference: Mapped[str | None] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Bank(Base):
    """A bank the agency works for and its current agreement: the dates, whom to call day to day and in an
    emergency. Cases name their bank by ``Case.bank`` (the bank's name as its files spell it): the link is
    that name, so cases imported before the bank was registered link at once and nothing needs backfilling."""

    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    agreement_no: Mapped[str] = mapped_column(String(64))
    agreement_start: Mapped[date] = mapped_column(Date)
    agreement_end: Mapped[date] = mapped_column(Date)
    routine_contact: Mapped[str] = mapped_column(Text)
    emergency_contact: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BankAlert(Base):
    """A report to the bank's emergency contact about one case (the debtor acting against the bank's
    interests, force majeure), with the contact as it was when reported."""

    __tablename__ = "bank_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))
    reason: Mapped[str] = mapped_column(String(20))  # against_interest | force_majeure
    note: Mapped[str] = mapped_column(Text)
    emergency_contact: Mapped[str] = mapped_column(Text)
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reported_at: Mapped[datetime]


class LetterStatus(StrEnum):
    SENT = "sent"  # posted, no answer from the post office yet
    SIGNED = "signed"
    REFUSED = "refused"
    UNDELIVERABLE = "undeliverable"


class Letter(Base):
    """A final notice by registered letter and its 10-day term (calendar days, see bot/services/letters.py).

    ``remind_at`` (2 days before the term ends) and ``expires_at`` (the end of its last day) are the
    due times the letter sweep looks at; ``reminded_at`` / ``expired_at`` mark them handled."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    sent_on: Mapped[date] = mapped_column(Date)
    tracking_no: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(14), default=LetterStatus.SENT, index=True)
    signed_on: Mapped[date | None] = mapped_column(Date)
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    expired_at: Mapped[datetime | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SpecialStatus(StrEnum):
    PENDING = "pending"  # applied for, the supervisor decides
    APPROVED = "approved"  # the admin office arranges the resources
    REJECTED = "rejected"
    ARRANGED = "arranged"  # resources arranged: the procedure runs until it is closed with a result
    CLOSED = "closed"


class SpecialProcedure(Base):
    """A special procedure on a case (legal action, a third party's help, the bank's special request):
    applied for by its collector, decided by the supervisor, arranged by the admin office, closed with a result."""

    __tablename__ = "special_procedures"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # legal | third_party | bank_request
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=SpecialStatus.PENDING, index=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    applied_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None]
    arranged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    arranged_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
