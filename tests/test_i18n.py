"""Catalog completeness: every message id the code uses is translated in every locale, placeholders alike."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from bot.i18n import SUPPORTED_LOCALES, Translator, all_translations, catalog, resolve_locale

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"t": None, "N_": None, "say": (3,), "ask_for_text": (5,), "DomainError": None, "NotFound": None,
            "Forbidden": None}
KEY_SHAPE = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_]+)+$")


def used_message_ids() -> set[str]:
    ids: set[str] = set()
    for package in ("bot", "scheduler"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(message, str) and KEY_SHAPE.match(message):
                ids.add(message)
    return ids


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_extraction_finds_the_code_s_messages() -> None:
    ids = used_message_ids()
    assert {"start.greeting", "access.refused", "role.collector", "error.forbidden"} <= ids


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_used_message_is_translated(locale: str) -> None:
    missing = sorted(used_message_ids() - set(catalog(locale)))
    assert not missing, f"{locale} lacks translations for {missing}"


def test_catalogs_have_the_same_ids_and_placeholders() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    assert set(zh) == set(en), set(zh) ^ set(en)
    different = {key: (placeholders(zh[key]), placeholders(en[key])) for key in zh
                 if placeholders(zh[key]) != placeholders(en[key])}
    assert not different


def test_translations_really_differ_by_language() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    assert re.search(r"[\u4e00-\u9fff]", zh["start.greeting"])
    assert "Welcome" in en["start.greeting"]


def test_translator_fills_placeholders_and_formats_money() -> None:
    t = Translator("en")
    assert t("start.greeting", name="Li", role=t("role.collector")).startswith("Welcome, Li!")
    assert Translator("zh_CN").money(12345.6) == "¥12,345.60"


def test_missing_key_falls_back_without_crashing() -> None:
    assert Translator("en")("no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("preferred", "telegram", "expected"),
    [(None, "zh-hans", "zh_CN"), (None, "en-US", "en"), ("en", "zh-hans", "en"), (None, "ru", "zh_CN"),
     (None, None, "zh_CN"), ("zh_CN", "en", "zh_CN")],
)
def test_locale_resolution(preferred: str | None, telegram: str | None, expected: str) -> None:
    assert resolve_locale(preferred, telegram) == expected


def test_keyboard_labels_are_recognised_in_every_language() -> None:
    assert set(all_translations("menu.help")) == {"❓ 帮助", "❓ Help"}


def test_literal_calls_pass_every_placeholder_their_message_needs() -> None:
    """``t("key", a=...)`` with a literal key must supply every ``{placeholder}`` of that message."""
    import ast

    english = catalog("en")
    problems = []
    for package in ("bot", "scheduler"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                key = node.args[0].value
                if name != "t" or key not in english or any(k.arg is None for k in node.keywords):
                    continue
                missing = placeholders(english[key]) - {k.arg for k in node.keywords if k.arg}
                if missing:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {key} lacks {sorted(missing)}")
    assert not problems, problems
