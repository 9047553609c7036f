"""Settings read from the environment (``FIELDBOT_*``) and an optional ``.env`` file."""

from __future__ import annotations

import json
import re
from datetime import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_API_FILE_URL = "https://api.telegram.org/file/bot"


# Who an unacknowledged alarm goes to, level by level (FIELDBOT_ESCALATION, comma-separated):
# the collector's own supervisor(s), the team lead(s) of the team, every other supervisor, the admins.
ESCALATION_LEVELS = ("supervisor", "team_lead", "supervisors", "admin")

# FIELDBOT_PROXY: what PTB's HTTPX transport can speak (SOCKS needs the socksio package, the "socks" extra).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    """Everything the bot can be told from outside. Each field is ``FIELDBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FIELDBOT_", env_file=".env", extra="ignore")

    token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/fieldbot.db"
    data_dir: Path = Path("./data")
    # The audit and file keys (bot/storage/keys.py); default <data_dir>/keys. Every process sharing a
    # database must see the same keys folder.
    keys_dir: Path | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    api_file_url: str = DEFAULT_API_FILE_URL
    local_mode: bool = False
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    work_start: time = time(9, 0)
    work_end: time = time(18, 0)
    calendar_file: Path | None = None
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    # NoDecode: the value reaches the validators below as the raw string, so both the comma form
    # (a,b) and JSON (["a","b"]) work; without it pydantic-settings JSON-decodes list fields first.
    backup_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # A backup snapshot older than this is pruned (the newest is always kept), with the media no kept
    # snapshot lists: material purged under retention leaves the backups this many days later.
    backup_keep_days: int = Field(default=90, ge=1)
    # Inbox rows (updates already applied) and outbox rows sent or given up are deleted this many days
    # later by the hourly prune sweep (bot/services/pruning.py); a pending message is never deleted.
    prune_after_days: int = Field(default=30, ge=2)
    geocoder: str = "off"
    checkin_radius_m: int = 300
    import_batch_size: int = 200
    max_extension_days: int = 3
    supervisors_chat_id: int | None = None
    sos_ack_timeout_s: int = 120
    sos_reping_s: int = 600
    safety_grace_s: int = 300
    escalation: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["supervisor", "team_lead", "supervisors", "admin"])
    proxy: str | None = None
    # Redis for the sending budget every instance of the bot shares (bot/send_budget.py); unset: one process
    redis_url: str | None = None
    # false: this process only answers updates (webhook instances behind a load balancer); a `fieldbot worker`
    # (with a standby) runs the sweeps and sends the outbox
    sweeps: bool = True
    throttle_rate: float = Field(default=1.0, ge=0)
    throttle_burst: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    # The supervisor's console (bot/web): served by the bot's own process when web_port is set (0: off).
    web_listen: str = "127.0.0.1"
    web_port: int = Field(default=0, ge=0, le=65535)
    web_url: str | None = None  # its public HTTPS address: the menu's Console button opens it
    web_tiles: str | None = None  # a map tile URL template ({z}/{x}/{y}, {s}); none: points on a plain plot
    web_tiles_crs: str = "wgs84"  # the tiles' datum: wgs84, or gcj02 for Amap and Tencent tiles
    web_auth_max_age_s: int = Field(default=86400, ge=60)  # how old a Mini App sign-in (auth_date) may be
    # the console's rate limit, per person and process: a burst of web_burst requests, then web_rate a second
    web_rate: float = Field(default=5.0, gt=0)
    web_burst: int = Field(default=60, ge=1)
    # Where photos, recordings, bank files and reports are kept (bot/storage/blobs.py): empty for the
    # data dir's media folder, or s3://bucket/prefix for an S3-compatible store (MinIO, Ceph, OSS, COS)
    media_url: str = ""
    s3_endpoint: str | None = None  # e.g. http://127.0.0.1:9000 (MinIO); none: AWS itself
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_addressing_style: str = Field(default="path", pattern="^(path|virtual|auto)$")  # virtual for OSS and COS

    @property
    def keys_path(self) -> Path:
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        from bot.i18n import SUPPORTED_LOCALES

        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("backup_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        if isinstance(value, str):
            return _json_list(value) or [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("escalation", mode="before")
    @classmethod
    def _split_levels(cls, value: object) -> object:
        if isinstance(value, str):
            value = _json_list(value) or [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            unknown = [v for v in value if v not in ESCALATION_LEVELS]
            if unknown or not value:
                raise ValueError(f"levels must be some of {', '.join(ESCALATION_LEVELS)}")
        return value

    @field_validator("web_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be the console's public HTTPS address, e.g. https://console.example.cn/")
        return value

    @field_validator("web_tiles")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value.replace("{s}", "a"))
        if parts.scheme not in ("https", "http") or not parts.hostname or not all(
                f"{{{k}}}" in value for k in "zxy"):
            raise ValueError("must be a tile URL template with {z}, {x} and {y}, "
                             "e.g. https://tile.example/{z}/{x}/{y}.png")
        return value

    @field_validator("web_tiles_crs")
    @classmethod
    def _tile_datum(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("wgs84", "gcj02"):
            raise ValueError("must be wgs84 or gcj02 (Amap and Tencent tiles)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
            raise ValueError("must be a proxy URL such as http://10.0.0.5:3128 or socks5://user:password@host:1080")
        if port is None and parts.scheme.lower().startswith("socks"):
            raise ValueError("a SOCKS proxy URL needs a port, e.g. socks5://host:1080")
        if parts.scheme.lower().startswith("socks"):
            import importlib.util

            if importlib.util.find_spec("socksio") is None:
                raise ValueError('SOCKS proxies need the "socks" extra: pip install "python-telegram-bot[socks]"')
        return value

    def require_token(self) -> str:
        """The bot token, or a :class:`ConfigError` naming the variable to set."""
        if self.token is None or not self.token.get_secret_value().strip():
            raise ConfigError(
                "FIELDBOT_TOKEN is not set: create a bot with @BotFather and export FIELDBOT_TOKEN=<token>"
            )
        return self.token.get_secret_value().strip()

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def proxy_for_display(self) -> str | None:
        """The proxy URL without its password, for messages and logs."""
        if self.proxy is None:
            return None
        parts = urlsplit(self.proxy)
        if parts.password is None:
            return self.proxy
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()


def _json_list(value: str) -> list[object] | None:
    """``value`` read as a JSON list when it looks like one (``["a","b"]``); None for the comma form."""
    if not value.strip().startswith("["):
        return None
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a valid JSON list ({exc.msg}); or write the items comma-separated: a,b") from None
    if not isinstance(decoded, list):
        raise ValueError("must be a list")
    return decoded


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a validation problem becomes one :class:`ConfigError` line per variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"FIELDBOT_{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(problems) from None
    except SettingsError as exc:  # a value pydantic-settings could not even parse (e.g. bad JSON)
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"FIELDBOT_{match[1].upper()}" if match else "a FIELDBOT_ setting"
        raise ConfigError(f"{name}: the value cannot be parsed") from None
