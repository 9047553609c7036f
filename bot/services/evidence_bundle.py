"""A case's evidence bundle for the bank or a court: one ZIP that shows what happened and that it is unaltered.

Inside one folder (``evidence-<case number>/``):

* ``summary.html``: the case, every visit (result code and answers, check-in time, place and distance,
  collector, filing and the review decision, each photo and recording), promises, payments, the
  assignment history and the whole timeline, in Chinese or English; self-contained (inline style, no
  script, nothing fetched), the files linked by their place in the bundle;
* ``evidence/visit-<id>/<kind>-<n><suffix>``: every photo and recording of every visit as received
  (sealed files are opened by :meth:`MediaStore.read`);
* ``audit.jsonl``: the audit entries of the case and of its visits (their evidence included), one JSON
  object a line with the fields the keyed hash covers, ``details`` verbatim, so the office can recompute
  each entry's HMAC with its audit key;
* ``README.txt``: how to check it;
* ``manifest.json``: the SHA-256 and size of every other file, and per photo or recording its Telegram
  file ids, sender, sending and receipt times and the SHA-256 recorded at receipt, whether the file in
  the bundle has that hash, or why it is missing (never downloaded: above the Bot API's 20 MB limit;
  gone from the media store; unreadable);
* ``SHA256SUMS``: every file but itself, for ``sha256sum -c``.

Who may make one: whoever may read the case (``CASE_VIEW``) and whose role may open visit files
(``VISIT_REVIEW``): a team's supervisors, the admin office, the shell. The download is an audit entry
``evidence.bundle`` on the case with the bundle's own SHA-256 (it cannot be inside the bundle it hashes).

:func:`write_bundle` reads (a read transaction is enough) and writes the ZIP to a file, reading and
compressing the media files off the event loop; :func:`record_download` writes the audit entry;
:func:`build_bundle` does both in one session and returns the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import logging
import mimetypes
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from cryptography.exceptions import InvalidTag
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, Translator, translator
from bot.services import audit, case_desk, dispositions, policy, visits
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import current_assignee
from bot.services.masking import mask_name, mask_phone
from bot.services.visit_summary import answer_text
from bot.storage.media import SEALED, MediaCorrupt, MediaStore
from bot.storage.models import Assignment, AuditEntry, Case, Evidence, Payment, Promise, Staff, Visit

log = logging.getLogger(__name__)

FORMAT = "fieldbot-evidence-bundle/1"
AUDIT_ACTION = "evidence.bundle"
SUMMARY, AUDIT_LOG, README, MANIFEST, SUMS = "summary.html", "audit.jsonl", "README.txt", "manifest.json", "SHA256SUMS"
FILE_MODE, DIR_MODE = 0o600, 0o700  # unzipped, the files are the reader's alone, as everything fieldbot writes

# why a photo or recording is not in the bundle
NOT_DOWNLOADED = "not_downloaded"  # above the Bot API's download limit: only its Telegram file id is kept
NOT_IN_STORE = "not_in_media_store"  # stored once, gone from the media folder now
UNREADABLE = "unreadable"  # there, but refused: it does not open, or its bytes lost the SHA-256 of its name
MISSING_LABELS = (N_("bundle.missing.not_downloaded"), N_("bundle.missing.not_in_media_store"),
                  N_("bundle.missing.unreadable"))
DEFAULT_SUFFIX = {"photo": ".jpg", "voice": ".ogg", "audio": ".mp3"}


@dataclass(frozen=True)
class Missing:
    """A photo or recording of the case that is listed in the manifest but not in the bundle."""

    evidence_id: int
    visit_id: int
    kind: str
    reason: str


@dataclass(frozen=True)
class Built:
    """What :func:`write_bundle` wrote."""

    case_id: int
    bank: str
    case_no: str
    root: str  # the folder inside the ZIP
    sha256: str  # of the whole ZIP
    size: int
    lang: str
    files: tuple[str, ...]  # every file in the ZIP (folders aside), in order
    missing: tuple[Missing, ...]
    altered: tuple[int, ...]  # evidence ids whose bytes do not have the SHA-256 recorded at receipt
    audit_entries: int
    audit_through_seq: int  # the chain's head when the bundle was made


@dataclass
class _Gathered:
    """Everything read from the database for one bundle (the files are read later, off the loop)."""

    case: Case
    assignee: Staff | None
    visits: list[Visit]
    evidence: dict[int, list[Evidence]]
    promises: list[Promise]
    payments: list[Payment]
    assignments: list[Assignment]
    timeline: list[str]
    entries: list[AuditEntry]
    head: audit.Head
    names: dict[int, str]
    made_by: StaffView | None
    now: datetime
    tz: ZoneInfo
    t: Translator
    changed_by: str | None


@dataclass
class _Item:
    """One photo or recording as it went into the bundle (or did not)."""

    row: Evidence
    name: str  # its place in the bundle (also when missing: where it would be)
    sha256: str | None = None  # of the bytes in the bundle
    size: int | None = None
    reason: str | None = None  # why it is missing

    @property
    def included(self) -> bool:
        return self.reason is None

    @property
    def matches(self) -> bool | None:
        return None if self.sha256 is None else self.sha256 == self.row.sha256


@dataclass
class _Zip:
    zf: zipfile.ZipFile
    root: str
    stamp: tuple[int, int, int, int, int, int]
    hashes: list[tuple[str, str, int]] = field(default_factory=list)  # (name in the folder, sha256, size)
    folders: set[str] = field(default_factory=set)

    def _info(self, name: str, mode: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.create_system = 3  # Unix, so the mode is honoured by unzip
        info.external_attr = mode << 16
        return info

    def _folder(self, path: PurePosixPath) -> None:
        """The folders of a file, each once and before it, owner-only (0700) as they are unzipped."""
        for folder in reversed(path.parents[:-1]):
            name = f"{folder.as_posix()}/"
            if name not in self.folders:
                self.folders.add(name)
                info = self._info(name, 0o040000 | DIR_MODE)
                info.external_attr |= 0x10  # MS-DOS directory flag
                self.zf.writestr(info, b"")

    def add(self, name: str, data: bytes, *, compress: bool = True) -> str:
        path = PurePosixPath(self.root, name)
        self._folder(path)
        info = self._info(path.as_posix(), 0o100000 | FILE_MODE)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.zf.writestr(info, data)
        digest = hashlib.sha256(data).hexdigest()
        self.hashes.append((name, digest, len(data)))
        return digest


# ---- permission and the audit entry ---------------------------------------------------------------------------


async def allowed(session: AsyncSession, actor: StaffView | None, case_id: int) -> None:
    """Refuse unless ``actor`` may read the case and open visit files: the bundle holds both."""
    await policy.require(session, actor, policy.Action.CASE_VIEW, case_id)
    policy.require_role(actor, policy.Action.VISIT_REVIEW, subject=("case", case_id))


async def record_download(session: AsyncSession, actor: StaffView | None, built: Built, *, now: datetime,
                          by: str | None = None) -> AuditEntry:
    """The audit entry of a bundle handed out: who (``by``: the shell's operator), which case, the bundle's
    SHA-256. The permission is asked again: this may be a write transaction after the read that built it."""
    await allowed(session, actor, built.case_id)
    return await audit.record(session, action=AUDIT_ACTION, object_type="case", object_id=built.case_id,
                              actor_id=actor.id if actor else None, at=now,
                              details={"by": by, "bank": built.bank, "case_no": built.case_no, "sha256": built.sha256,
                                       "size": built.size, "lang": built.lang, "files": len(built.files),
                                       "missing": [m.evidence_id for m in built.missing],
                                       "altered": list(built.altered), "audit_entries": built.audit_entries,
                                       "audit_through_seq": built.audit_through_seq})


# ---- reading ---------------------------------------------------------------------------------------------------


async def _gather(session: AsyncSession, actor: StaffView | None, case_id: int, *, now: datetime, lang: str,
                  calendar: WorkCalendar) -> _Gathered:
    t = translator(lang)  # an unknown language is refused before anything is read
    await allowed(session, actor, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    case_visits = list(await session.scalars(select(Visit).where(Visit.case_id == case_id)
                                             .order_by(Visit.started_at, Visit.id)))
    evidence = {v.id: await visits.evidence_of(session, v.id) for v in case_visits}
    promises = list(await session.scalars(select(Promise).where(Promise.case_id == case_id)
                                          .order_by(Promise.created_at, Promise.id)))
    assignments = list(await session.scalars(select(Assignment).where(Assignment.case_id == case_id)
                                             .order_by(Assignment.assigned_at, Assignment.id)))
    visit_ids = [str(v.id) for v in case_visits]
    entries = list(await session.scalars(select(AuditEntry).where(or_(
        and_(AuditEntry.object_type == "case", AuditEntry.object_id == str(case_id)),
        and_(AuditEntry.object_type == "visit", AuditEntry.object_id.in_(visit_ids)))).order_by(AuditEntry.seq)))
    people: set[int | None] = {case.status_changed_by_id}
    people.update(v.collector_id for v in case_visits)
    people.update(v.reviewed_by_id for v in case_visits)
    people.update(e.sender_id for rows in evidence.values() for e in rows)
    people.update(p.collector_id for p in promises)
    people.update(a.staff_id for a in assignments)
    people.update(a.assigned_by_id for a in assignments)
    wanted = {i for i in people if i is not None}
    names = {i: n for i, n in (await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(wanted))))
             .all()} if wanted else {}
    return _Gathered(
        case=case, assignee=await current_assignee(session, case_id), visits=case_visits, evidence=evidence,
        promises=promises, payments=await case_desk.payments_of(session, case_id), assignments=assignments,
        timeline=[e.render(t, calendar.tz) for e in await case_desk.timeline(session, case, calendar)],
        entries=entries, head=await audit.head(session), names=names, made_by=actor, now=now, tz=calendar.tz, t=t,
        changed_by=names.get(case.status_changed_by_id) if case.status_changed_by_id else None)


def _root(case: Case) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", case.case_no).strip("._") or str(case.id)
    return f"evidence-{safe}"


def _suffix(row: Evidence) -> str:
    if row.path:
        name = PurePosixPath(row.path).name.removesuffix(SEALED)
        suffix = name[64:] if len(name) > 64 else PurePosixPath(name).suffix
        if suffix:
            return suffix
    guessed = mimetypes.guess_extension(row.mime_type or "") or ""
    return {".jpe": ".jpg", ".oga": ".ogg"}.get(guessed, guessed) or DEFAULT_SUFFIX.get(row.kind, ".bin")


def _plan(gathered: _Gathered) -> list[_Item]:
    """Each photo and recording's place in the bundle: ``evidence/visit-<id>/<kind>-<n><suffix>``."""
    items = []
    for visit in gathered.visits:
        counted: dict[str, int] = {}
        for row in gathered.evidence[visit.id]:
            counted[row.kind] = counted.get(row.kind, 0) + 1
            items.append(_Item(row, f"evidence/visit-{visit.id}/{row.kind}-{counted[row.kind]}{_suffix(row)}"))
    return items


def _read(read: Callable[[str], bytes], item: _Item) -> bytes | None:
    row = item.row
    if row.status != "stored" or not row.path:
        item.reason = NOT_DOWNLOADED
        return None
    try:
        data = read(row.path)
    except OSError as exc:
        log.error("evidence %s of visit %s is missing from the media store (%s): %s", row.id, row.visit_id,
                  row.path, exc)
        item.reason = NOT_IN_STORE
        return None
    except (InvalidTag, MediaCorrupt) as exc:  # not served: listed, with the hash the bytes have now
        log.error("evidence %s of visit %s (%s) is refused by the media store: %s", row.id, row.visit_id, row.path,
                  exc)
        item.sha256 = exc.actual if isinstance(exc, MediaCorrupt) else None
        item.reason = UNREADABLE
        return None
    item.sha256, item.size = hashlib.sha256(data).hexdigest(), len(data)
    if item.sha256 != row.sha256:
        log.error("evidence %s of visit %s (%s) no longer has the SHA-256 recorded at receipt", row.id,
                  row.visit_id, row.path)
    return data


# ---- the summary ------------------------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _tag(name: str, text: str, css: str | None = None) -> str:
    """An element holding ``text``, escaped."""
    attribute = f" class=\"{css}\"" if css else ""
    return f"<{name}{attribute}>{_e(text)}</{name}>"


def _when(g: _Gathered, moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return str(format_datetime(moment, format="medium", tzinfo=g.tz, locale=g.t.locale))


def _who(g: _Gathered, staff_id: int | None) -> str:
    return g.names.get(staff_id, f"#{staff_id}") if staff_id is not None else g.t("desk.system")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """A table of already escaped cells."""
    if not rows:
        return _tag("p", empty, "none")
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    """A two-column table of a label and an already escaped value."""
    return "<table class=\"fields\"><tbody>" + "".join(
        f"<tr><th>{_e(label)}</th><td>{value}</td></tr>" for label, value in pairs) + "</tbody></table>"


def _answers(g: _Gathered, visit: Visit) -> str:
    t, answers = g.t, visits.answers_of(visit)
    if not visit.code or not answers:
        return "-"
    lines = []
    specs = dispositions.DISPOSITIONS.get(visit.code, ())
    for spec in specs:
        if spec.name in answers:
            value = answer_text(t, visit.code, spec.name, answers[spec.name])
            lines.append(f"{_e(t(f'field.{spec.name}'))}: {_e(value)}")
    known = {spec.name for spec in specs}
    lines.extend(f"{_e(name)}: {_e(value)}" for name, value in answers.items() if name not in known)
    return "<br>".join(lines) or "-"


def _checkin(g: _Gathered, visit: Visit) -> list[tuple[str, str]]:
    t = g.t
    if visit.checkin_at is None:
        return [(t("bundle.visit.checkin"), _e(t("bundle.visit.no_checkin")))]
    place = "-"
    if visit.checkin_lat is not None and visit.checkin_lon is not None:
        place = f"{visit.checkin_lat:.6f}, {visit.checkin_lon:.6f} (WGS-84)"
    distance = t("summary.distance", meters=int(visit.checkin_distance_m)) \
        if visit.checkin_distance_m is not None else t("summary.no_coordinates")
    if visit.checkin_flagged:
        distance += " " + t("summary.far_away")
    return [(t("bundle.visit.checkin"), _e(_when(g, visit.checkin_at))), (t("bundle.visit.place"), _e(place)),
            (t("bundle.visit.distance"), _e(distance))]


def _review(g: _Gathered, visit: Visit) -> str:
    t = g.t
    if visit.reviewed_at is None:
        return _e(t("bundle.visit.not_reviewed"))
    text = t("bundle.visit.reviewed", decision=t(f"desk.visit_status.{visit.status}"),
             by=_who(g, visit.reviewed_by_id), at=_when(g, visit.reviewed_at))
    if visit.review_comment:
        text += " · " + t("bundle.visit.comment", comment=visit.review_comment)
    return _e(text)


def _file_cell(g: _Gathered, item: _Item) -> str:
    if not item.included:
        cell = _tag("span", g.t(f"bundle.missing.{item.reason}"), "missing")
        return cell + "<br>" + _tag("span", g.t("bundle.altered"), "missing") if item.matches is False else cell
    link = f"<a href=\"{_e(item.name)}\">{_e(item.name)}</a>"
    if item.matches is False:
        link += "<br>" + _tag("span", g.t("bundle.altered"), "missing")
    return link


def _evidence_table(g: _Gathered, items: Sequence[_Item]) -> str:
    t = g.t
    rows = [[_file_cell(g, i), _e(t(f"evidence.kind.{i.row.kind}")), _e(_when(g, i.row.sent_at)),
             _e(_when(g, i.row.stored_at)), _e(_who(g, i.row.sender_id)),
             f"<code>{_e(i.row.sha256 or '-')}</code>"] for i in items]
    return _table([t("bundle.col.file"), t("bundle.col.kind"), t("bundle.col.sent"), t("bundle.col.received"),
                   t("bundle.col.sender"), t("bundle.col.sha256")], rows, t("bundle.none"))


def _visit_section(g: _Gathered, visit: Visit, items: Sequence[_Item]) -> str:
    t = g.t
    pairs = [(t("bundle.visit.collector"), _e(_who(g, visit.collector_id))),
             (t("bundle.visit.status"), _e(t(f"desk.visit_status.{visit.status}"))),
             (t("bundle.visit.started"), _e(_when(g, visit.started_at))), *_checkin(g, visit),
             (t("bundle.visit.planned"), _e(t("bundle.minutes", minutes=visit.planned_minutes))
              if visit.planned_minutes else "-"),
             (t("bundle.visit.code"), _e(t(f"code.{visit.code}")) if visit.code else "-"),
             (t("bundle.visit.answers"), _answers(g, visit)),
             (t("bundle.visit.filed"), _e(t("bundle.visit.filed_at", at=_when(g, visit.filed_at),
                                            revision=visit.revision)) if visit.filed_at else "-"),
             (t("bundle.visit.review"), _review(g, visit))]
    return (f"<section class=\"visit\" id=\"visit-{visit.id}\">" + _tag("h3", t("bundle.visit.head", id=visit.id))
            + _fields(pairs) + _tag("h4", t("bundle.visit.evidence")) + _evidence_table(g, items) + "</section>")


STYLE = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
 margin:2em auto;max-width:60em;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #999;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:.3em .5em;
 text-align:left;vertical-align:top}th{background:#f0f0f0}table.fields th{width:12em}
code{font-size:.8em;word-break:break-all}.missing{color:#a00}.none,.note{color:#555}
@media print{a{color:inherit;text-decoration:none}section.visit{break-inside:avoid}}
"""


def summary_html(g: _Gathered, items: Sequence[_Item]) -> str:
    """The bundle's summary page (escaped throughout; nothing outside the page is fetched)."""
    t, case = g.t, g.case
    maker = g.made_by.name if g.made_by is not None else t("bundle.by_shell")
    head = [t("desk.head", case_no=case.case_no, bank=case.bank, status=t("desk.status." + case.status)),
            t("card.debtor", debtor=mask_name(case.debtor_name), id=case.id_number_masked or "-",
              phone=mask_phone(case.phone)),
            t("card.address", address=case.address),
            t("card.amount", amount=t.money(case.amount_due),
              days=case.overdue_days if case.overdue_days is not None else "-"),
            t("desk.assignee", name=g.assignee.name if g.assignee else "-", team=case.team or "-")]
    if case.status_reason:
        head.append(t("desk.reason", reason=case.status_reason, by=g.changed_by or "-",
                      at=_when(g, case.status_changed_at)))
    by_visit: dict[int, list[_Item]] = {}
    for item in items:
        by_visit.setdefault(item.row.visit_id, []).append(item)
    visit_html = "".join(_visit_section(g, v, by_visit.get(v.id, [])) for v in g.visits) \
        or _tag("p", t("bundle.none"), "none")
    promises = _table([t("bundle.col.made"), t("bundle.col.collector"), t("bundle.col.amount"), t("bundle.col.due"),
                       t("bundle.col.status"), t("bundle.col.paid")],
                      [[_e(_when(g, p.created_at)), _e(_who(g, p.collector_id)), _e(t.money(p.amount_fen / 100)),
                        _e(t.date(p.due_on)), _e(t(f"promise.{p.status}")), _e(t.money(p.paid_fen / 100))]
                       for p in g.promises], t("bundle.none"))
    payments = _table([t("bundle.col.paid_on"), t("bundle.col.amount"), t("bundle.col.channel"),
                       t("bundle.col.reference")],
                      [[_e(t.date(p.paid_on)), _e(t.money(p.amount_fen / 100)), _e(p.channel or "-"),
                        _e(p.reference or "-")] for p in g.payments], t("bundle.none"))
    assignments = _table([t("bundle.col.collector"), t("bundle.col.from"), t("bundle.col.until"), t("bundle.col.by"),
                          t("bundle.col.reason")],
                         [[_e(_who(g, a.staff_id)), _e(_when(g, a.assigned_at)),
                           _e(_when(g, a.ended_at) if a.ended_at else t("bundle.current")),
                           _e(_who(g, a.assigned_by_id)), _e(a.reason or "-")] for a in g.assignments],
                         t("bundle.none"))
    timeline = "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in g.timeline) + "</ul>" if g.timeline \
        else _tag("p", t("desk.timeline_empty"), "none")
    lang = "zh-CN" if t.locale == "zh_CN" else t.locale
    title = t("bundle.title", case_no=case.case_no, bank=case.bank)
    return "".join([
        f"<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src 'self'; media-src 'self'\">",
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _tag("p", t("bundle.made", at=_when(g, g.now), by=maker, tz=str(g.tz)), "note"),
        _tag("h2", t("bundle.section.case")), "<p>" + "<br>".join(_e(line) for line in head) + "</p>",
        _tag("h2", t("bundle.section.visits")), visit_html,
        _tag("h2", t("bundle.section.promises")), promises,
        _tag("h2", t("bundle.section.payments")), payments,
        _tag("h2", t("bundle.section.assignments")), assignments,
        _tag("h2", t("bundle.section.timeline")), timeline,
        _tag("h2", t("bundle.section.verify")),
        _tag("p", t("bundle.verify_note", audit=len(g.entries), readme=README, manifest=MANIFEST, sums=SUMS)),
        "</body></html>\n",
    ])


# ---- the other files ----------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment is not None else None


def audit_lines(entries: Sequence[AuditEntry]) -> bytes:
    """One JSON object a line: exactly the fields :func:`bot.services.audit.entry_hash` covers, and the hashes."""
    lines = [json.dumps({"seq": e.seq, "at": _iso(e.at), "actor_id": e.actor_id, "action": e.action,
                         "object_type": e.object_type, "object_id": e.object_id, "details": e.details,
                         "prev_hash": e.prev_hash, "hash": e.hash}, ensure_ascii=False, sort_keys=True)
             for e in entries]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def readme_text(g: _Gathered, root: str) -> str:
    t, case = g.t, g.case
    parts = [t("bundle.readme.head", case_no=case.case_no, bank=case.bank, at=_when(g, g.now)),
             t("bundle.readme.contents", summary=SUMMARY, audit=AUDIT_LOG, manifest=MANIFEST, sums=SUMS),
             t("bundle.readme.sums", root=root, sums=SUMS),
             t("bundle.readme.manifest", manifest=MANIFEST),
             t("bundle.readme.bundle", action=AUDIT_ACTION),
             t("bundle.readme.audit", audit=AUDIT_LOG)]
    return "\n\n".join(p.strip() for p in parts).replace("\r\n", "\n") + "\n"


def _manifest(g: _Gathered, items: Sequence[_Item], hashes: Sequence[tuple[str, str, int]], root: str) -> bytes:
    case = g.case
    evidence = [{
        "evidence_id": i.row.id, "visit_id": i.row.visit_id, "kind": i.row.kind, "mime_type": i.row.mime_type,
        "file": i.name if i.included else None, "status": "included" if i.included else "missing",
        "reason": i.reason, "sha256": i.sha256, "size": i.size if i.included else i.row.size,
        "sha256_at_receipt": i.row.sha256, "matches_receipt": i.matches,
        "telegram_file_id": i.row.file_id, "telegram_file_unique_id": i.row.file_unique_id,
        "sender": {"staff_id": i.row.sender_id, "name": g.names.get(i.row.sender_id)},
        "sent_at": _iso(i.row.sent_at), "received_at": _iso(i.row.stored_at),
    } for i in items]
    body = {
        "format": FORMAT,
        "case": {"id": case.id, "bank": case.bank, "case_no": case.case_no},
        "made_at": _iso(g.now), "lang": g.t.locale, "time_zone": str(g.tz),
        "made_by": {"staff_id": g.made_by.id, "name": g.made_by.name, "role": g.made_by.role.value}
        if g.made_by is not None else None,
        "root": root,
        "files": [{"path": name, "sha256": digest, "size": size} for name, digest, size in hashes],
        "evidence": evidence,
        "audit": {"file": AUDIT_LOG, "entries": len(g.entries), "keyed": "HMAC-SHA-256",
                  "chain_head": {"seq": g.head.seq, "hash": g.head.hash}},
        "not_listed_here": [MANIFEST, SUMS],
    }
    return (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _write_zip(g: _Gathered, read: Callable[[str], bytes], items: list[_Item],
               out: IO[bytes]) -> tuple[str, int, list[str]]:
    """Write the whole ZIP to ``out`` (blocking: run off the loop); (its SHA-256, its size, its names)."""
    root = _root(g.case)
    local = g.now.astimezone(g.tz)
    stamp = (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)
    start = out.tell()
    with zipfile.ZipFile(out, "w") as zf:
        bundle = _Zip(zf, root, stamp)
        for item in items:
            data = _read(read, item)
            if data is not None:
                bundle.add(item.name, data, compress=False)  # photos and recordings are compressed already
        bundle.add(SUMMARY, summary_html(g, items).encode("utf-8"))
        bundle.add(AUDIT_LOG, audit_lines(g.entries))
        bundle.add(README, readme_text(g, root).encode("utf-8"))
        manifest = _manifest(g, items, list(bundle.hashes), root)
        bundle.add(MANIFEST, manifest)
        sums = "".join(f"{digest}  {name}\n" for name, digest, _ in bundle.hashes)
        bundle.add(SUMS, sums.encode("utf-8"))
        names = [f"{root}/{name}" for name, _, _ in bundle.hashes]
    out.flush()
    end = out.tell()
    out.seek(start)
    digest = hashlib.sha256()
    remaining = end - start
    while remaining > 0:
        chunk = out.read(min(remaining, 1024 * 1024))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    out.seek(end)
    return digest.hexdigest(), end - start, names


# ---- the entry points ---------------------------------------------------------------------------------------------


async def write_bundle(session: AsyncSession, media: MediaStore, actor: StaffView | None, case_id: int,
                       out: IO[bytes], *, now: datetime, lang: str, calendar: WorkCalendar) -> Built:
    """Write the case's bundle to ``out`` (a seekable, readable binary file), if ``actor`` may have it.

    Reads only; the download's audit entry is :func:`record_download`'s. The media files are read and
    the ZIP compressed in a worker thread.
    """
    gathered = await _gather(session, actor, case_id, now=now, lang=lang, calendar=calendar)
    items = _plan(gathered)
    loop = asyncio.get_running_loop()

    def read(path: str) -> bytes:  # in the worker thread: one file at a time, from the loop's media store
        return asyncio.run_coroutine_threadsafe(media.read(path), loop).result()

    digest, size, names = await asyncio.to_thread(_write_zip, gathered, read, items, out)
    case = gathered.case
    return Built(case_id=case.id, bank=case.bank, case_no=case.case_no, root=_root(case), sha256=digest, size=size,
                 lang=lang, files=tuple(names),
                 missing=tuple(Missing(i.row.id, i.row.visit_id, i.row.kind, i.reason) for i in items
                               if i.reason is not None),
                 altered=tuple(i.row.id for i in items if i.matches is False),
                 audit_entries=len(gathered.entries), audit_through_seq=gathered.head.seq)


async def build_bundle(session: AsyncSession, media: MediaStore, actor: StaffView | None, case_id: int, *,
                       now: datetime, lang: str, calendar: WorkCalendar) -> bytes:
    """The case's bundle as bytes, and its audit entry, in the caller's (write) transaction.

    ``actor`` None is the shell. :class:`~bot.services.errors.Forbidden` or
    :class:`~bot.services.errors.NotFound` before anything is read.
    """
    buffer = io.BytesIO()
    built = await write_bundle(session, media, actor, case_id, buffer, now=now, lang=lang, calendar=calendar)
    await record_download(session, actor, built, now=now)
    return buffer.getvalue()
