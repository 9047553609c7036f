"""Add or change messages in both catalogs at once, keeping them sorted.

    python tools/po.py set KEY "中文" "English"
    python tools/po.py check            # same ids in both catalogs, nothing empty

Babel reads and writes the files; this only saves typing the same id twice.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent / "locales"
LOCALES = ("zh_CN", "en")


def path(locale: str) -> Path:
    return ROOT / locale / "LC_MESSAGES" / "fieldbot.po"


def load(locale: str) -> Catalog:
    p = path(locale)
    if not p.exists():
        return Catalog(locale=locale, domain="fieldbot", project="fieldbot", fuzzy=False)
    with p.open("rb") as fh:
        return read_po(fh, locale=locale)


def save(locale: str, catalog: Catalog) -> None:
    """Written beside and renamed into place: whoever reads the catalog meanwhile (a commit, a test) sees the
    old file or the new one, never half of one."""
    p = path(locale)
    p.parent.mkdir(parents=True, exist_ok=True)
    partial = p.with_name(p.name + ".partial")
    with partial.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, width=0, omit_header=False)
    os.replace(partial, p)


@contextmanager
def locked() -> Iterator[None]:
    """One writer at a time: two terminals adding messages at once would each save over the other's."""
    ROOT.mkdir(parents=True, exist_ok=True)
    with (ROOT / ".po.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def set_message(key: str, *texts: str) -> None:
    with locked():
        _set(key, *texts)


def _set(key: str, *texts: str) -> None:
    for locale, text in zip(LOCALES, texts, strict=True):
        catalog = load(locale)
        flags = ["python-brace-format"] if "{" in text else []
        catalog.delete(key)
        catalog.add(key, text, flags=flags)
        save(locale, catalog)


def main(argv: list[str]) -> int:
    if argv[:1] == ["set"] and len(argv) == 2 + len(LOCALES):
        set_message(argv[1], *argv[2:])
        return 0
    if argv[:1] == ["batch"] and len(argv) == 2:
        # a file of lines: key<TAB>中文<TAB>English
        for line in Path(argv[1]).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, *texts = line.split("\t")
                set_message(key, *(t.replace("\\n", "\n") for t in texts))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
