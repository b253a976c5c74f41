"""Text helpers for mail bodies: charsets that lie, HTML-only mail, quoted replies, signatures.

Pure functions, no I/O; ``mime.py`` applies them to the parts it picks.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

# Labels that lie in the wild: mailers write iso-8859-1 (or ascii) and send
# Windows-1252 (curly quotes, euro sign); gb2312 text uses GBK/GB18030 characters.
_CHARSET_FIXES: dict[str, str] = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "ansi-x3.4-1968": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "utf8": "utf-8",
}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = _CHARSET_FIXES.get(label.strip().strip('"').lower(), label.strip().strip('"').lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


# Charsets whose bytes are all 7-bit: reading them as ASCII would store the escape sequences undecoded.
_SEVEN_BIT = frozenset(
    {"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext"}
    | {"iso2022_kr", "utf-7", "hz"}
)


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 with a stray byte or two (a truncated header, one bad byte), not text in a single-byte charset."""
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    valid = sum(1 for char in text if ord(char) > 127 and char != "\ufffd")
    return valid >= 2 and broken < valid


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a body or header in a declared charset → str, never raising.

    A 7-bit charset (ISO-2022-JP, UTF-7, HZ) is decoded as declared before anything else.
    Western labels (ASCII, Latin-1, cp1252) and unknown ones: strict UTF-8
    first (valid UTF-8 is hardly ever an accident), then — when it is UTF-8 but
    for a stray byte — UTF-8 with only the broken bytes replaced, then cp1252.
    Any other declared charset first, then UTF-8. cp1252 with replacement
    characters is the last resort.
    """
    declared = _codec(charset)
    if declared in _SEVEN_BIT:
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass  # not what the label says: read it like any other
    if data.isascii():
        return data.decode("ascii")
    candidates = ["utf-8", "cp1252"] if declared in (None, "utf-8", "cp1252") else [declared, "utf-8"]
    for name in candidates:
        if name == "cp1252" and _mostly_utf8(data):
            return data.decode("utf-8", errors="replace")
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="replace")
    return data.decode("cp1252", errors="replace")


# Block-level tags end a line when HTML is turned into text.
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "hr", "pre", "section"}
)
# Nothing inside these is the citizen's text: styles, scripts, the quoted earlier mail.
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "blockquote"})
# Containers mailers put the quoted earlier mail in (Gmail, Yahoo, Thunderbird's attribution).
_QUOTE_CONTAINERS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix")
# Outlook puts the old mail *after* these, as siblings: nothing below them is new.
_REPLY_HEADERS = ("divRplyFwdMsg", "appendonsend")


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip_depth = 0
        self._stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped:
            return
        if self._skip_depth:
            # Count nested containers so the skipped region ends with its own closing tag.
            if tag in _SKIPPED_TAGS or tag == "div":
                self._skip_depth += 1
            return
        attributes = dict(attrs)
        marks = f"{attributes.get('class') or ''} {attributes.get('id') or ''}"
        if tag == "div" and any(mark in marks for mark in _REPLY_HEADERS):
            self._stopped = True
        elif tag in _SKIPPED_TAGS or (tag == "div" and any(mark in marks for mark in _QUOTE_CONTAINERS)):
            self._skip_depth = 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS and not self._skip_depth and not self._stopped:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._stopped:
            return
        if self._skip_depth:
            if tag in _SKIPPED_TAGS or tag == "div":
                self._skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth and not self._stopped:
            self.chunks.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (block tags become line breaks)."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.chunks).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# "On Mon, 1 Jan 2024 at 10:00, Budi <budi@example.id> wrote:" and Gmail's
# Indonesian "Pada tanggal Sen, 1 Jan 2024 pukul 10.00 Budi <…> menulis:",
# either of which a mailer may wrap over up to three lines.
_ATTRIBUTION_START = re.compile(r"^\s*(?:On|Pada)\s", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"(?:wrote|menulis)\s*:\s*$", re.IGNORECASE)
# Outlook and friends quote without ">": everything below the separator is the old mail.
_FORWARDED_ORIGINAL = re.compile(
    r"^\s*(?:-{2,}\s*(?:Original Message|Pesan Asli|Pesan Asal)\s*-{2,}|_{20,})\s*$", re.IGNORECASE
)
# Outlook's plain-text reply header without a separator line: "From: …" then "Sent: …".
_HEADER_FROM = re.compile(r"^\s*\*?(?:From|Dari)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*\*?(?:Sent|Date|Dikirim|Tanggal)\s*:\*?\s+\S", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s?$")
# A phone's signature, only as the mail's short last line ("Dikirim dari …" can start a real sentence).
_DEVICE_SIGNATURE = re.compile(
    r"^\s*(?:Sent from my |Sent from Mail for |Get Outlook for |Dikirim dari (?:iPhone|iPad|Android|ponsel|"
    r"perangkat|HP|Samsung|Xiaomi|Oppo|Vivo|Yahoo|Outlook|Mail|Email|Surel|aplikasi)\b)",
    re.IGNORECASE,
)
_DEVICE_SIGNATURE_MAX = 60


def strip_quotes_and_signature(text: str) -> str:
    """The citizen's own words: quoted lines, attribution lines, old mail and signature removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _SIGNATURE.match(line) or _FORWARDED_ORIGINAL.match(line):
            break
        if _HEADER_FROM.match(line) and index + 1 < len(lines) and _HEADER_SENT.match(lines[index + 1]):
            break
        if line.lstrip().startswith(">"):
            index += 1
            continue
        if _ATTRIBUTION_START.match(line):
            window = lines[index : index + 3]
            ends = [offset for offset, candidate in enumerate(window) if _ATTRIBUTION_END.search(candidate)]
            if ends:
                index += ends[0] + 1
                continue
        kept.append(line)
        index += 1
    while kept and not kept[-1].strip():
        kept.pop()
    if len(kept) > 1 and len(kept[-1]) <= _DEVICE_SIGNATURE_MAX and _DEVICE_SIGNATURE.match(kept[-1]):
        kept.pop()
    return "\n".join(kept).strip()
