"""The text of a visit report, in the reader's language: for the collector's confirmation and the review."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.i18n import Translator
from bot.services import dispositions
from bot.services.dispositions import Kind
from bot.storage.models import Case, Evidence, Visit


def answer_text(t: Translator, code: str, name: str, value: object) -> str:
    spec = dispositions.field(code, name)
    if spec.unknown and value == "":
        return t("visit.unknown")
    if value is None or value == "":
        return "-"
    if spec.kind is Kind.AMOUNT:
        return t.money(Decimal(str(value)))
    if spec.kind in (Kind.CHOICE, Kind.YESNO):
        return t(f"choice.{value}")
    if spec.kind is Kind.DATE:
        return t.date(date.fromisoformat(str(value)))
    return str(value)


def summary_text(t: Translator, case: Case, visit: Visit, evidence: Sequence[Evidence], *, tz: ZoneInfo) -> str:
    lines = [t("summary.case", case_no=case.case_no, bank=case.bank, debtor=case.debtor_name,
               amount=t.money(case.amount_due))]
    if visit.checkin_at is not None:
        where = t("summary.distance", meters=int(visit.checkin_distance_m)) if visit.checkin_distance_m is not None \
            else t("summary.no_coordinates")
        lines.append(t("summary.checkin", time=t.datetime(visit.checkin_at, tz), where=where))
        if visit.checkin_flagged:
            lines.append(t("summary.far_away"))
    if visit.code:
        lines.append(t("summary.code", code=t(f"code.{visit.code}")))
        answers = visit.details.get("answers", {})
        for spec in dispositions.DISPOSITIONS[visit.code]:
            if spec.name in answers:
                value = answer_text(t, visit.code, spec.name, answers[spec.name])
                if spec.kind is Kind.ADDRESS and answers[spec.name] and not visit.details.get("located", {}).get(
                        spec.name):
                    value += " " + t("summary.not_on_map")
                lines.append(f"  · {t(f'field.{spec.name}')}: {value}")
    photos = sum(1 for e in evidence if e.kind == "photo" and e.status == "stored")
    recordings = sum(1 for e in evidence if e.kind in ("voice", "audio") and e.status == "stored")
    lines.append(t("summary.evidence", photos=photos, recordings=recordings))
    missing = [e for e in evidence if e.status != "stored"]
    if missing:
        lines.append(t("summary.missing", count=len(missing)))
    if visit.review_comment and visit.status in ("returned", "draft"):
        lines.append(t("summary.review_comment", comment=visit.review_comment))
    return "\n".join(lines)
