"""A content-addressed file store: every file is kept once, named by its SHA-256.

``media/<kind>/<aa>/<sha256><suffix>``: the same bytes sent twice land on the same key. The keys are the
paths the database stores. Where the bytes live is a backend (``blobs.py``): the data dir's folder (the
default; writes go to a temporary file first and are renamed into place, files 0600 in 0700 folders,
``private.py``) or an S3-compatible object store (``FIELDBOT_MEDIA_URL=s3://bucket/prefix``). Every read
is checked against the key's SHA-256: a file whose bytes changed raises
:class:`~bot.storage.blobs.MediaCorrupt` naming its key; a file that is gone raises
:class:`~bot.storage.blobs.MediaMissing`.

Sealed files (the original bank files, which carry full ID numbers, phones and addresses) are stored
encrypted with AES-256-GCM under the files key (``keys.py``): ``<sha256 of the plain bytes><suffix>.sealed``
holds a 12-byte nonce followed by the ciphertext and its tag; :meth:`MediaStore.read` opens them and checks
the plain bytes against the name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.storage import keys
from bot.storage.blobs import (
    SEALED,
    Backend,
    LocalBackend,
    MediaCorrupt,
    MediaError,
    MediaMissing,
    MediaUnavailable,
    backend_for,
)
from bot.storage.private import write_private

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = ["NONCE_BYTES", "SEALED", "MediaCorrupt", "MediaError", "MediaMissing", "MediaStore",
           "MediaUnavailable", "StoredBlob", "sha256_file"]

NONCE_BYTES = 12


@dataclass(frozen=True)
class StoredBlob:
    sha256: str  # of the plain bytes: the file's name
    path: str  # the key, relative to the data dir for the local folder
    size: int
    stored_sha256: str = ""  # of the bytes stored, where they differ (a sealed file)

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
    def __init__(self, data_dir: Path, *, keys_dir: Path | None = None, backend: Backend | None = None) -> None:
        self.data_dir = data_dir
        self.keys_dir = keys_dir if keys_dir is not None else data_dir / "keys"
        self.backend: Backend = backend if backend is not None else LocalBackend(data_dir)
        self._file_key: bytes | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, url: str | None = None) -> MediaStore:
        """The store ``FIELDBOT_MEDIA_URL`` (or ``url``) names, sealing with the files key of ``settings``."""
        return cls(settings.data_dir, keys_dir=settings.keys_path,
                   backend=backend_for(settings.media_url if url is None else url, settings))

    @property
    def url(self) -> str:
        return self.backend.url

    def _key(self) -> bytes:
        if self._file_key is None:
            self._file_key = keys.load_or_create(self.keys_dir, keys.FILE_KEY)
        return self._file_key

    def path(self, relative: str) -> Path:
        """A key's file in the local folder (for tools and tests); an object store has no local path."""
        if not isinstance(self.backend, LocalBackend):
            raise ValueError(f"{relative}: the media store is {self.url}, not a local folder")
        return self.backend.path(relative)

    async def put(self, data: bytes, *, kind: str, suffix: str = "", sealed: bool = False) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        key = f"media/{kind}/{digest[:2]}/{digest}{suffix.lower()}{SEALED if sealed else ''}"
        if sealed:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            try:  # already there: kept as it is (a new nonce would change the stored bytes)
                stored = await self.backend.get(key)
            except MediaMissing:
                nonce = os.urandom(NONCE_BYTES)
                stored = nonce + AESGCM(self._key()).encrypt(nonce, data, digest.encode())
                await self.backend.put(key, stored)
            return StoredBlob(sha256=digest, path=key, size=len(data), stored_sha256=hashlib.sha256(stored).hexdigest())
        if await self.backend.size(key) != len(data):
            await self.backend.put(key, data)
        return StoredBlob(sha256=digest, path=key, size=len(data))

    async def read(self, relative: str) -> bytes:
        """The file's plain bytes, checked against its name (a sealed file is opened, then checked)."""
        raw = await self.backend.get(relative)
        if not relative.endswith(SEALED):
            return raw
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        digest = PurePosixPath(relative).name[:64]
        try:
            plain = AESGCM(self._key()).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], digest.encode())
        except InvalidTag as exc:
            raise MediaCorrupt(relative, "the sealed file does not decrypt (changed, or another files key)") from exc
        if (actual := hashlib.sha256(plain).hexdigest()) != digest:
            raise MediaCorrupt(relative, f"the opened bytes do not match SHA-256 {digest}; not served", actual=actual)
        return plain

    async def stored(self, relative: str) -> bytes:
        """The bytes as stored (a sealed file stays sealed), checked where the key names their hash."""
        return await self.backend.get(relative)

    async def exists(self, relative: str) -> bool:
        return await self.backend.exists(relative)

    async def delete(self, relative: str) -> None:
        await self.backend.delete(relative)

    async def keys(self, prefix: str = "media/") -> list[str]:
        return await self.backend.keys(prefix)

    async def close(self) -> None:
        await self.backend.close()

    async def copy_to(self, blob: StoredBlob, folder: Path) -> Path:
        """A second copy outside the store (the SOP's second backup), verified by its hash."""
        target = folder / Path(blob.path).relative_to("media")
        if not target.exists():
            write_private(target, await self.backend.get(blob.path, sha256=blob.disk_sha256))
        if sha256_file(target) != blob.disk_sha256:
            raise OSError(f"backup copy {target} does not match {blob.disk_sha256}")
        return target
