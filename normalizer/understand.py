"""What a report says: category, kind, region and urgency, with reasons, from loaded models.

``Understanding`` is built once at start (the wiring trains or loads the
classifier and builds the region index) and passed to ``normalize``; reading a
text is pure and fast. ``read`` gives every decision; ``apply`` fills a record's
fields from them without overwriting what the channel or a person gave.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from normalizer.classify import Classifier, Decision, priority
from normalizer.regions import RegionIndex, RegionMatch
from normalizer.slang import expand
from normalizer.types import ComplaintRecord, Kind, Location


@dataclass(frozen=True)
class Understanding:
    classifier: Classifier
    regions: RegionIndex
    home_region: str | None = None

    @property
    def version(self) -> str:
        return self.classifier.version


@dataclass(frozen=True)
class Reading:
    category: Decision
    kind: Decision
    region: RegionMatch | None
    priority: Decision
    version: str

    def auto(self) -> dict[str, Any]:
        """The record's ``auto`` object."""
        region = None
        if self.region is not None:
            region = {
                "code": self.region.code,
                "confidence": self.region.confidence,
                "reasons": list(self.region.reasons),
            }
        return {
            "category": self.category.as_dict(),
            "kind": self.kind.as_dict(),
            "region": region,
            "priority": self.priority.as_dict(),
            "normalizer": self.version,
        }


def read(text: str, understanding: Understanding) -> Reading:
    expanded = expand(text)
    classifier = understanding.classifier
    vector = classifier.vector(expanded)
    return Reading(
        category=classifier.category(expanded, vector),
        kind=classifier.kind(expanded, vector),
        region=understanding.regions.find(text, understanding.home_region),
        priority=priority(expanded),
        version=understanding.version,
    )


def region_location(
    location: Location | None, region: RegionMatch | None, regions: RegionIndex | None = None
) -> Location | None:
    """The location with the region filled in, unless the channel already gave one (then only its path)."""
    if location is not None and location.region_code:
        code = location.region_code
        if regions is not None and code in regions and not location.region_path:
            known = regions.match(code, 1.0, ())
            return replace(
                location,
                region_name=location.region_name or known.name,
                region_level=known.level,
                region_path=known.path,
            )
        return location
    if region is None:
        return location
    base = location or Location()
    return replace(
        base,
        region_code=region.code,
        region_name=region.name,
        region_level=region.level,
        region_path=region.path,
    )


def apply(
    record: ComplaintRecord,
    reading: Reading,
    given_category: str | None,
    given_kind: Kind | None,
    regions: RegionIndex | None = None,
) -> ComplaintRecord:
    """Fill the record from the reading; what the channel or an agent gave stays as it is."""
    category = given_category if given_category is not None else reading.category.code
    kind: Kind = given_kind or _kind(reading.kind.code)
    return replace(
        record,
        category=category,
        kind=kind,
        location=region_location(record.location, reading.region, regions),
        priority="urgent" if reading.priority.code == "urgent" else "normal",
        auto=reading.auto(),
    )


def _kind(code: str | None) -> Kind:
    if code == "aspiration":
        return "aspiration"
    if code == "information_request":
        return "information_request"
    return "complaint"
