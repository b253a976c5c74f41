"""Table tests of the normalizer's pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from normalizer import NeedsHelp, NewComplaint, StatusQuery, normalize
from normalizer.normalize import strip_keyword
from normalizer.phone import to_e164
from normalizer.text import clean_text
from normalizer.tracking import ALPHABET, canonical_tracking_id, new_tracking_id, quoted_tracking_id
from normalizer.types import ChannelMessage, Location

RECEIVED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+62 812-3456-7890", "+6281234567890"),
        ("+62 (812) 3456 7890", "+6281234567890"),
        ("whatsapp:+6281234567890", "+6281234567890"),
        ("tel:+6281234567890", "+6281234567890"),
        ("0215551234", "+62215551234"),  # Jakarta landline
        ("+14155552671", "+14155552671"),
        ("1708", None),  # the short code itself is no reporter phone
        ("TELKOMSEL", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_numbers_become_e164(raw: str | None, expected: str | None) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jalan   rusak  ", "Jalan rusak"),
        ("Jalan\u00a0rusak\u200b", "Jalan rusak"),
        ("baris satu\r\nbaris dua\r\n\r\n\r\n\r\nbaris tiga", "baris satu\nbaris dua\n\nbaris tiga"),
        ("Cafe\u0301", "Café"),  # NFC
        ("bel\x07 berbunyi\x00", "bel berbunyi"),
        ("\ufeffLAPOR", "LAPOR"),
        ("tab\tdi\ttengah", "tab di tengah"),
    ],
)
def test_text_is_cleaned(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("LAPOR jalan rusak", "jalan rusak"),
        ("lapor: jalan rusak", "jalan rusak"),
        ("Lapor#jalan rusak", "jalan rusak"),
        ("LPR jalan rusak", "jalan rusak"),
        ("  LAPOR   jalan rusak", "jalan rusak"),
        ("jalan rusak", "jalan rusak"),
        ("Laporan saya tentang jalan", "Laporan saya tentang jalan"),  # a word that starts like the keyword
        ("LPR-7K3Q9X tambahan: masih rusak", "LPR-7K3Q9X tambahan: masih rusak"),  # a quoted id, not the keyword
        ("LAPOR", ""),
    ],
)
def test_leading_keyword_is_stripped(raw: str, expected: str) -> None:
    assert strip_keyword(raw) == expected


def test_tracking_ids_avoid_confusable_symbols() -> None:
    rng = random.Random(7)
    ids = {new_tracking_id(rng.choice) for _ in range(2000)}
    assert len(ids) == 2000
    for tracking_id in ids:
        assert tracking_id.startswith("LPR-") and len(tracking_id) == 10
        assert not set(tracking_id[4:]) & set("0O1I")
    assert not set(ALPHABET) & set("0O1I")


def test_fresh_tracking_ids_use_every_symbol_of_the_alphabet_and_only_those() -> None:
    ids = [new_tracking_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(tracking_id.startswith("LPR-") and len(tracking_id) == 10 for tracking_id in ids)
    assert {symbol for tracking_id in ids for symbol in tracking_id[4:]} == set(ALPHABET)
    assert len(new_tracking_id(length=8)) == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("LPR-7K3Q9X", "LPR-7K3Q9X"),
        ("lpr-7k3q9x", "LPR-7K3Q9X"),
        ("LPR 7K3Q9X", "LPR-7K3Q9X"),
        ("7k3q9x", "LPR-7K3Q9X"),
        ("LPR-7K3Q9X2", "LPR-7K3Q9X2"),  # grown ids stay valid
        ("LPR-7K3O9X", None),  # O is never in an id
        ("halo", None),
    ],
)
def test_tracking_ids_are_recognised_in_any_case(text: str, expected: str | None) -> None:
    assert canonical_tracking_id(text) == expected


def test_quoted_tracking_id_needs_the_prefix() -> None:
    assert quoted_tracking_id("lpr-7k3q9x tambahan: masih rusak") == "LPR-7K3Q9X"
    assert quoted_tracking_id("jalan berlubang") is None


def sms(text: str, **fields: object) -> ChannelMessage:
    return ChannelMessage(
        channel="sms", provider="kannel", external_id="m1", text=text, sender_phone="081234567890", **fields
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STATUS LPR-7K3Q9X", StatusQuery("LPR-7K3Q9X")),
        ("status lpr-7k3q9x", StatusQuery("LPR-7K3Q9X")),
        ("Status 7K3Q9X", StatusQuery("LPR-7K3Q9X")),
        ("/status LPR-7K3Q9X", StatusQuery("LPR-7K3Q9X")),
        ("STATUS", StatusQuery(None)),
        ("STATUS apa ya", StatusQuery(None)),
        ("", NeedsHelp("empty")),
        ("LAPOR", NeedsHelp("keyword_only")),
        ("lapor:  ", NeedsHelp("keyword_only")),
    ],
)
def test_what_a_message_asks_for(text: str, expected: object) -> None:
    assert normalize(sms(text), RECEIVED) == expected


def test_complaint_record_from_an_sms() -> None:
    outcome = normalize(sms("LAPOR  jalan berlubang di Jl. Merdeka 10"), RECEIVED)

    assert isinstance(outcome, NewComplaint)
    record = outcome.record
    assert record.body == "jalan berlubang di Jl. Merdeka 10"
    assert record.kind == "complaint"
    assert record.reporter.phone == "+6281234567890"
    assert record.received_at == RECEIVED
    assert record.parent_tracking_id is None
    assert record.status == "received"


def test_a_quoted_tracking_id_makes_a_follow_up() -> None:
    outcome = normalize(sms("LPR-7K3Q9X tambahan: sekarang ada genangan"), RECEIVED)

    assert isinstance(outcome, NewComplaint)
    assert outcome.record.parent_tracking_id == "LPR-7K3Q9X"


def test_keyword_only_with_a_photo_is_still_a_complaint() -> None:
    from normalizer.types import Attachment

    photo = Attachment(filename="a.jpg", content_type="image/jpeg", size=3, sha256="ab" * 32)
    assert isinstance(normalize(sms("LAPOR", attachments=(photo,)), RECEIVED), NewComplaint)


def test_anonymous_reporter_keeps_no_identity() -> None:
    outcome = normalize(sms("LAPOR pungli di kantor kelurahan", anonymity="anonymous", sender_name="X"), RECEIVED)

    assert isinstance(outcome, NewComplaint)
    assert outcome.record.reporter.public_view() == {
        "name": None,
        "phone": None,
        "email": None,
        "telegram_id": None,
        "anonymity": "anonymous",
    }
    assert outcome.record.reporter.phone is None


def test_manual_entries_are_always_complaints_with_their_kind() -> None:
    message = ChannelMessage(
        channel="manual",
        provider="callcenter",
        external_id="k",
        text="STATUS jalan",  # typed by an agent: not a command
        kind="aspiration",
        detect_intent=False,
        location=Location(text="  Jl. Merdeka  "),
    )
    outcome = normalize(message, RECEIVED)

    assert isinstance(outcome, NewComplaint)
    assert outcome.record.kind == "aspiration"
    assert outcome.record.body == "STATUS jalan"
    assert outcome.record.location == Location(text="Jl. Merdeka")


def test_a_custom_keyword_list_is_honoured() -> None:
    outcome = normalize(sms("ADUAN lampu mati"), RECEIVED, keywords=["ADUAN"])
    assert isinstance(outcome, NewComplaint)
    assert outcome.record.body == "lampu mati"


@pytest.mark.parametrize(
    "text",
    ["Statusnya jalan rusak di Jl. Merdeka belum diperbaiki", "statuskan tanah saya", "STATUSQUO pasar ini"],
)
def test_a_word_that_starts_with_status_is_a_complaint_not_a_status_question(text: str) -> None:
    outcome = normalize(sms(text), RECEIVED)
    assert isinstance(outcome, NewComplaint)
    assert outcome.record.body == text
