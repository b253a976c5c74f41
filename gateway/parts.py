"""What the HTTP surface uses of a running gateway, as a protocol the routes depend on.

``gateway/app.py`` builds the parts and mounts the routes; ``api``, ``entry``
and the web pages need only this shape, so they import it instead of the app
(the arrows run one way: wiring above, the shape of what it wires below).
"""

from __future__ import annotations

from typing import Protocol

from gateway.auth import TokenCache
from gateway.config import Config
from gateway.inbox import InboxWriter
from gateway.waiters import Waiters
from gateway.worker import Worker
from sinks.store.db import Store


class Parts(Protocol):
    """The running parts of one gateway process (``gateway.app.Gateway`` is the one implementation)."""

    config: Config
    store: Store
    inbox: InboxWriter
    waiters: Waiters
    tokens: TokenCache
    worker: Worker
