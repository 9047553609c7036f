"""Translations: gettext catalogs in ``locales/`` (managed with Babel), one translator per user.

Message ids are symbolic keys (``start.greeting``) so that every language, English included, must
translate each one; placeholders use ``{name}`` (python-brace-format). The ``.po`` files are the
source: they are read with Babel at start-up, so there is no compile step to forget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_currency

log = logging.getLogger(__name__)

SUPPORTED_LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
DOMAIN = "fieldbot"


def N_(key: str) -> str:
    """Mark a message id for extraction without translating it here."""
    return key


@cache
def catalog(locale: str) -> Mapping[str, str]:
    """The ``msgid -> msgstr`` table of one locale (empty translations left out)."""
    source = resources.files("locales").joinpath(locale, "LC_MESSAGES", f"{DOMAIN}.po")
    with source.open("rb") as handle:
        po = read_po(handle, locale=locale, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in po if m.id and isinstance(m.string, str) and m.string}


def resolve_locale(preferred: str | None, telegram_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The staff record's locale, else the Telegram client's language, else the default."""
    for candidate in (preferred, telegram_language):
        if not candidate:
            continue
        code = candidate.replace("-", "_")
        if code in SUPPORTED_LOCALES:
            return code
        lang = code.split("_")[0].lower()
        if lang == "zh":
            return "zh_CN"
        if lang == "en":
            return "en"
    return default


class Translator:
    """Translate message ids and format money and dates for one locale."""

    def __init__(self, locale: str) -> None:
        if locale not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported locale {locale!r}")
        self.locale = locale
        self._messages = catalog(locale)

    def __call__(self, key: str, /, **params: Any) -> str:
        template = self._messages.get(key)
        if template is None:
            log.error("missing translation %r for %s", key, self.locale)
            fallback = catalog(DEFAULT_LOCALE).get(key)
            template = fallback if fallback is not None else key
        try:
            return template.format(**params) if params else template
        except (KeyError, IndexError, ValueError):
            log.exception("bad placeholders in %r for %s", key, self.locale)
            return template

    def money(self, amount: Decimal | int | float) -> str:
        return str(format_currency(amount, "CNY", locale=self.locale))

    def date(self, day: date) -> str:
        return str(format_date(day, format="medium", locale=self.locale))

    def datetime(self, moment: datetime, tz: Any = None) -> str:
        return str(format_datetime(moment, format="short", tzinfo=tz, locale=self.locale))


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)


def all_translations(key: str) -> list[str]:
    """The text of ``key`` in every locale: used to recognise reply-keyboard buttons in any language."""
    return sorted({translator(loc)(key) for loc in SUPPORTED_LOCALES})
