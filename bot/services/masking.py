"""Masking what may be shown or stored of a debtor: names, phone numbers, identity document numbers."""

from __future__ import annotations

import unicodedata

from bot.services.parsing import clean_text


def mask_name(name: str) -> str:
    """Surname and stars: 李四 → 李*, 欧阳娜娜 → 欧阳**, Wang Wei → W*** W**."""
    name = name.strip()
    if not name:
        return name
    if " " in name:
        return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())
    keep = 2 if len(name) >= 4 else 1
    return name[:keep] + "*" * (len(name) - keep)


def mask_phone(phone: str | None) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 7 else "-"


def mask_id_number(text: str) -> str:
    """Mask an identity document number so it can be stored and shown.

    An 18-character mainland ID keeps its first 6 (region) and last 4
    characters: ``11010119900101123x`` → ``110101********123X``. Any other
    length keeps only the last 4 characters; 4 characters or fewer are masked
    completely, so the full number is never returned. Whitespace is dropped
    and letters are upper-cased. Masking is idempotent.
    """
    s = clean_text(unicodedata.normalize("NFKC", text)).replace(" ", "").upper()
    if len(s) == 18:
        return s[:6] + "*" * 8 + s[-4:]
    if len(s) <= 4:
        return "*" * len(s)
    return "*" * (len(s) - 4) + s[-4:]
