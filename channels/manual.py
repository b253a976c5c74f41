"""Manual entry: call-center staff type in what came by phone, radio, walk-in or social media.

The edge is ``POST /api/v1/complaints`` (``gateway/api.py``), authenticated by
an API token, so this channel has no provider signature to ``verify``. The
JSON body is stored raw in the inbox like any provider payload; ``parse``
reads it back, so replay and provenance work as for every other channel.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from channels.base import ChannelAdapter, ChannelSettings
from normalizer.errors import PayloadError
from normalizer.privacy import mask_body
from normalizer.types import ChannelMessage, Location

PROVIDER = "callcenter"

Source = Literal["phone", "walk_in", "instagram", "facebook", "x", "radio", "whatsapp", "email", "letter", "other"]


class Settings(ChannelSettings):
    enabled: bool = True


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    anonymity: Literal["public", "confidential", "anonymous"] = "public"


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=2000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ManualEntry(BaseModel):
    """What an agent submits; the API answers 422 naming the field when it does not fit."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1)
    subject: str | None = Field(default=None, max_length=500)
    source: Source
    kind: Literal["complaint", "aspiration", "information_request"] | None = None
    category: str | None = Field(default=None, max_length=64)
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    location: LocationIn | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def kept_raw(raw: bytes, entry: ManualEntry) -> bytes:
    """The bytes the inbox keeps: as typed, except that an anonymous reporter's identity is dropped.

    Anonymous means anonymous in the raw row too (``failed show``, the failed API): what is
    never stored cannot be read back. The same entry always gives the same bytes, so a
    repeated Idempotency-Key still finds its first body.
    """
    if entry.reporter.anonymity != "anonymous":
        return raw
    return anonymous_copy(entry).model_dump_json(exclude_none=True).encode()


Report = TypeVar("Report", bound=BaseModel)


def anonymous_copy(report: Report) -> Report:
    """An anonymous report (a manual entry, a web form's) as it may be kept: no identity, and the numbers
    and addresses the citizen typed into the text itself masked as the stored record masks them."""
    fields: Any = report
    location = fields.location
    if location is not None and location.text:
        location = location.model_copy(update={"text": mask_body(location.text)})
    return report.model_copy(
        update={
            "reporter": type(fields.reporter)(anonymity="anonymous"),
            "body": mask_body(fields.body),
            "subject": mask_body(fields.subject) if fields.subject else fields.subject,
            "location": location,
        }
    )


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    """The agent's Idempotency-Key, scoped to the agent; a fresh id when none was given.

    Scoping by the token's name keeps two agents who happen to pick the same
    key from answering each other's complaints.
    """
    key = meta.get("idempotency_key")
    entered_by = meta.get("entered_by", "")
    return f"{entered_by}:{key}" if key else f"{entered_by}:gen-{uuid.uuid4().hex}"


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    try:
        entry = ManualEntry.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise PayloadError(f"manual entry does not validate: {problems}") from exc
    location = entry.location
    return [
        ChannelMessage(
            channel="manual",
            provider=PROVIDER,
            external_id=str(meta.get("external_id", "")),
            text=entry.body,
            subject=entry.subject,
            sender_name=entry.reporter.name,
            sender_phone=entry.reporter.phone,
            sender_email=entry.reporter.email,
            anonymity=entry.reporter.anonymity,
            source=entry.source,
            kind=entry.kind,
            category=entry.category,
            location=Location(text=location.text, lat=location.lat, lon=location.lon) if location else None,
            entered_by=meta.get("entered_by"),
            detect_intent=False,
        )
    ]


# No `send`: the agent reads the tracking id to the caller from the API answer.
ADAPTER = ChannelAdapter(
    name="manual",
    provider=PROVIDER,
    settings=Settings,
    parse=parse,
    external_id=external_id,
)
