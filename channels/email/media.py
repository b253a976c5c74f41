"""Attachment bytes saved in the worker (``enrich``): parse stays pure, the store keeps files by sha256."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import replace
from typing import Any

from channels.base import ChannelContext
from normalizer.errors import PayloadError
from normalizer.types import Attachment, ChannelMessage


async def save_attachments(message: ChannelMessage, settings: Any, ctx: ChannelContext) -> ChannelMessage:
    """Save every attachment ``parse`` found; the bytes leave ``extra`` so replies do not carry them."""
    saved: list[Attachment] = []
    for item in message.extra.get("media") or []:
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise PayloadError(f"attachment descriptor without readable bytes: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != item.get("sha256"):
            raise PayloadError("attachment bytes do not match the sha256 parse computed")
        saved.append(ctx.save_attachment(data, item.get("filename"), item.get("content_type")))
    extra = {key: value for key, value in message.extra.items() if key != "media"}
    return replace(message, attachments=tuple(saved) or message.attachments, extra=extra)
