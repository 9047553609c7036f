"""Where the media store keeps its bytes: a local folder (the default) or an S3-compatible object store.

Both backends hold the same keys, the paths the database stores: ``media/<kind>/<aa>/<sha256><suffix>``
(``.sealed`` for an encrypted bank file). A key whose name is a SHA-256 is checked on every read: bytes
that no longer hash to their name raise :class:`MediaCorrupt` naming the key, they are never served.
A key that is not there raises :class:`MediaMissing` (a :class:`FileNotFoundError`); a store that cannot
be reached raises :class:`MediaUnavailable` (an :class:`OSError`, worth retrying). A sealed file's name
is the hash of its plain bytes: :class:`bot.storage.media.MediaStore` checks it after opening.

``FIELDBOT_MEDIA_URL`` chooses: empty (or ``file:``) is the ``media`` folder under the data dir;
``s3://bucket/prefix`` is an object store reached through aiobotocore at ``FIELDBOT_S3_ENDPOINT``
(MinIO, Ceph RGW, Alibaba OSS, Tencent COS or AWS itself), objects named ``<prefix>/<key>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from bot.storage.private import write_private

if TYPE_CHECKING:
    from bot.config import Settings

SEALED = ".sealed"
_HEX = frozenset("0123456789abcdef")


class MediaError(Exception):
    """Something about one stored file; the message names its key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class MediaMissing(MediaError, FileNotFoundError):
    """The key is not in the store (a final answer: not worth retrying)."""


class MediaCorrupt(MediaError):
    """The stored bytes do not match the key's SHA-256 (or a sealed file does not decrypt): refused."""

    def __init__(self, key: str, message: str, *, actual: str | None = None) -> None:
        super().__init__(key, message)
        self.actual = actual  # the SHA-256 the bytes have now, where known


class MediaUnavailable(MediaError, OSError):
    """The store could not be asked (network, credentials, a 5xx): worth retrying later."""


def content_hash(key: str) -> str | None:
    """The SHA-256 a plain content-addressed key's bytes must have (its name); None for others."""
    name = PurePosixPath(key).name
    stem = name.split(".", 1)[0]
    if name.endswith(SEALED) or len(stem) != 64 or not set(stem) <= _HEX:
        return None
    return stem


def check_key(key: str) -> str:
    """A key as the media store writes them: relative, forward slashes, no ``.`` or ``..`` parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{key!r} is not a media key")
    return key


def verified(key: str, data: bytes, sha256: str | None) -> bytes:
    expected = sha256 or content_hash(key)
    if expected is not None and (actual := hashlib.sha256(data).hexdigest()) != expected:
        raise MediaCorrupt(key, f"the stored bytes do not match SHA-256 {expected}; not served", actual=actual)
    return data


class Backend(Protocol):
    """What the media store needs of a place that keeps bytes under keys."""

    @property
    def url(self) -> str: ...

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        """The bytes, checked against ``sha256`` (default: the key's name, when it is a SHA-256)."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored size, or None when the key is not there."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the key (nothing happens when it is not there)."""
        ...

    async def keys(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        ...

    async def close(self) -> None: ...


class LocalBackend:
    """Files under a folder (the data dir): 0600 files in 0700 folders, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return self.root.as_uri() if self.root.is_absolute() else str(self.root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        write_private(self.path(key), data)

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        try:
            data = self.path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise MediaMissing(key, "not in the media folder") from exc
        return verified(key, data, sha256)

    async def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def keys(self, prefix: str = "") -> list[str]:
        top = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / top if top else self.root
        if not start.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in start.rglob("*")
                 if p.is_file() and not p.name.startswith(".incoming-"))
        return sorted(k for k in found if k.startswith(prefix))

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "some/prefix/" (with its trailing slash)

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r} is not s3://bucket[/prefix]")
        prefix = parts.path.strip("/")
        return cls(bucket=parts.netloc, prefix=f"{prefix}/" if prefix else "")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class S3Config:
    endpoint: str | None = None  # None: AWS itself
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    addressing_style: str = "path"  # "path" (MinIO, Ceph) or "virtual" (OSS, COS)


class S3Backend:
    """Objects in a bucket of an S3-compatible store, through aiobotocore.

    Each upload carries its Content-MD5, so the store itself refuses bytes damaged on the way, and the
    SHA-256 as ``x-amz-meta-sha256``. botocore's newer default checksums (CRC32 trailers) are only sent
    when an operation requires them: several S3-compatible stores refuse them. A client is opened per
    event loop and kept; :meth:`close` closes it.
    """

    def __init__(self, location: S3Location, config: S3Config) -> None:
        self.location = location
        self.config = config
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return self.location.url

    def _name(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    async def _open(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            region_name=self.config.region, signature_version="s3v4",
            s3={"addressing_style": self.config.addressing_style},
            retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10, read_timeout=60,
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=self.config.endpoint, region_name=self.config.region,
            aws_access_key_id=self.config.access_key, aws_secret_access_key=self.config.secret_key,
            config=config))
        self._stack, self._loop = stack, loop
        return self._client

    @contextlib.contextmanager
    def _asking(self, key: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise MediaMissing(key, f"not in {self.url}") from exc
            raise MediaUnavailable(key, f"{self.url} answered {code}: {error.get('Message', exc)}") from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise MediaUnavailable(key, f"{self.url} could not be reached: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        client = await self._open()
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._asking(key):
            await client.put_object(Bucket=self.location.bucket, Key=self._name(key), Body=data, ContentMD5=md5,
                                    ContentLength=len(data), ContentType="application/octet-stream",
                                    Metadata={"sha256": hashlib.sha256(data).hexdigest()})

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        client = await self._open()
        with self._asking(key):
            answer = await client.get_object(Bucket=self.location.bucket, Key=self._name(key))
            async with answer["Body"] as body:
                data = await body.read()
        return verified(key, bytes(data), sha256)

    async def size(self, key: str) -> int | None:
        client = await self._open()
        try:
            with self._asking(key):
                head = await client.head_object(Bucket=self.location.bucket, Key=self._name(key))
        except MediaMissing:
            return None
        return int(head["ContentLength"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def delete(self, key: str) -> None:
        client = await self._open()
        with self._asking(key):
            await client.delete_object(Bucket=self.location.bucket, Key=self._name(key))

    async def keys(self, prefix: str = "") -> list[str]:
        client = await self._open()
        found: list[str] = []
        with self._asking(prefix or "/"):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix + prefix):
                found += [str(item["Key"])[len(self.location.prefix):] for item in page.get("Contents", [])]
        return sorted(found)

    async def close(self) -> None:
        stack, self._stack, self._client, self._loop = self._stack, None, None, None
        if stack is not None:
            await stack.aclose()


def s3_config(settings: Settings) -> S3Config:
    return S3Config(endpoint=settings.s3_endpoint or None, region=settings.s3_region,
                    access_key=settings.s3_access_key or os.environ.get("AWS_ACCESS_KEY_ID") or None,
                    secret_key=(settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None)
                    or os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
                    addressing_style=settings.s3_addressing_style)


def backend_for(url: str, settings: Settings) -> Backend:
    """The backend a media URL names: ``s3://bucket/prefix``, or empty/``file:`` for the data dir."""
    if url.startswith("s3://"):
        return S3Backend(S3Location.parse(url), s3_config(settings))
    if url in ("", "file:", "local"):
        return LocalBackend(settings.data_dir)
    raise ValueError(f"FIELDBOT_MEDIA_URL {url!r}: use s3://bucket/prefix, or leave it empty for the data dir")
