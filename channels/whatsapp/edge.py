"""The webhook Meta calls for WhatsApp: the shared Meta handshake and signature check."""

from __future__ import annotations

from fastapi import APIRouter

from channels.base import ChannelContext
from channels.meta.signature import sign, verify
from channels.meta.webhook import meta_router
from channels.whatsapp.parse import CHANNEL, inbox_items
from channels.whatsapp.settings import WhatsAppSettings

PATH = "/webhooks/whatsapp"

__all__ = ["PATH", "router", "sign", "verify"]


def router(settings: WhatsAppSettings, ctx: ChannelContext) -> APIRouter:
    return meta_router(PATH, CHANNEL, settings, ctx, inbox_items)
