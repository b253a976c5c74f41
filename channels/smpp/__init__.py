"""SMPP 3.4: a direct bind to an operator's SMSC (docs/channels/smpp.md).

``service`` holds the bind (one gateway instance at a time) and puts every
deliver_sm in the inbox before answering it; ``parse`` reads the inbox
document back; ``send`` submits replies through the live bind.
"""

from __future__ import annotations

import zlib

import httpx
import structlog
from smpplib import consts

from channels.base import ChannelAdapter, Reply, Sent
from channels.smpp.client import service, submit_all
from channels.smpp.codec import encode_reply
from channels.smpp.message import PROVIDER, external_id, parse, receipts
from channels.smpp.settings import SmppSettings
from normalizer.errors import ProviderError, ProviderRejected

log = structlog.get_logger(__name__)

EVENT_SUBMITTED = "smpp.submitted"

# submit_sm_resp statuses worth another try later; any other non-zero status is a refusal.
RETRYABLE_STATUSES = frozenset(
    {
        consts.SMPP_ESME_RSYSERR,
        consts.SMPP_ESME_RMSGQFUL,
        consts.SMPP_ESME_RTHROTTLED,
        consts.SMPP_ESME_RSUBMITFAIL,
        consts.SMPP_ESME_RX_T_APPN,
    }
)
TON_UNKNOWN, TON_INTERNATIONAL, TON_ALPHANUMERIC = 0, 1, 5
NPI_UNKNOWN, NPI_ISDN = 0, 1
REGISTERED_DELIVERY_RECEIPT = 1


def _address(value: str) -> tuple[str, int, int]:
    """``(addr, ton, npi)``: E.164 as international without '+', a short code as unknown, names as alphanumeric."""
    if value.startswith("+"):
        return value[1:], TON_INTERNATIONAL, NPI_ISDN
    if value.isdigit():
        return value, TON_UNKNOWN, NPI_UNKNOWN
    return value, TON_ALPHANUMERIC, NPI_UNKNOWN


async def send(reply: Reply, settings: SmppSettings, client: httpx.AsyncClient) -> Sent:
    """Submits a reply as submit_sm, in concatenated parts when long (see ``client.submit_all``).

    SMPP has no idempotency key: a retry after a lost submit_sm_resp can send the text twice.
    """
    if settings.bind_mode == "receiver":
        raise ProviderRejected("smpp: bind_mode receiver cannot submit replies")
    # A reference derived from the reply, so a retried reply reuses it and phones join the parts alike.
    try:
        encoded = encode_reply(reply.text, zlib.crc32(reply.idempotency_key.encode()), settings.default_alphabet)
    except ValueError as exc:  # more than 255 parts: no SMSC will take it
        raise ProviderRejected(f"smpp: {exc}") from exc
    source, source_ton, source_npi = _address(settings.short_code)
    destination, dest_ton, dest_npi = _address(reply.to)
    submits = [
        {
            "source_addr": source,
            "source_addr_ton": source_ton,
            "source_addr_npi": source_npi,
            "destination_addr": destination,
            "dest_addr_ton": dest_ton,
            "dest_addr_npi": dest_npi,
            "esm_class": encoded.esm_class,
            "data_coding": encoded.data_coding,
            "registered_delivery": REGISTERED_DELIVERY_RECEIPT,
            "short_message": short_message,
        }
        for short_message in encoded.short_messages
    ]
    try:
        results = await submit_all(settings, submits)
    except Exception as exc:  # link down, bind refused, no resp in time, a garbled PDU: all worth a retry
        raise ProviderError(f"smpp: could not submit ({type(exc).__name__}: {exc})") from exc
    status = results[-1][0]
    if status in RETRYABLE_STATUSES:
        raise ProviderError(f"smpp: submit_sm_resp status 0x{status:08X}")
    if status != consts.SMPP_ESME_ROK:
        raise ProviderRejected(f"smpp: submit_sm_resp status 0x{status:08X}")
    log.info(EVENT_SUBMITTED, parts=len(results), data_coding=encoded.data_coding)
    # Receipts name each part's id; the first one stands for the reply.
    return Sent(provider_message_id=results[0][1] or None)


ADAPTER = ChannelAdapter(
    name="smpp",
    provider=PROVIDER,
    settings=SmppSettings,
    parse=parse,
    external_id=external_id,
    send=send,
    service=service,
    receipts=receipts,
)

__all__ = ["ADAPTER", "SmppSettings", "external_id", "parse", "receipts", "send", "service"]
