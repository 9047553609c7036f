"""The steps of the rest of the procedure as lines of a case's timeline, read from their audit entries.

A report to the bank (bot/services/banks.py), a registered letter (bot/services/letters.py) and a special
procedure (bot/services/special.py) each write an audit entry on the case at every step; the case card
(bot/services/case_desk.py) shows those entries with the message ids below. Parameters come from the
entry's details: a date (``YYYY-MM-DD``) reads as the reader's date, a code as its translated label.
No service imports here: the card and the three services read it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from bot.i18n import N_, Translator

TIMELINE: dict[str, str] = {
    "bank.alert": N_("desk.tl.bank_alert"),
    "letter.sent": N_("desk.tl.letter_sent"),
    "letter.signed": N_("desk.tl.letter_signed"),
    "letter.refused": N_("desk.tl.letter_refused"),
    "letter.undeliverable": N_("desk.tl.letter_undeliverable"),
    "letter.expired": N_("desk.tl.letter_expired"),
    "special.applied": N_("desk.tl.special_applied"),
    "special.approved": N_("desk.tl.special_approved"),
    "special.rejected": N_("desk.tl.special_rejected"),
    "special.arranged": N_("desk.tl.special_arranged"),
    "special.closed": N_("desk.tl.special_closed"),
}

# detail -> the prefix of its translated label
LABELS = {"reason_code": "bank.reason.", "kind": "special.kind."}
DATES = ("sent_on", "signed_on", "term_start", "term_end")
SHOWN = ("note", "tracking", "reason", "result", *LABELS, *DATES)


def _label(key: str) -> Callable[[Translator], str]:
    return lambda t: t(key)


def _day(day: date) -> Callable[[Translator], str]:
    return lambda t: t.date(day)


def params(details: dict[str, Any]) -> dict[str, str | Callable[[Translator], str]]:
    """The timeline line's parameters from an entry's details (every shown name present, ``-`` if absent)."""
    found: dict[str, str | Callable[[Translator], str]] = {}
    for name in SHOWN:
        value = details.get(name)
        if value is None or value == "":
            found[name] = "-"
        elif name in LABELS:
            found[name] = _label(LABELS[name] + str(value))
        elif name in DATES:
            found[name] = _day(date.fromisoformat(str(value)))
        else:
            found[name] = str(value)
    return found
