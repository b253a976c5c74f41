"""Settings in one pydantic model, read from ``config.yaml`` with ``${VAR}`` from the environment.

Unknown keys and bad values stop start-up with one line naming the key.
No settings are read at import time: ``load_config`` is called by the CLI.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url

from channels.base import ChannelSettings
from channels.media import MediaLimits
from gateway.registry import CHANNELS
from normalizer.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.yaml")
# Relative paths of the embedded defaults are read from here (the checkout `make run` serves).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
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
    # Path prefix -> byte limit, over the built-in per-provider limits (gateway/limits.py ROUTE_LIMITS).
    body_limits: dict[str, int] = Field(default_factory=dict)
    # Slow clients: the request head, the body, an idle keep-alive, and connections at once (then 503).
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    max_connections: int = Field(default=512, ge=1)
    # FastAPI's /docs and /redoc load Swagger UI from a CDN: off unless asked for (/openapi.json stays).
    api_docs: bool = False
    timezone: str = "Asia/Jakarta"
    # HTTP processes of `serve` on the one port (PostgreSQL only; SQLite serves with 1).
    workers: int = Field(default=1, ge=1, le=64)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; from anyone else it is ignored.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for each in value:
            try:
                ipaddress.ip_network(each, strict=False)
            except ValueError:
                raise ValueError(f"{each!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
        return value

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
    greeting: str = (
        "Terima kasih telah terhubung dengan layanan pengaduan kami. Untuk melapor, kirim LAPOR <isi laporan>, "
        "boleh dengan foto atau lokasi. Untuk cek status, kirim STATUS <nomor laporan>."
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
    # STATUS answers add these when the complaint is with an agency / has a public note.
    status_agency: str = " Instansi: {agency_name}."
    status_note: str = " Tanggapan: {public_note}"
    # Sent to the citizen on their own channel when the status changes (gateway/lifecycle.py).
    status_changed: dict[str, str] = Field(
        default_factory=lambda: {
            "forwarded": "Laporan {tracking_id} telah diteruskan ke {agency_name} untuk ditindaklanjuti.",
            "in_progress": "Laporan {tracking_id} sedang ditindaklanjuti oleh {agency_name}: {public_note}",
            "resolved": (
                "Laporan {tracking_id} telah diselesaikan oleh {agency_name}: {public_note} "
                "Jika belum selesai, balas BELUM SELESAI dalam {reopen_days} hari."
            ),
            "rejected": "Maaf, laporan {tracking_id} tidak dapat diproses: {reason_text}.",
            "reopened": "Laporan {tracking_id} dibuka kembali dan diteruskan lagi ke {agency_name}.",
        }
    )
    reject_reasons: dict[str, str] = Field(
        default_factory=lambda: {
            "not_public_service": "laporan ini bukan tentang pelayanan publik",
            "incomplete": "keterangan laporan belum lengkap; silakan kirim laporan baru dengan lokasi dan rinciannya",
            "duplicate": "laporan yang sama sudah diterima dengan nomor {duplicate_of}",
            "out_of_area": "lokasi laporan di luar wilayah kami",
        }
    )


class SinkConfig(_Section):
    """A forwarder, delivered through the outbox.

    ``webhook``: events POSTed as JSON to ``url``, signed per Standard Webhooks with ``secret`` (``whsec_…``).
    ``open311``: a GeoReport v2 server at ``endpoint``; forwarded complaints are posted, updates pulled back.
    """

    name: str
    type: Literal["webhook", "open311"] = "webhook"
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)
    secret: SecretStr | None = None
    endpoint: str | None = None
    api_key: SecretStr | None = None
    jurisdiction_id: str | None = None
    service_codes: dict[str, str] = Field(default_factory=dict)
    default_service_code: str | None = None
    poll_interval_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> SinkConfig:
        if self.type == "webhook" and not self.url:
            raise ValueError(f"sink {self.name}: a webhook needs url")
        if self.type == "open311" and not (self.endpoint and self.api_key):
            raise ValueError(f"sink {self.name}: an open311 sink needs endpoint and api_key")
        if self.secret is not None and not self.secret.get_secret_value().startswith("whsec_"):
            raise ValueError(f"sink {self.name}: secret must be a Standard Webhooks secret (whsec_…)")
        return self


class AgencyConfig(_Section):
    """An agency (OPD): which complaints it handles and how they reach it."""

    name: str
    categories: list[str] = Field(default_factory=list)
    # Kemendagri code prefixes (``33.28`` = Kabupaten Tegal); none: anywhere.
    regions: list[str] = Field(default_factory=list)
    # A sink name, or none: the liaison officer works in the web pages or the API.
    forward: str | None = None


class LifecycleConfig(_Section):
    verify_working_days: int = Field(default=3, ge=0)
    resolve_working_days: int = Field(default=5, ge=0)
    reopen_days: int = Field(default=14, ge=0)
    # Verified complaints go to the agency at once when exactly one routing rule matches best.
    auto_forward: bool = False
    # Signs the expiring public links to a complaint's first photo given to agency systems (Open311 media_url).
    media_secret: SecretStr | None = None
    media_ttl_hours: int = Field(default=72, ge=1)


class NormalizerConfig(_Section):
    """What the normalizer reads into each report (category, kind, region, priority, likely duplicates)."""

    enabled: bool = True
    # The installation's own area (Kemendagri code, "33.28"): bare kecamatan/desa names are looked for here first.
    home_region: str | None = Field(default=None, pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")
    related_days: int = Field(default=14, ge=1, le=365)


def _rate(value: str) -> str:
    try:
        limits.parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate such as 5/minute or 5/minute;20/hour") from None
    return value


class WebConfig(_Section):
    """The web pages: the staff cookie, and the citizens' public form and status page (``/lapor``, ``/cek``)
    with the public API's abuse limits."""

    # None: the session cookie is Secure when the browser's own request came over https
    # (X-Forwarded-Proto from a trusted proxy included); true/false forces it.
    cookie_secure: bool | None = None
    # A person needs a few seconds to type a report; a form posted sooner is a script.
    min_fill_seconds: float = Field(default=3.0, ge=0)
    # How long a rendered form stays good for.
    form_max_age_minutes: int = Field(default=360, ge=1)
    # Submissions per client address (the form and the public API alike).
    rate_limit: str = "5/minute;30/hour"
    # Status lookups per client address (/cek and GET /api/v1/public/reports/{id}): enumeration stays slow.
    lookup_rate_limit: str = "30/minute;300/hour"
    max_files: int = Field(default=3, ge=0, le=10)
    max_file_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    # Signs the forms' tokens; empty: a random secret kept in the database, shared by every instance.
    form_secret: SecretStr = SecretStr("")

    @field_validator("rate_limit", "lookup_rate_limit")
    @classmethod
    def _known_rate(cls, value: str) -> str:
        return _rate(value)

    @property
    def max_body_bytes(self) -> int:
        """A whole submission: the files plus room for the text fields and multipart framing."""
        return self.max_files * self.max_file_bytes + 256 * 1024


class PublicApiConfig(_Section):
    """``/api/v1/public/reports`` for the Android/iOS apps: each app has a key of its own (``X-Api-Key``)."""

    keys: dict[str, SecretStr] = Field(default_factory=dict)


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
    web: WebConfig = Field(default_factory=WebConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    data_dir: Path = Path("data")
    keywords: list[str] = Field(default_factory=lambda: ["LAPOR", "LPR"])
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    sinks: list[SinkConfig] = Field(default_factory=list)
    categories: dict[str, Category] = Field(default_factory=default_categories)
    normalizer: NormalizerConfig = Field(default_factory=NormalizerConfig)
    # Limits on every media download (channels/media.py): size, time, private targets.
    media: MediaLimits = Field(default_factory=MediaLimits)
    public_api: PublicApiConfig = Field(default_factory=PublicApiConfig)
    agencies: dict[str, AgencyConfig] = Field(default_factory=dict)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)

    @model_validator(mode="after")
    def _agencies_forward_to_sinks(self) -> Config:
        names = {sink.name for sink in self.sinks}
        for code, agency in self.agencies.items():
            if agency.forward and agency.forward != "none" and agency.forward not in names:
                raise ConfigError(
                    f"config: agencies.{code}.forward names no sink (known: {', '.join(sorted(names)) or 'none'})"
                )
            sink = self.sink(agency.forward) if agency.forward else None
            if sink is not None and sink.type == "webhook" and sink.secret is None:
                raise ConfigError(
                    f"config: agencies.{code}.forward: sink {sink.name} carries status events only when signed — "
                    "give it a secret (whsec_…)"
                )
        return self

    def sink(self, name: str) -> SinkConfig | None:
        return next((each for each in self.sinks if each.name == name), None)

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


def expand_env(text: str, environ: Mapping[str, str], strict: bool = True) -> str:
    """Replace ``${VAR}`` by its value; a missing variable is an error naming it (left as it is if not strict)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            if not strict:
                return match.group(0)
            raise ConfigError(f"config: ${{{name}}} is used but the environment variable {name} is not set")
        return environ[name]

    return _ENV_REF.sub(value, text)


def _expand_values(value: Any, environ: Mapping[str, str], strict: bool = True) -> Any:
    if isinstance(value, str):
        return expand_env(value, environ, strict)
    if isinstance(value, Mapping):
        return {key: _expand_values(item, environ, strict) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_values(item, environ, strict) for item in value]
    return value


def _expand_config(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Every ``${VAR}`` must be set, except inside a channel block that is not enabled (it never starts)."""
    expanded = {key: _expand_values(value, environ) for key, value in data.items() if key != "channels"}
    blocks = data.get("channels")
    if isinstance(blocks, Mapping):
        channels: dict[str, Any] = {}
        for name, block in blocks.items():
            if not isinstance(block, Mapping):
                channels[name] = _expand_values(block, environ)
                continue
            enabled = _expand_values(block.get("enabled", False), environ)
            channels[name] = _expand_values(block, environ, strict=enabled not in (False, "false", "False", 0, None))
        expanded["channels"] = channels
    elif "channels" in data:
        expanded["channels"] = blocks
    return expanded


def parse_config(data: Mapping[str, Any]) -> Config:
    # A channel block's own ConfigError is not a ValueError, so pydantic lets it through as it is.
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def resolve_paths(config: Config, base: Path) -> Config:
    """Relative SQLite files and ``data_dir`` made absolute against ``base``, not the current directory.

    A command run from another folder then reads the same store instead of silently creating an empty one.
    """
    url = make_url(config.database.url)
    database = url.database
    updates: dict[str, Any] = {}
    in_memory = not database or database == ":memory:" or database.startswith("file:")
    if url.get_backend_name() == "sqlite" and not in_memory and not Path(database or "").is_absolute():
        absolute = url.set(database=str((base / (database or "")).resolve()))
        updates["database"] = config.database.model_copy(update={"url": absolute.render_as_string(hide_password=False)})
    if not config.data_dir.is_absolute():
        updates["data_dir"] = (base / config.data_dir).resolve()
    return config.model_copy(update=updates) if updates else config


def display_url(url: str) -> str:
    """The database URL for a start-up line: absolute file path for SQLite, no password for a server."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def load_config(path: Path | None, environ: Mapping[str, str] | None = None, *, channels: bool = True) -> Config:
    """Read ``path`` (or the embedded defaults when ``path`` is None).

    Relative paths resolve against the config file's folder (the project root for the defaults).
    ``channels=False`` is for commands that start no channel: the ``channels`` blocks are not read, so
    their ``${VAR}`` secrets need not be set in that shell.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        return resolve_paths(parse_config({}), PROJECT_ROOT)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {path} does not exist — pass --config or set LAPOR_GATEWAY_CONFIG") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: {path} must hold a mapping at the top level")
    if not channels:
        data = {key: value for key, value in data.items() if key != "channels"}
    # Expanded in values only, after parsing: a comment that mentions ${VAR} needs no variable.
    expanded = _expand_config(data, environ)
    return resolve_paths(parse_config(expanded), path.resolve().parent)
