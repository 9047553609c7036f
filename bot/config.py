"""Settings read from the environment (``FIELDBOT_*``) and an optional ``.env`` file."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_API_FILE_URL = "https://api.telegram.org/file/bot"


# Who an unacknowledged alarm goes to, level by level (FIELDBOT_ESCALATION, comma-separated):
# the collector's own supervisor(s), the team lead(s) of the team, every other supervisor, the admins.
ESCALATION_LEVELS = ("supervisor", "team_lead", "supervisors", "admin")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    """Everything the bot can be told from outside. Each field is ``FIELDBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FIELDBOT_", env_file=".env", extra="ignore")

    token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/fieldbot.db"
    data_dir: Path = Path("./data")
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
    backup_dirs: list[Path] = Field(default_factory=list)
    geocoder: str = "off"
    checkin_radius_m: int = 300
    import_batch_size: int = 200
    max_extension_days: int = 3
    supervisors_chat_id: int | None = None
    sos_ack_timeout_s: int = 120
    sos_reping_s: int = 600
    safety_grace_s: int = 300
    escalation: list[str] = Field(default_factory=lambda: ["supervisor", "team_lead", "supervisors", "admin"])
    log_level: str = "INFO"

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
            return [part for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("escalation", mode="before")
    @classmethod
    def _split_levels(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            unknown = [v for v in value if v not in ESCALATION_LEVELS]
            if unknown or not value:
                raise ValueError(f"levels must be some of {', '.join(ESCALATION_LEVELS)}")
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


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a validation problem becomes one :class:`ConfigError` line per variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"FIELDBOT_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(problems) from None
