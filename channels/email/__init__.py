"""The e-mail channel: our own SMTP listener (``smtp``) and an IMAP poller (``imap``).

Both edges store the mail's bytes untouched; ``mime`` turns them into a
``ChannelMessage`` in the worker and ``relay`` sends the acknowledgement.
"""
