"""The citizens' web form and the apps' public API: registry name ``web``, provider ``webform``.

The edges are ``/lapor`` (``gateway/web/public_pages.py``) and
``/api/v1/public/reports`` (``gateway/public_api.py``); they check the abuse
rules, keep the uploaded files (by sha256, like every channel's media) and
put a ``PublicReport`` body in the inbox. ``parse`` reads it back, so replay
and provenance work as for every other channel. An anonymous report's body
holds no identity at all: nobody can read it back from the raw row later.
There is no ``send``: the tracking id is shown on the page (or in the API's
answer) and the status page follows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from channels import manual
from channels.base import ChannelAdapter, ChannelSettings
from normalizer.errors import PayloadError
from normalizer.types import Attachment, ChannelMessage, Location

CHANNEL: Final = "web"
PROVIDER = "webform"
# What a citizen may attach, decided from the bytes (never the name or the browser's word).
ALLOWED_TYPES: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "application/pdf": "pdf",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{8,20}$")


class Settings(ChannelSettings):
    # The public pages and API are on unless an operator turns them off.
    enabled: bool = True


class ReporterIn(manual.ReporterIn):
    """Manual entry's reporter, checked as a citizen types it (staff fix their own typos)."""

    @field_validator("name", "phone", "email", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("bukan alamat e-mail")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("bukan nomor telepon")
        return value

    def kept(self) -> ReporterIn:
        """What the inbox may keep: nothing but the choice itself for an anonymous report."""
        return ReporterIn(anonymity="anonymous") if self.anonymity == "anonymous" else self


class LocationIn(manual.LocationIn):
    @model_validator(mode="after")
    def _both_or_neither(self) -> LocationIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("isi lintang dan bujur bersama-sama")
        return self


class AttachmentIn(BaseModel):
    """A file the edge already kept (by sha256) after checking its bytes."""

    model_config = ConfigDict(extra="forbid")

    filename: str | None = Field(default=None, max_length=255)
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PublicReport(BaseModel):
    """What the form or an app submits, as the inbox keeps it."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20_000)
    subject: str | None = Field(default=None, max_length=200)
    location: LocationIn | None = None
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    consent: bool
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)
    # "form", or "app:<name>" for a key from public_api.keys: where it came in, never who sent it.
    via: str = Field(default="form", max_length=80)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("wajib diisi")
        return value

    @field_validator("subject", mode="before")
    @classmethod
    def _blank_subject(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("consent")
    @classmethod
    def _consented(cls, value: bool) -> bool:
        if not value:
            raise ValueError("centang persetujuan untuk mengirim laporan")
        return value


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    """The submission id the edge drew (the signed form's nonce, or the app's Idempotency-Key)."""
    submission = meta.get("submission_id")
    if not submission:
        raise PayloadError("web report row has no meta.submission_id")
    return str(submission)


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    try:
        report = PublicReport.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise PayloadError(f"web report does not validate: {problems}") from exc
    reporter = report.reporter.kept()
    location = report.location
    return [
        ChannelMessage(
            channel=CHANNEL,
            provider=PROVIDER,
            external_id=str(meta.get("external_id") or meta.get("submission_id") or ""),
            text=report.body,
            subject=report.subject,
            sender_name=reporter.name,
            sender_phone=reporter.phone,
            sender_email=reporter.email,
            anonymity=reporter.anonymity,
            location=Location(text=location.text, lat=location.lat, lon=location.lon) if location else None,
            attachments=tuple(
                Attachment(filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256)
                for a in report.attachments
            ),
            # A form has one purpose: whatever it says ("STATUS …" included) is a report.
            detect_intent=False,
            extra={"via": report.via},
        )
    ]


# No `send`: the page (or the API's answer) shows the tracking id, and /cek follows it.
ADAPTER = ChannelAdapter(
    name="web",
    provider=PROVIDER,
    settings=Settings,
    parse=parse,
    external_id=external_id,
)
