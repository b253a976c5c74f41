"""Settings in one pydantic model, read from ``config.yaml`` with ``${VAR}`` from the environment.

Unknown keys and bad values stop start-up with one line naming the key.
No settings are read at import time: ``load_config`` is called by the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from channels.base import ChannelSettings
from gateway.registry import CHANNELS
from normalizer.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    url: str = "sqlite:///data/lapor.db"
    echo: bool = False


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The URL providers see (behind a proxy it differs from Host); signatures are checked against it.
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    timezone: str = "Asia/Jakarta"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name (e.g. Asia/Jakarta)") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class WorkerConfig(_Section):
    # False: `serve` only accepts; run `lapor-gateway worker` processes instead.
    in_process: bool = True
    max_attempts: int = Field(default=5, ge=1)
    batch_size: int = Field(default=50, ge=1)
    poll_interval_s: float = Field(default=0.5, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    backoff_initial_s: float = Field(default=2.0, ge=0)
    backoff_max_s: float = Field(default=600.0, ge=0)
    # The most one outbox delivery (a reply or a forward, the whole exchange) may take before it is retried.
    send_timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _send_ends_within_the_lease(self) -> WorkerConfig:
        if self.send_timeout_s >= self.lease_s:
            raise ValueError("send_timeout_s must be below lease_s, or a slow send could be taken and sent twice")
        return self


class InboxConfig(_Section):
    # Group commit: up to this many accepted rows share one transaction (one fsync).
    max_batch: int = Field(default=256, ge=1)


class RetentionConfig(_Section):
    # Raw payloads and attachment files of inbox rows finished this long ago are purged (daily, and by
    # ``lapor-gateway purge``); the complaint record and the payload's sha256 and size stay.
    raw_days: int = Field(default=365, ge=1)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class RepliesConfig(_Section):
    """Texts sent back to citizens; a region may reword them. ``{tracking_id}``, ``{status}`` are filled in."""

    ack: str = "Laporan Anda diterima. No. {tracking_id}. Cek status: kirim STATUS {tracking_id}"
    followup_ack: str = "Tambahan untuk laporan {parent_tracking_id} diterima. No. {tracking_id}."
    status: str = "Status laporan {tracking_id}: {status_text}."
    not_found: str = "Maaf, laporan {tracking_id} tidak ditemukan. Periksa kembali nomor laporan Anda."
    status_usage: str = "Untuk cek status, kirim STATUS <nomor laporan>, contoh: STATUS LPR-7K3Q9X"
    help: str = (
        "Untuk melapor, kirim LAPOR <isi laporan>, contoh: LAPOR jalan berlubang di Jl. Merdeka 10. "
        "Untuk cek status, kirim STATUS <nomor laporan>."
    )
    status_texts: dict[str, str] = Field(
        default_factory=lambda: {
            "received": "diterima, menunggu verifikasi",
            "verified": "terverifikasi",
            "forwarded": "diteruskan ke instansi terkait",
            "in_progress": "sedang ditindaklanjuti",
            "resolved": "selesai",
            "closed": "ditutup",
            "rejected": "tidak dapat diproses",
        }
    )


class SinkConfig(_Section):
    """A forwarder: every new complaint is POSTed as JSON to ``url`` (through the outbox)."""

    name: str
    type: Literal["webhook"] = "webhook"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)


class Category(_Section):
    name: str
    about: str = ""


def default_categories() -> dict[str, Category]:
    """The default taxonomy shipped with the gateway (a region may replace it in config)."""
    data = yaml.safe_load((Path(__file__).parent / "taxonomy.yaml").read_text(encoding="utf-8"))
    return {code: Category.model_validate(value) for code, value in data["categories"].items()}


class Config(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    inbox: InboxConfig = Field(default_factory=InboxConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    data_dir: Path = Path("data")
    keywords: list[str] = Field(default_factory=lambda: ["LAPOR", "LPR"])
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    sinks: list[SinkConfig] = Field(default_factory=list)
    categories: dict[str, Category] = Field(default_factory=default_categories)

    @field_validator("channels", mode="before")
    @classmethod
    def _channel_settings(cls, value: Any) -> dict[str, ChannelSettings]:
        """Each channel validates its own block with its own settings model."""
        if not isinstance(value, Mapping):
            raise ValueError("must be a mapping of channel name to settings")
        given: Mapping[str, Any] = value
        unknown = sorted(set(given) - set(CHANNELS))
        if unknown:
            raise ConfigError(f"config: channels.{unknown[0]} is not a known channel (known: {', '.join(CHANNELS)})")
        settings: dict[str, ChannelSettings] = {}
        for name, adapter in CHANNELS.items():
            block = given.get(name) or {}
            if isinstance(block, ChannelSettings):
                settings[name] = block
                continue
            try:
                settings[name] = adapter.settings.model_validate(block)
            except ValidationError as exc:
                raise ConfigError(_describe(exc, prefix=f"channels.{name}")) from None
        return settings

    def channel(self, name: str) -> ChannelSettings:
        return self.channels.get(name) or CHANNELS[name].settings()

    def enabled_channels(self) -> list[str]:
        return [name for name in CHANNELS if self.channel(name).enabled]


def _describe(exc: ValidationError, prefix: str = "") -> str:
    """The first problem of a validation error as one line naming the key."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
    if error["type"] == "extra_forbidden":
        return f"config: {key} is not a known key"
    if error["type"] == "missing":
        return f"config: {key} is required"
    return f"config: {key}: {error['msg']}"


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` by its value; a missing variable is an error naming it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"config: ${{{name}}} is used but the environment variable {name} is not set")
        return environ[name]

    return _ENV_REF.sub(value, text)


def _expand_values(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return expand_env(value, environ)
    if isinstance(value, Mapping):
        return {key: _expand_values(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_values(item, environ) for item in value]
    return value


def parse_config(data: Mapping[str, Any]) -> Config:
    # A channel block's own ConfigError is not a ValueError, so pydantic lets it through as it is.
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or the embedded defaults when ``path`` is None)."""
    environ = os.environ if environ is None else environ
    if path is None:
        return parse_config({})
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {path} does not exist — pass --config or set LAPOR_GATEWAY_CONFIG") from None
    try:
        # Expanded in values only, after parsing: a comment that mentions ${VAR} needs no variable.
        data = _expand_values(yaml.safe_load(text) or {}, environ)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: {path} must hold a mapping at the top level")
    return parse_config(data)
