"""A content-addressed file store under the data dir: every file is kept once, named by its SHA-256.

``<root>/<kind>/<aa>/<sha256><suffix>``: the same bytes sent twice land on the same path. Writes go
to a temporary file first and are renamed into place, so a crash never leaves half a file under
its final name. Paths handed out are relative to the data dir, for storing in the database. Files are
0600 in 0700 folders (``private.py``).

Sealed files (the original bank files, which carry full ID numbers, phones and addresses) are stored
encrypted with AES-256-GCM under the files key (``keys.py``): ``<sha256 of the plain bytes><suffix>.sealed``
holds a 12-byte nonce followed by the ciphertext and its tag; :meth:`MediaStore.read` opens them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bot.storage import keys
from bot.storage.private import copy_private, write_private

SEALED = ".sealed"
NONCE_BYTES = 12


@dataclass(frozen=True)
class StoredBlob:
    sha256: str  # of the plain bytes: the file's name
    path: str  # relative to the data dir
    size: int
    stored_sha256: str = ""  # of the bytes on disk, where they differ (a sealed file)

    @property
    def disk_sha256(self) -> str:
        return self.stored_sha256 or self.sha256


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MediaStore:
    def __init__(self, data_dir: Path, *, keys_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.keys_dir = keys_dir if keys_dir is not None else data_dir / "keys"
        self._file_key: bytes | None = None

    def _key(self) -> bytes:
        if self._file_key is None:
            self._file_key = keys.load_or_create(self.keys_dir, keys.FILE_KEY)
        return self._file_key

    def put(self, data: bytes, *, kind: str, suffix: str = "", sealed: bool = False) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        relative = Path("media") / kind / digest[:2] / f"{digest}{suffix.lower()}{SEALED if sealed else ''}"
        target = self.data_dir / relative
        if sealed:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            if not target.exists():
                nonce = os.urandom(NONCE_BYTES)
                write_private(target, nonce + AESGCM(self._key()).encrypt(nonce, data, digest.encode()))
            return StoredBlob(sha256=digest, path=relative.as_posix(), size=len(data),
                              stored_sha256=sha256_file(target))
        if not (target.exists() and target.stat().st_size == len(data)):
            write_private(target, data)
        return StoredBlob(sha256=digest, path=relative.as_posix(), size=len(data))

    def path(self, relative: str) -> Path:
        return self.data_dir / relative

    def read(self, relative: str) -> bytes:
        """The file's plain bytes (a sealed file is opened and checked against its name)."""
        raw = self.path(relative).read_bytes()
        if not relative.endswith(SEALED):
            return raw
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        digest = Path(relative).name[:64]
        return AESGCM(self._key()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], digest.encode())

    def copy_to(self, blob: StoredBlob, folder: Path) -> Path:
        """A second copy outside the data dir (the SOP's second backup), verified by its hash."""
        target = folder / Path(blob.path).relative_to("media")
        if not target.exists():
            copy_private(self.path(blob.path), target)
        if sha256_file(target) != blob.disk_sha256:
            raise OSError(f"backup copy {target} does not match {blob.disk_sha256}")
        return target
