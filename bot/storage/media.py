"""A content-addressed file store under the data dir: every file is kept once, named by its SHA-256.

``<root>/<kind>/<aa>/<sha256><suffix>``: the same bytes sent twice land on the same path. Writes go
to a temporary file first and are renamed into place, so a crash never leaves half a file under
its final name. Paths handed out are relative to the data dir, for storing in the database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    path: str  # relative to the data dir
    size: int


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MediaStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def put(self, data: bytes, *, kind: str, suffix: str = "") -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        relative = Path("media") / kind / digest[:2] / f"{digest}{suffix.lower()}"
        target = self.data_dir / relative
        if not (target.exists() and target.stat().st_size == len(data)):
            _atomic_write(target, data)
        return StoredBlob(sha256=digest, path=relative.as_posix(), size=len(data))

    def path(self, relative: str) -> Path:
        return self.data_dir / relative

    def read(self, relative: str) -> bytes:
        return self.path(relative).read_bytes()

    def copy_to(self, blob: StoredBlob, folder: Path) -> Path:
        """A second copy outside the data dir (the SOP's second backup), verified by its hash."""
        target = folder / Path(blob.path).relative_to("media")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".incoming-{target.name}")
            shutil.copyfile(self.path(blob.path), tmp)
            os.replace(tmp, target)
        if hashlib.sha256(target.read_bytes()).hexdigest() != blob.sha256:
            raise OSError(f"backup copy {target} does not match {blob.sha256}")
        return target
