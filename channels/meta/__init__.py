"""What Meta's messaging products share: one app, one handshake, one signature, one Graph API.

WhatsApp Cloud API (``channels/whatsapp``), Messenger (``channels/messenger.py``)
and Instagram messaging (``channels/instagram.py``) are all webhooks of one
Meta app. They share, from here:

- ``settings.MetaAppSettings``: verify token, app secret, access token, Graph
  API base and version (each product adds its own keys);
- ``signature``: ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the
  app secret), checked before any parsing, in constant time;
- ``webhook.meta_router``: the ``GET`` subscription handshake
  (``hub.mode=subscribe``, ``hub.verify_token``, ``hub.challenge``) and the
  signed ``POST`` that puts each item of a notification in the inbox;
- ``notification``: reading a notification and cutting it down to the one
  item an inbox row stands for;
- ``graph``: Graph API calls (errors mapped onto the tree) and media downloads
  through ``channels.media``;
- ``window``: the 24-hour standard-messaging window for replies.

Each product's parsing (what a message becomes) stays in its own module.
"""
