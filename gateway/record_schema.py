"""The schema-v1 complaint record as the OpenAPI document shows it (the API returns these fields as JSON).

Documentation only: the routes answer with ``queries.complaint_record`` dicts; these
models name and describe the fields for ``/openapi.json``. Extra fields are allowed,
since schema v1 only grows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RegionStep(_Open):
    code: str = Field(description="Kemendagri code, dotted: 33, 33.28, 33.28.10, 33.28.10.2001")
    name: str


class Location(_Open):
    text: str | None = None
    lat: float | None = None
    lon: float | None = None
    region_code: str | None = Field(None, description="most precise Kemendagri region the text names")
    region_name: str | None = None
    region_level: Literal["provinsi", "kabupaten", "kota", "kecamatan", "desa", "kelurahan"] | None = None
    region_path: list[RegionStep] = Field(default_factory=list, description="from the province down")


class Reporter(_Open):
    name: str | None = None
    phone: str | None = Field(None, description="E.164")
    email: str | None = None
    telegram_id: str | None = None
    anonymity: Literal["public", "confidential", "anonymous"]


class Attachment(_Open):
    filename: str | None = None
    content_type: str | None = None
    size: int
    sha256: str


class Decision(_Open):
    code: str | None = Field(description="what was decided (a category code, a kind, a region code, a priority)")
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = Field(description="the words or phrases that decided it")


class Auto(_Open):
    """What the normalizer decided and why; fields a person or the channel set keep their own value."""

    category: Decision | None = None
    kind: Decision | None = None
    region: Decision | None = None
    priority: Decision | None = None
    normalizer: str = Field(description="normalizer version")


class ComplaintRecord(_Open):
    schema_: Literal["v1"] = Field("v1", alias="schema")
    tracking_id: str = Field(examples=["LPR-7K3Q9X"])
    kind: Literal["complaint", "aspiration", "information_request"]
    channel: str
    provider: str
    source: str | None = None
    external_id: str
    received_at: str = Field(description="ISO-8601 UTC")
    reporter: Reporter
    subject: str | None = None
    body: str = Field(description="cleaned text; phone numbers, e-mails and NIK masked for anonymous reporters")
    category: str | None = Field(None, description="taxonomy code (gateway/taxonomy.yaml) or null")
    location: Location | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    parent_tracking_id: str | None = None
    entered_by: str | None = None
    status: str
    inbox_id: int
    priority: Literal["normal", "urgent"] = Field("normal", description="urgent: the report threatens safety")
    auto: Auto | None = None
    related: list[str] = Field(default_factory=list, description="open complaints that look like the same problem")


class ComplaintPage(_Open):
    items: list[ComplaintRecord]
    next_cursor: str | None = None
