"""The WhatsApp Cloud API webhook notification, as pydantic models.

Only the fields the gateway reads are declared; everything else Meta sends is
ignored (the raw bytes stay in the inbox). Shapes follow Meta's "Webhooks
components" reference for ``field: messages``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Profile(_Wire):
    name: str | None = None


class Contact(_Wire):
    """``value.contacts[]``: who sent the messages of this change."""

    profile: Profile | None = None
    wa_id: str | None = None
    # Business-scoped user id (BSUID, e.g. ``ID.1502576394655843``): present
    # for every user from 2026, the only id when a user hides the phone number.
    user_id: str | None = None


class TextBody(_Wire):
    body: str = ""


class Media(_Wire):
    """``image`` / ``video`` / ``audio`` / ``document`` / ``sticker``: an id to fetch, not bytes."""

    id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None


class WaLocation(_Wire):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class SharedName(_Wire):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class SharedPhone(_Wire):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class SharedContact(_Wire):
    name: SharedName | None = None
    phones: list[SharedPhone] = Field(default_factory=list)


class Choice(_Wire):
    """An ``interactive`` button or list reply."""

    id: str | None = None
    title: str | None = None
    description: str | None = None


class Interactive(_Wire):
    type: str | None = None
    button_reply: Choice | None = None
    list_reply: Choice | None = None


class Button(_Wire):
    """A quick-reply button of a template message."""

    text: str | None = None
    payload: str | None = None


class ReplyContext(_Wire):
    """Set when the user answered (swiped on) one of our messages."""

    id: str | None = None
    from_: str | None = Field(default=None, alias="from")


class Message(_Wire):
    id: str
    # ``from`` is the wa_id (a phone number in digits); it may be missing for
    # a user who hides the number, then ``from_user_id`` (BSUID) is the sender.
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    timestamp: str | None = None
    type: str = "unknown"
    text: TextBody | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: WaLocation | None = None
    contacts: list[SharedContact] | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    context: ReplyContext | None = None


class StatusError(_Wire):
    code: int | None = None
    title: str | None = None
    message: str | None = None


class Status(_Wire):
    """A receipt for a message we sent: ``sent``, ``delivered``, ``read``, ``failed``."""

    id: str
    status: str
    recipient_id: str | None = None
    timestamp: str | None = None
    errors: list[StatusError] = Field(default_factory=list)


class Value(_Wire):
    messaging_product: str | None = None
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)


class Change(_Wire):
    field: str | None = None
    value: Value = Field(default_factory=Value)


class Entry(_Wire):
    id: str | None = None
    changes: list[Change] = Field(default_factory=list)


class Notification(_Wire):
    object: str | None = None
    entry: list[Entry] = Field(default_factory=list)

    def values(self) -> list[Value]:
        return [change.value for entry in self.entry for change in entry.changes]
