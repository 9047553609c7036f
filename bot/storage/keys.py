"""The bot's secret keys: kept as files outside the database, generated on first start.

* ``audit.key`` keys the audit log's chain (HMAC-SHA-256): without it nobody can write an entry
  that verifies, so a log edited with only the database in hand is caught.
* ``files.key`` seals the stored original bank files (AES-256-GCM).

They live in ``FIELDBOT_KEYS_DIR`` (default ``<data dir>/keys``), 0600 files in a 0700 folder. Backups
do not contain them: a backup read by someone who took only the backup folder does not open the bank
files, and its audit log cannot be rewritten to verify. Keep a copy of the keys folder apart from the
backups (the README says how); a restore needs it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.storage.private import create_private_file, private_dir

AUDIT_KEY = "audit.key"
FILE_KEY = "files.key"
KEY_BYTES = 32


class KeyFileError(Exception):
    """A key file exists but cannot be used (wrong length, not hex)."""


def load_or_create(folder: Path, name: str) -> bytes:
    """The key in ``folder/name``; a new random key is written there (0600) if there is none."""
    path = folder / name
    if not path.exists():
        private_dir(folder)
        tmp = path.with_name(f".{name}.{os.getpid()}.new")
        create_private_file(tmp)
        tmp.write_text(secrets.token_hex(KEY_BYTES) + "\n", encoding="ascii")
        try:
            os.link(tmp, path)  # two processes starting at once: the first key wins, both use it
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return read_key(path)


def read_key(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a hex key") from exc
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} holds a {len(key)}-byte key; {KEY_BYTES} bytes are needed")
    return key
