"""Mail files in, ChannelMessage out: a table over ``tests/payloads/email/*.eml``.

``cpython_msg_*.eml`` are copied from CPython's own e-mail test corpus
(Lib/test/test_email/data); the others are hand-written nasty cases.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.email import imap, smtp
from channels.email.media import save_attachments
from channels.email.mime import external_id, parse_mail
from channels.email.text import decode_text, html_to_text, strip_quotes_and_signature
from normalizer import NewComplaint, normalize
from normalizer.errors import IgnoredMessage, PayloadError
from normalizer.types import ChannelMessage
from tests.channels.email_rig import MemoryInbox, make_context

PAYLOADS = Path(__file__).parent.parent / "payloads" / "email"

# file → the fields that matter (checked exactly), or the error parse must raise.
EXPECTED: dict[str, dict[str, Any] | type[Exception]] = {
    "cpython_msg_01.eml": {
        "text": "Hi,\n\nDo you like this message?\n\n-Me",
        "subject": "This is a test message",
        "sender_name": "John X. Doe",
        "sender_email": "bbb@ddd.com",
        "reply_to": "bbb@ddd.com",
        "external_id": "<15090.61304.110929.45684@aaa.zzz.org>",
        "attachments": [],
    },
    "cpython_msg_07.eml": {
        "text": "Hi there,\n\nThis is the dingus fish.",
        "sender_name": "Barry",
        "attachments": [("dingusfish.gif", "image/gif", 3512)],
    },
    "cpython_msg_22.eml": {
        "text": "Text text text.\n\nText text text.",
        "subject": None,
        "sender_email": "b@example.com",
        "external_id": "<a05001902b7f1c33773e9@[134.84.183.138]>",
        "attachments": [("wibble.JPG", "image/jpeg", 272), ("wibble2.JPG", "image/jpeg", 317)],
    },
    "cpython_msg_26.eml": {
        "text": "Simple email with attachment.",
        "sender_name": "Father Time",
        "attachments": [("clock.bmp", "application/riscos", 630)],
    },
    # A mailing-list post (Precedence: bulk): never a complaint, never answered.
    "cpython_msg_32.eml": IgnoredMessage,
    # multipart/alternative without a boundary: the body is still read as text.
    "cpython_msg_41.eml": {"text": "Blah blah blah", "subject": "64423", "sender_name": "Allison Dunlap"},
    # "From: MAILER DAEMON <>", multipart/report: a bounce.
    "cpython_msg_43.eml": IgnoredMessage,
    # PGP/MIME: the signature is not an attachment of the complaint.
    "cpython_msg_45.eml": {"text": "This is the signed contents.", "attachments": []},
    # A forwarded mail is kept whole as an attachment.
    "cpython_msg_46.eml": {"text": "GroupwiseForwardingTest", "attachments": [(None, "message/rfc822", 375)]},
    # A picture pasted into the HTML branch (multipart/related) while the plain text is the one read.
    "inline_image_in_html_alternative.eml": {
        "text": "Lubang besar di depan pasar, fotonya saya tempel di bawah.",
        "attachments": [("tempelan.png", "image/png", 168), ("surat-rt.pdf", "application/pdf", 27)],
    },
    # 7-bit bytes in a 7-bit charset: decoded by the declared charset, not read as ASCII.
    "iso2022jp_subject_and_body.eml": {
        "text": "道路に大きな穴があります。\n修理をお願いします。",
        "subject": "道路の穴について",
        "sender_name": "田中",
    },
    # One stray byte in a raw UTF-8 name, one broken encoded word: only they are replaced or kept.
    "utf8_header_stray_byte_and_broken_word.eml": {
        "subject": "Pengaduan jalan =?UTF-8?B?S2VydXNha2FuIG!!!?= rusak – é",
        "sender_name": "Déwi Ñoviantï\ufffd",
        "text": "Jalan rusak di Kelurahan Sukamaju.",
    },
    "indonesian_signature.eml": {
        "text": (
            "Selamat pagi,\n\nJalan di depan SDN 3 Sudirman berlubang besar sejak dua minggu. Sudah ada "
            "dua pengendara motor jatuh. Mohon segera diperbaiki – terima kasih."
        ),
        "subject": "Jalan berlubang di Jl. Sudirman – mohon diperbaiki",
        "sender_name": "Budi Santoso – Warga",
        "sender_email": "budi.santoso@contoh.id",
        "parent_tracking_id": None,
    },
    "reply_pada_menulis.eml": {
        "text": "Sudah seminggu, lubangnya makin besar. Foto menyusul.",
        "parent_tracking_id": "LPR-7K3Q9X",
        "reply_references": ["<CAB7x1@mail.contoh.id>", "<ack.1730000000.42@lapor.localhost>"],
    },
    "reply_gmail_alternative.eml": {
        "text": "Still not collected after five days.",
        "sender_name": "Siti Aminah",
        "parent_tracking_id": "LPR-ABCDEF",
        "reply_references": ["<ack.2@lapor.localhost>"],
    },
    "html_only.eml": {"text": "Lampu jalan di Gg. Melati mati & gelap.\n\nSudah tiga malam.\nMohon dicek."},
    "latin1_mislabelled_cp1252.eml": {"text": "Petugas minta “uang rokok” € 5 di loket – café depan kantor."},
    "gb2312_label_gb18030_text.eml": {"text": "朱镕基路的路灯坏了", "subject": "投诉"},
    "unknown_charset.eml": {"text": "Air keruh sejak kemarin — berbau juga. Tagihan tetap naik 20\u00a0%."},
    "raw_8bit_headers.eml": {"subject": "Trotoar rusak — Jl. Merdeka", "sender_name": "José Ramírez"},
    "rfc2231_filenames.eml": {
        "attachments": [
            ("banjir – RT 04.png", "image/png", 29),
            ("surat permohonan warga.pdf", "application/pdf", 21),
            ("foto kerusakan.jpg", "image/jpeg", 22),
        ]
    },
    # Parameters even compat32 cannot read: the files are kept, with the best name we can make out.
    "rfc2231_broken.eml": {
        "text": "Lampiran dengan nama aneh.",
        "attachments": [
            ("foto\ufffd.png", "image/png", 29),
            ("data.binx", "application/octet-stream", 5),
            ("scan.pdf", "application/octet-stream", 5),
        ],
    },
    "truncated_no_closing_boundary.eml": {
        "text": "Pesan ini terpotong di tengah lampiran.",
        "attachments": [("potong.png", "image/png", 22)],
    },
    "auto_reply_out_of_office.eml": IgnoredMessage,
    "x_autoreply.eml": IgnoredMessage,
    "mailer_daemon_plain.eml": IgnoredMessage,
    # No Message-ID: keyed by a hash of the bytes; an empty body leaves the subject as the complaint.
    "no_message_id_subject_only.eml": {
        "text": "LAPOR pohon tumbang di Jl. Kenanga",
        "sender_email": "tono@contoh.id",
        "reply_to": "tono.kantor@contoh.id",
        "external_id": "sha256:"
        + hashlib.sha256((PAYLOADS / "no_message_id_subject_only.eml").read_bytes()).hexdigest(),
    },
    # "Auto-Submitted: no" is a person; Outlook's unquoted original below the separator is dropped.
    "outlook_original_message.eml": {"text": "Masih ada parkir liar setiap malam.", "parent_tracking_id": "LPR-QWERTZ"},
    "not_an_email.eml": PayloadError,
}


def _fields(message: ChannelMessage) -> dict[str, Any]:
    return {
        "text": message.text,
        "subject": message.subject,
        "sender_name": message.sender_name,
        "sender_email": message.sender_email,
        "reply_to": message.reply_to,
        "external_id": message.external_id,
        "parent_tracking_id": message.parent_tracking_id,
        "reply_references": message.extra["reply_references"],
        "attachments": [(each.filename, each.content_type, each.size) for each in message.attachments],
    }


def test_every_payload_file_is_in_the_table() -> None:
    assert sorted(path.name for path in PAYLOADS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize(("filename", "expected"), sorted(EXPECTED.items()))
def test_mail_file_parses_to_channel_message(filename: str, expected: dict[str, Any] | type[Exception]) -> None:
    raw = (PAYLOADS / filename).read_bytes()
    if isinstance(expected, type):
        with pytest.raises(expected):
            parse_mail(raw, {}, "smtp")
        return
    [message] = parse_mail(raw, {}, "smtp")
    assert message.channel == "email"
    assert message.provider == "smtp"
    got = _fields(message)
    assert {key: got[key] for key in expected} == expected
    assert message.external_id == external_id(raw, {})


def _mangled(raw: bytes, rng: random.Random) -> bytes:
    """One random injury of the kind real mail suffers: truncated, bytes flipped, lines lost or doubled."""
    cut = rng.randrange(len(raw) + 1)
    lines = raw.split(b"\n")
    line = rng.randrange(len(lines))
    injuries = [
        raw[:cut],
        raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :],
        b"\n".join(lines[:line] + lines[line + 1 :]),
        b"\n".join(lines[:line] + [lines[line]] * 3 + lines[line + 1 :]),
        raw.replace(b"\r\n", b"\r") if rng.random() < 0.5 else raw.replace(b"\r\n", b"\n"),
        raw[:cut] + b"\r\n--" + raw[cut:],
        raw[:cut] + b"=?utf-8?b?" + raw[cut:],
    ]
    return rng.choice(injuries)


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_mangled_mail_is_parsed_or_refused_but_never_crashes(filename: str) -> None:
    raw = (PAYLOADS / filename).read_bytes()
    rng = random.Random(filename)  # the same injuries on every run
    for _ in range(40):
        damaged = _mangled(raw, rng)
        try:
            messages = parse_mail(damaged, {}, "smtp")
        except (IgnoredMessage, PayloadError):
            continue
        assert [message.external_id == external_id(damaged, {}) for message in messages] == [True]


def test_adapters_parse_the_same_mail_under_their_own_provider() -> None:
    raw = (PAYLOADS / "cpython_msg_01.eml").read_bytes()
    assert smtp.ADAPTER.parse(raw, {})[0].provider == "smtp"
    assert imap.ADAPTER.parse(raw, {})[0].provider == "imap"
    assert (
        smtp.ADAPTER.external_id(raw, {})
        == imap.ADAPTER.external_id(raw, {})
        == "<15090.61304.110929.45684@aaa.zzz.org>"
    )


def test_extra_carries_subject_and_message_id_for_the_acknowledgement() -> None:
    [message] = parse_mail((PAYLOADS / "indonesian_signature.eml").read_bytes(), {}, "smtp")
    assert message.extra["subject"] == "Jalan berlubang di Jl. Sudirman – mohon diperbaiki"
    assert message.extra["message_id"] == "<CAB7x1@mail.contoh.id>"


def test_empty_envelope_sender_is_a_bounce_whatever_the_headers_say() -> None:
    raw = (PAYLOADS / "cpython_msg_01.eml").read_bytes()
    with pytest.raises(IgnoredMessage, match="empty envelope sender"):
        parse_mail(raw, {"mail_from": ""}, "smtp")


def test_envelope_sender_answers_a_mail_without_from() -> None:
    [message] = parse_mail(b"Subject: Lampu mati\r\n\r\nLampu jalan mati.\r\n", {"mail_from": "x@contoh.id"}, "smtp")
    assert message.sender_email is None
    assert message.reply_to == "x@contoh.id"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\x00\x01\x02\x03 binary garbage without any header"])
def test_bytes_that_are_no_mail_are_a_payload_error(raw: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_mail(raw, {}, "smtp")


def test_a_mail_that_is_only_an_attachment_still_makes_a_complaint() -> None:
    [message] = parse_mail((PAYLOADS / "cpython_msg_22.eml").read_bytes(), {}, "smtp")
    outcome = normalize(message, received_at=datetime(2026, 11, 25, tzinfo=UTC))
    assert isinstance(outcome, NewComplaint)
    assert len(outcome.record.attachments) == 2


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        (b"caf\xe9 \x80", "iso-8859-1", "café €"),
        (b"caf\xc3\xa9", "iso-8859-1", "café"),  # UTF-8 under a Latin-1 label is still UTF-8
        (b"\xd6\xec\xe9\x46\xbb\xf9", "gb2312", "朱镕基"),
        (b"\xe2\x80\x94", "x-nonexistent", "—"),
        (b"\x81 \xe2\x80", "us-ascii", "\ufffd â€"),  # neither UTF-8 nor cp1252: replaced, never raised
        (b"plain", None, "plain"),
    ],
)
def test_decode_text_survives_lying_charset_labels(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_text(data, charset) == expected


def test_raw_8bit_text_next_to_encoded_words_keeps_both() -> None:
    raw = "Subject: Jalan — =?utf-8?q?rusak_=E2=80=93?= parah\r\nFrom: a@contoh.id\r\n\r\nisi\r\n".encode()
    assert parse_mail(raw, {}, "smtp")[0].subject == "Jalan — rusak – parah"


def test_html_to_text_keeps_blocks_and_drops_quotes_and_scripts() -> None:
    html = "<div>Satu<br>Dua</div><script>x()</script><blockquote>lama</blockquote><p>Tiga &lt;4&gt;</p>"
    assert html_to_text(html) == "Satu\nDua\n\nTiga <4>"


def test_html_quote_container_is_skipped_with_everything_nested_in_it() -> None:
    html = (
        '<div dir="ltr">Masih rusak.</div><div class="gmail_quote"><div dir="ltr">On Mon wrote:</div>'
        "<div>lama</div><blockquote>lebih lama</blockquote>masih kutipan</div><p>Salam</p>"
    )
    assert html_to_text(html) == "Masih rusak.\n\nSalam"


def test_outlook_html_reply_stops_at_its_reply_header() -> None:
    html = '<div>Belum ada tindak lanjut.</div><hr><div id="divRplyFwdMsg"><b>From:</b> LAPOR!</div><div>lama</div>'
    assert html_to_text(html) == "Belum ada tindak lanjut."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Baru.\nOn Tue, 3 Nov 2026, LAPOR! <lapor@x.id>\nwrote:\n> lama\n>> lebih lama\nLagi baru.\n-- \nNama",
            "Baru.\nLagi baru.",
        ),
        (
            "Masih rusak.\n\nFrom: LAPOR! <lapor@x.id>\nSent: Monday, 2 November 2026 10:00\nSubject: x\n\nlama",
            "Masih rusak.",
        ),
        ("Masih rusak.\n\nDikirim dari iPhone saya\n", "Masih rusak."),
        ("Dikirim dari kantor desa, surat belum dibalas.", "Dikirim dari kantor desa, surat belum dibalas."),
        ("Pada hari Senin jalan ditutup.", "Pada hari Senin jalan ditutup."),
    ],
)
def test_quotes_attribution_and_signatures_are_stripped(text: str, expected: str) -> None:
    assert strip_quotes_and_signature(text) == expected


def test_enrich_saves_attachment_bytes_by_sha256_and_drops_them_from_extra(tmp_path: Path) -> None:
    raw = (PAYLOADS / "cpython_msg_07.eml").read_bytes()
    [message] = parse_mail(raw, {}, "smtp")
    ctx = make_context(MemoryInbox().accept, tmp_path)

    enriched = asyncio.run(save_attachments(message, smtp.SmtpSettings(), ctx))

    [attachment] = enriched.attachments
    stored = (tmp_path / "attachments" / attachment.sha256).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == attachment.sha256
    assert stored[:6] == b"GIF87a"
    assert attachment.filename == "dingusfish.gif"
    assert "media" not in enriched.extra
    assert enriched.extra["subject"] == "Here is your dingus fish"


def test_enrich_refuses_bytes_that_do_not_match_their_hash(tmp_path: Path) -> None:
    [message] = parse_mail((PAYLOADS / "cpython_msg_07.eml").read_bytes(), {}, "smtp")
    media = [{**message.extra["media"][0], "data": base64.b64encode(b"something else").decode()}]
    tampered = ChannelMessage(**{**message.__dict__, "extra": {**message.extra, "media": media}})
    with pytest.raises(PayloadError):
        asyncio.run(save_attachments(tampered, smtp.SmtpSettings(), make_context(MemoryInbox().accept, tmp_path)))


@pytest.mark.parametrize(
    ("charset", "text"),
    [("utf-7", "Jalan rusak – mohon dibantu"), ("hz-gb-2312", "道路损坏"), ("iso-2022-kr", "도로 파손")],
)
def test_seven_bit_charsets_are_decoded_by_their_label(charset: str, text: str) -> None:
    data = text.encode(charset)
    assert data.isascii()
    assert decode_text(data, charset) == text
