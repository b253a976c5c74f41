"""Meta's standard-messaging window: a free-form reply only within 24 hours of the person's message.

Outside it Meta refuses the message (error 10, subcode 2018278 on Messenger
and Instagram; 131047 on WhatsApp). The gateway does not send what Meta will
refuse: such a reply fails at once (``ProviderRejected``) and stays in the
failed list, where staff see that the citizen must be reached another way.
Acknowledgements are queued seconds after the citizen's message, well inside
the window; it matters for later notices (status changes). The window is
measured from when the gateway received the message (Meta delivers within
seconds; a message it retried for days may be refused by Meta anyway, which
is a 4xx and fails the reply the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from normalizer.errors import ProviderRejected

REPLY_WINDOW = timedelta(hours=24)
# When the gateway received the citizen's message (epoch milliseconds): the edge stamps it in the
# row's meta, parse copies it into the message's extra, and send reads it from the reply's.
MESSAGE_TIME_KEY = "received_ms"


def received_now() -> dict[str, int]:
    """The meta an edge adds to a row: the receipt time the window is measured from."""
    return {MESSAGE_TIME_KEY: int(datetime.now(UTC).timestamp() * 1000)}


def check_window(extra: Mapping[str, Any], now: datetime, product: str, window: timedelta = REPLY_WINDOW) -> None:
    """``ProviderRejected`` when the message this reply answers is older than the window."""
    sent_ms = extra.get(MESSAGE_TIME_KEY)
    if not isinstance(sent_ms, int | float):
        return  # no time known: let Meta decide
    age = now - datetime.fromtimestamp(sent_ms / 1000, tz=UTC)
    if age > window:
        hours = int(age.total_seconds() // 3600)
        raise ProviderRejected(
            f"{product}: the citizen's message is {hours} h old, outside Meta's 24-hour window — reach them another way"
        )
