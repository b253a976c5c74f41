"""One error tree, below every layer (channels, sinks and the gateway import it; it imports nothing of ours).

The worker decides retry vs dead-letter from ``retryable`` alone.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    retryable: bool = False


class ConfigError(GatewayError):
    """The configuration is wrong; the message names the key."""


class AuthError(GatewayError):
    """A caller or provider could not prove who it is (bad token, bad signature)."""


class PayloadError(GatewayError):
    """A payload that will never parse, however often we try."""


class UnknownChannel(GatewayError):
    """An inbox row names a channel this gateway does not have."""


class TransientError(GatewayError):
    """Worth trying again later: a provider down, a lock timeout, a network blip."""

    retryable = True


class StoreUnavailable(TransientError):
    """The database could not be reached or could not commit."""


class ProviderError(TransientError):
    """A provider's API refused or failed a call we will retry (5xx, timeout)."""


class ProviderRejected(GatewayError):
    """A provider's API refused a call for good (4xx other than 429)."""


def raise_for_provider_status(status: int, what: str, detail: str = "", also_retry: tuple[int, ...] = ()) -> None:
    """Map a provider's HTTP answer onto the tree: 5xx and 429 (and ``also_retry``) are worth another
    try; any other 4xx will not get better by repeating it."""
    if status < 400:
        return
    message = f"{what} answered {status}" + (f": {detail}" if detail else "")
    if status >= 500 or status == 429 or status in also_retry:
        raise ProviderError(message)
    raise ProviderRejected(message)


class IgnoredMessage(GatewayError):
    """Not a citizen's message (a bounce, a receipt): kept in the inbox, marked ignored."""


class TryLater:
    """Each edge's "try again later", in one place: what an edge answers when the store cannot take a message.

    The sender keeps the message and delivers it again, so nothing acknowledged is lost and nothing
    refused is gone. Edges answer with these when they meet ``StoreUnavailable`` (or any retryable error).
    """

    # Seconds the HTTP answers ask the caller to wait (Retry-After); the store is probed every second.
    RETRY_AFTER_S = 5
    HTTP_STATUS = 503
    # RFC 3463 4.3.0: "other or undefined mail system status", transient: the MTA queues and retries.
    SMTP_REPLY = "451 4.3.0 Could not store the message now, please try again later"
    # SMPP 3.4 ESME_RX_T_APPN (0x64), "ESME receiver temporary app error": the SMSC redelivers the deliver_sm.
    SMPP_STATUS = 0x00000064
    HTTP_DETAIL = "the complaint store is unavailable; try again later"


def try_later(exc: BaseException) -> bool:
    """Whether an edge should answer "try again later" (rather than "refused") for ``exc``."""
    return isinstance(exc, GatewayError) and exc.retryable
