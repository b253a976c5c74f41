"""One e-mail (RFC 5322 + MIME bytes) → one ``ChannelMessage``; shared by the SMTP and IMAP edges.

Pure: bytes and the edge's meta in, a message out, no I/O. The structure is
read with the ``compat32`` policy, which tolerates what real mail does (broken
RFC 2231 parameters, missing boundaries, raw 8-bit headers) where
``policy.default`` raises; headers and bodies are then decoded here with
charset fallbacks, so a badly labelled mail is still read rather than dropped.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parseaddr
from typing import Any, Final
from urllib.parse import unquote

from channels.base import InboxItem
from channels.email.text import decode_text, html_to_text, strip_quotes_and_signature
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.tracking import quoted_tracking_id
from normalizer.types import Attachment, ChannelMessage

CHANNEL: Final = "email"
# Longer ids are someone's garbage; a hash keeps the inbox key bounded.
_MAX_MESSAGE_ID = 250
# The newest references are the ones that can point at our acknowledgement.
_MAX_REFERENCES = 20
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|tr|sv|balas|bls)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_SIGNATURE_TYPES = frozenset(
    {"application/pgp-signature", "application/pkcs7-signature", "application/x-pkcs7-signature"}
)
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list"})


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def raw_header(msg: Message, name: str) -> str | None:
    """A header as text before RFC 2047 decoding; raw 8-bit bytes guessed as UTF-8, then cp1252."""
    # raw_items, not get(): compat32's get() turns raw 8-bit bytes into U+FFFD before we can guess them.
    text = next((value for key, value in msg.raw_items() if key.lower() == name.lower()), None)
    if text is None:
        return None
    if _has_surrogates(text):
        text = decode_text(text.encode("utf-8", "surrogateescape"), None)
    return _unfold(text)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(match: re.Match[str]) -> bytes | None:
    """The bytes one RFC 2047 encoded word carries; None when it is broken (then it is kept as written)."""
    encoding, text = match.group(2).upper(), match.group(3)
    try:
        if encoding == "B":
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded one by one, each by its own charset (with ``decode_text``'s fallbacks).

    Adjacent words in one charset are joined before decoding (a character may be split across
    two); whitespace between adjacent words is dropped, text between them kept; a broken word
    stays as written, and a broken byte is replaced alone — the rest of the header is unharmed.
    """
    if "=?" not in value:
        return value
    pieces: list[str] = []
    run: list[bytes] = []
    run_charset = ""

    def flush() -> None:
        if run:
            pieces.append(decode_text(b"".join(run), run_charset))
            run.clear()

    position, after_word = 0, False
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        if not (after_word and not gap.strip()):
            flush()
            pieces.append(gap)
        data = _word_bytes(match)
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 adds *language
        if data is None:
            flush()
            pieces.append(match.group(0))
            after_word = False
        else:
            if run and charset.lower() != run_charset.lower():
                flush()
            run.append(data)
            run_charset, after_word = charset, True
        position = match.end()
    flush()
    pieces.append(value[position:])
    return "".join(pieces)


def header_text(msg: Message, name: str) -> str | None:
    raw = raw_header(msg, name)
    return None if raw is None else decode_words(raw).strip()


def address(msg: Message, name: str) -> tuple[str | None, str | None]:
    """(display name, address) of an address header; the name is decoded after splitting."""
    raw = raw_header(msg, name)
    if not raw:
        return None, None
    display, addr = parseaddr(raw)
    name_text = decode_words(display).strip().strip('"').strip()
    addr = addr.strip()
    return name_text or None, addr if "@" in addr else None


def _message_id_of(msg: Message) -> str | None:
    raw = raw_header(msg, "Message-ID")
    if not raw:
        return None
    match = _MESSAGE_ID.search(raw)
    candidate = match.group(0) if match else (f"<{raw}>" if raw and not re.search(r"\s", raw) else None)
    return candidate if candidate and len(candidate) <= _MAX_MESSAGE_ID else None


def external_id(raw: bytes, meta: Mapping[str, Any]) -> str:
    """The dedup key: the Message-ID, or a hash of the bytes when there is none."""
    message_id = _message_id_of(BytesHeaderParser(policy=policy.compat32).parsebytes(raw))
    return message_id or "sha256:" + hashlib.sha256(raw).hexdigest()


def loop_reason(msg: Message, meta: Mapping[str, Any]) -> str | None:
    """Why this mail is a bounce or an automatic reply (answering it could loop), or None."""
    if msg.get_content_type() == "multipart/report":
        return "bounce: multipart/report"
    if meta.get("mail_from") == "":
        return "bounce: empty envelope sender"
    if (raw_header(msg, "Return-Path") or "").strip() == "<>":
        return "bounce: empty Return-Path"
    name, addr = address(msg, "From")
    local_part = (addr or "").split("@", 1)[0].lower()
    if local_part == "mailer-daemon" or re.fullmatch(r"mailer[\s-]?daemon", (name or "").lower()):
        return "bounce: MAILER-DAEMON"
    auto_submitted = (raw_header(msg, "Auto-Submitted") or "").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-reply: Auto-Submitted {auto_submitted}"
    precedence = (raw_header(msg, "Precedence") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"auto-reply: Precedence {precedence}"
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return "auto-reply: X-Autoreply"
    return None


@dataclass
class _Parts:
    texts: list[str] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    return decode_text(data, part.get_content_charset())


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or part.get_content_type() not in ("text/plain", "text/html")


def _best_alternative(children: list[Message]) -> Message | None:
    for child in children:
        if child.get_content_type() == "text/plain" and child.get_content_disposition() != "attachment":
            return child
    for child in reversed(children):
        if child.get_content_type() == "text/html" or child.get_content_maintype() == "multipart":
            return child
    return children[-1] if children else None


def _collect(part: Message, found: _Parts, with_text: bool = True) -> None:
    """Texts and files of ``part``; ``with_text`` False in the alternatives not chosen (their files still count)."""
    content_type = part.get_content_type()
    if content_type in _SIGNATURE_TYPES:
        return
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        # Of an alternative only one text is read, but every branch's files are kept: the picture a
        # citizen pasted into Thunderbird or Gmail lives in the HTML branch's multipart/related.
        chosen = _best_alternative(children) if content_type == "multipart/alternative" else None
        for child in children:
            _collect(child, found, with_text and (chosen is None or child is chosen))
    elif part.get_content_maintype() == "multipart" and part.get_content_disposition() != "attachment":
        # A multipart whose boundary is missing is a leaf holding text: read it as text.
        if with_text:
            found.texts.append(_part_text(part))
    elif _is_attachment(part):
        found.files.append(part)
    elif not with_text:
        return
    elif content_type == "text/html":
        found.texts.append(html_to_text(_part_text(part)))
    else:
        found.texts.append(_part_text(part))


def _attachment_bytes(part: Message) -> bytes:
    if part.is_multipart():
        # A forwarded mail (message/rfc822) is kept whole, as an .eml file.
        inner = part.get_payload()
        return b"".join(child.as_bytes() for child in inner if isinstance(child, Message))
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


_RAW_FILENAME = re.compile(r"\b(?:file)?name\*?(?:\d+)?\*?\s*=\s*\"?([^\";]*)", re.IGNORECASE)


def _filename_from_raw(part: Message) -> str | None:
    """Last resort for parameters even compat32 cannot read: the pieces as written, %-decoded."""
    for header in ("Content-Disposition", "Content-Type"):
        pieces = _RAW_FILENAME.findall(raw_header(part, header) or "")
        joined = "".join(pieces).strip()
        if joined:
            charset, _, value = joined.rpartition("''") if "''" in joined else ("", "", joined)
            return unquote(value, encoding=_codec_or_utf8(charset), errors="replace")
    return None


def _codec_or_utf8(charset: str) -> str:
    try:
        return codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        return "utf-8"


def attachment_filename(part: Message) -> str | None:
    """The decoded file name (RFC 2231 or RFC 2047), without any directory a mailer left in it."""
    try:
        name = part.get_filename()
    except Exception:  # broken RFC 2231 continuations trip compat32 itself (TypeError, ValueError...)
        name = _filename_from_raw(part)
    if not name:
        return None
    if _has_surrogates(name):
        name = decode_text(name.encode("utf-8", "surrogateescape"), None)
    name = decode_words(_unfold(name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None


def _attachments(files: list[Message]) -> tuple[list[Attachment], list[dict[str, Any]]]:
    attachments: list[Attachment] = []
    media: list[dict[str, Any]] = []
    seen: set[str] = set()
    for part in files:
        data = _attachment_bytes(part)
        digest = hashlib.sha256(data).hexdigest()
        if not data or digest in seen:  # the same picture in both alternatives is one attachment
            continue
        seen.add(digest)
        item = Attachment(
            filename=attachment_filename(part),
            content_type=part.get_content_type(),
            size=len(data),
            sha256=digest,
        )
        attachments.append(item)
        # ``enrich`` gets no raw payload, so the bytes travel with the message to be saved there.
        media.append({**asdict(item), "data": base64.b64encode(data).decode("ascii")})
    return attachments, media


def references(msg: Message) -> list[str]:
    """Message-IDs named in In-Reply-To and References, newest last, without repeats."""
    found: list[str] = []
    for name in ("References", "In-Reply-To"):
        found.extend(_MESSAGE_ID.findall(raw_header(msg, name) or ""))
    return list(dict.fromkeys(found))[-_MAX_REFERENCES:]


def strip_reply_prefix(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()


def _parse(raw: bytes, meta: Mapping[str, Any], provider: str) -> ChannelMessage:
    if not raw.strip():
        raise PayloadError("empty e-mail")
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    if not msg.keys():
        raise PayloadError("not an e-mail: no header lines")
    reason = loop_reason(msg, meta)
    if reason:
        raise IgnoredMessage(reason)
    sender_name, sender_email = address(msg, "From")
    _, reply_address = address(msg, "Reply-To")
    envelope_sender = meta.get("mail_from")
    subject = header_text(msg, "Subject") or None
    found = _Parts()
    _collect(msg, found)
    text = strip_quotes_and_signature("\n\n".join(found.texts))
    if not text and subject:
        # A mail whose whole complaint is in the subject line.
        text = strip_reply_prefix(subject)
    attachments, media = _attachments(found.files)
    message_id = _message_id_of(msg)
    return ChannelMessage(
        channel=CHANNEL,
        provider=provider,
        external_id=message_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        text=text,
        subject=subject,
        sender_name=sender_name,
        sender_email=sender_email,
        reply_to=reply_address or sender_email or (envelope_sender if isinstance(envelope_sender, str) else None),
        parent_tracking_id=quoted_tracking_id(subject or ""),
        attachments=tuple(attachments),
        extra={
            "subject": subject,
            "message_id": message_id,
            "reply_references": references(msg),
            # Topmost first, as written: channels/email/acks.py decides from them whom to acknowledge.
            "authentication_results": [
                _unfold(str(value))[:2000] for key, value in msg.raw_items() if key.lower() == "authentication-results"
            ][:10],
            "media": media,
        },
    )


def parse_mail(raw: bytes, meta: Mapping[str, Any], provider: str) -> list[ChannelMessage]:
    """The one message in a mail; IgnoredMessage for bounces and auto-replies, PayloadError for junk."""
    try:
        return [_parse(raw, meta, provider)]
    except (IgnoredMessage, PayloadError):
        raise
    except Exception as exc:  # whatever a hostile mail trips over, it goes to the failed list, never crashes
        raise PayloadError(f"e-mail could not be parsed: {exc.__class__.__name__}: {exc}") from exc


# Copied into the inbox row's headers so an admin can tell failed mails apart without parsing them.
_SUMMARY_HEADERS = ("Message-ID", "Date", "From", "Subject", "In-Reply-To")


def inbox_headers(raw: bytes) -> dict[str, str]:
    """A few top-level headers of a raw mail, as written (not decoded)."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    found = {name: raw_header(headers, name) for name in _SUMMARY_HEADERS}
    return {name: value[:500] for name, value in found.items() if value}


def inbox_item(raw: bytes, meta: Mapping[str, Any], provider: str) -> InboxItem:
    """A raw mail as the inbox takes it, whichever door (SMTP listener, IMAP poller) it came in by."""
    return InboxItem(
        channel=CHANNEL,
        provider=provider,
        external_id=external_id(raw, meta),
        raw=raw,
        headers=inbox_headers(raw),
        meta=meta,
    )
