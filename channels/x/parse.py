"""Pure functions over a stored Account Activity API body: row keys and messages.

One body carries ``direct_message_events`` or ``tweet_create_events`` (or
other activity we do not take); the edge stores one inbox row per DM and per
tweet (keys ``dm:<event id>``, ``tweet:<id>``), each keeping the whole signed
body as raw bytes with the event named in ``meta``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from channels.base import InboxItem
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.types import ChannelMessage, Location

CHANNEL: Final = "x"
PROVIDER = "x"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
# The @handles a mention starts with ("@lapor1708 @pemkot jalan rusak ..."): not part of the complaint.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\w+)+\s*")


def load_body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"x webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("x webhook body is not a JSON object")
    for key in ("direct_message_events", "tweet_create_events"):
        events = data.get(key, [])
        if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
            raise PayloadError(f"x webhook {key} is not a list of objects")
    return data


def _dm_sender(event: Mapping[str, Any]) -> str:
    return str((event.get("message_create") or {}).get("sender_id", ""))


def _mentions(tweet: Mapping[str, Any]) -> list[str]:
    entities = (tweet.get("extended_tweet") or {}).get("entities") or tweet.get("entities") or {}
    return [str(mention.get("id_str", "")) for mention in entities.get("user_mentions", [])]


def _tweet_author(tweet: Mapping[str, Any]) -> str:
    return str((tweet.get("user") or {}).get("id_str", ""))


def _why_not(data: Mapping[str, Any], kind: str, event: Mapping[str, Any], our_id: str) -> str | None:
    """Why an event is not a citizen's message to us, or None when it is one."""
    if kind == "dm":
        if event.get("type") != "message_create":
            return f"x direct message event of type {event.get('type')}"
        if _dm_sender(event) == our_id:
            return "x direct message we sent"
        return None
    if _tweet_author(event) == our_id:
        return "x tweet we wrote"
    if "retweeted_status" in event:
        return "x retweet"
    if our_id not in _mentions(event):
        return "x tweet that does not mention us"
    return None


def inbox_items(raw: bytes, headers: Mapping[str, str] | None = None) -> list[InboxItem]:
    """The inbox rows a (verified) body becomes; ``PayloadError`` when malformed."""
    data = load_body(raw)
    our_id = str(data.get("for_user_id", ""))
    kept = dict(headers or {})
    items: list[InboxItem] = []
    for kind, key, events in (
        ("dm", "id", data.get("direct_message_events", [])),
        ("tweet", "id_str", data.get("tweet_create_events", [])),
    ):
        for event in events:
            event_id = str(event.get(key) or "")
            if not event_id:
                raise PayloadError(f"x {kind} event without {key}")
            items.append(
                InboxItem(
                    channel=CHANNEL,
                    provider=PROVIDER,
                    external_id=f"{kind}:{event_id}",
                    raw=raw,
                    headers=kept,
                    meta={"kind": kind, "event_id": event_id, "for_user_id": our_id},
                    ignored_reason=_why_not(data, kind, event, our_id),
                )
            )
    if not items:
        # Likes, follows, typing indicators, read receipts...: kept for provenance, never processed.
        digest = hashlib.sha256(raw).hexdigest()
        items.append(
            InboxItem(
                channel=CHANNEL,
                provider=PROVIDER,
                external_id=f"activity:{digest}",
                raw=raw,
                headers=kept,
                meta={"for_user_id": our_id},
                ignored_reason="x activity without direct messages or mentions",
            )
        )
    return items


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    if meta.get("kind") and meta.get("event_id"):
        return f"{meta['kind']}:{meta['event_id']}"
    return f"activity:{hashlib.sha256(raw).hexdigest()}"


def parse(raw: bytes, meta: Mapping[str, Any]) -> list[ChannelMessage]:
    """The DM or mention the row stands for."""
    data = load_body(raw)
    kind, wanted, our_id = meta.get("kind"), meta.get("event_id"), str(data.get("for_user_id", ""))
    if kind == "dm":
        for event in data.get("direct_message_events", []):
            if str(event.get("id")) == wanted:
                why = _why_not(data, "dm", event, our_id)
                if why:
                    raise IgnoredMessage(why)
                return [dm_message(event, data.get("users") or {})]
    elif kind == "tweet":
        for tweet in data.get("tweet_create_events", []):
            if str(tweet.get("id_str")) == wanted:
                why = _why_not(data, "tweet", tweet, our_id)
                if why:
                    raise IgnoredMessage(why)
                return [mention_message(tweet)]
    else:
        raise IgnoredMessage("x activity without direct messages or mentions")
    raise PayloadError(f"x webhook body does not contain {kind} {wanted}")


def dm_message(event: Mapping[str, Any], users: Mapping[str, Any]) -> ChannelMessage:
    create = event.get("message_create") or {}
    data = create.get("message_data") or {}
    sender = _dm_sender(event)
    user = users.get(sender) or {}
    extra: dict[str, Any] = {"type": "dm", "x_user_id": sender}
    if user.get("screen_name"):
        extra["x_handle"] = "@" + str(user["screen_name"])
    media = (data.get("attachment") or {}).get("media") or {}
    if media.get("media_url_https"):
        # DM media is served only to an OAuth 1.0a-signed request: the link is kept, not fetched.
        extra["external_media_url"] = media["media_url_https"]
    return ChannelMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=str(event.get("id")),
        text=_without_media_link(str(data.get("text", "")), media),
        sender_name=user.get("name"),
        reply_to=sender,
        extra=extra,
    )


def mention_message(tweet: Mapping[str, Any]) -> ChannelMessage:
    """A tweet that mentions us: a public complaint whose reporter is the author's handle."""
    user = tweet.get("user") or {}
    text = str((tweet.get("extended_tweet") or {}).get("full_text") or tweet.get("text") or "")
    handle = "@" + str(user.get("screen_name", ""))
    location = None
    coordinates = (tweet.get("coordinates") or {}).get("coordinates")
    if isinstance(coordinates, list) and len(coordinates) == 2:
        location = Location(lat=float(coordinates[1]), lon=float(coordinates[0]))  # GeoJSON order: lon, lat
    elif isinstance(tweet.get("place"), dict) and tweet["place"].get("full_name"):
        location = Location(text=str(tweet["place"]["full_name"]))
    return ChannelMessage(
        channel=CHANNEL,
        provider=PROVIDER,
        external_id=str(tweet.get("id_str")),
        text=_LEADING_MENTIONS.sub("", text, count=1),
        sender_name=handle,
        # A tweet is public speech: the complaint says so whatever the author's other reports chose.
        anonymity="public",
        location=location,
        reply_to=str(user.get("id_str", "")) or None,
        extra={
            "type": "tweet",
            "x_user_id": str(user.get("id_str", "")),
            "x_handle": handle,
            "x_public": True,
            "x_tweet_url": f"https://x.com/{user.get('screen_name', 'i')}/status/{tweet.get('id_str')}",
        },
    )


def _without_media_link(text: str, media: Mapping[str, Any]) -> str:
    """X appends the attachment's t.co link to the DM text; it says nothing to a reader."""
    link = media.get("url")
    return text.replace(str(link), "").strip() if link else text
