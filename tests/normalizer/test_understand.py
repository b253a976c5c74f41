"""normalize() with the models loaded: what a report comes back with, and what it never overwrites."""

from __future__ import annotations

from datetime import UTC, datetime

from normalizer import NewComplaint, normalize
from normalizer.related import likely_duplicates, similarity
from normalizer.types import ChannelMessage, ComplaintRecord, Location
from normalizer.understand import Understanding

RECEIVED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def sms(text: str, **fields: object) -> ChannelMessage:
    return ChannelMessage(channel="sms", provider="twilio", external_id="SM1", text=text, **fields)  # type: ignore[arg-type]


def record_of(message: ChannelMessage, understanding: Understanding) -> ComplaintRecord:
    outcome = normalize(message, RECEIVED, understanding=understanding)
    assert isinstance(outcome, NewComplaint)
    return outcome.record


def test_the_issues_report_comes_back_with_category_region_and_reasons(understanding: Understanding) -> None:
    record = record_of(
        sms("LAPOR Jalan berlubang besar di depan SDN 2 Slawi, Kecamatan Slawi, Kabupaten Tegal"), understanding
    )
    assert record.category == "jalan"
    assert record.kind == "complaint"
    assert record.priority == "normal"
    assert record.location is not None
    assert record.location.region_code == "33.28.10"
    assert record.location.region_name == "Slawi"
    assert record.location.region_level == "kecamatan"
    assert [code for code, _ in record.location.region_path] == ["33", "33.28", "33.28.10"]
    auto = record.auto
    assert auto is not None
    assert auto["category"]["code"] == "jalan" and "jalan berlubang" in auto["category"]["reasons"]
    assert auto["region"]["code"] == "33.28.10" and "kabupaten tegal" in auto["region"]["reasons"]
    assert auto["kind"]["code"] == "complaint"
    assert auto["priority"]["code"] == "normal"
    assert auto["normalizer"] == understanding.version


def test_slang_report_is_read_too(understanding: Understanding) -> None:
    record = record_of(
        sms("pju di jln dpn sd gk nyala udh sebulan, gelap bgt, mhn tlg dicek kec adiwerna"), understanding
    )
    assert record.category == "pju"
    assert record.location is not None and record.location.region_code == "33.28.11"  # one Adiwerna in Indonesia
    bare = record_of(sms("pju di jln dpn sd gk nyala udh sebulan di adiwerna"), understanding)
    assert bare.location is None  # a bare kecamatan name with no home region: no guess


def test_home_region_settles_a_bare_kecamatan(understanding: Understanding) -> None:
    home = Understanding(understanding.classifier, understanding.regions, home_region="33.28")
    record = record_of(sms("pju di jln dpn sd gk nyala, mhn dicek kec adiwerna"), home)
    assert record.location is not None and record.location.region_code == "33.28.11"
    assert record_of(sms("pju gk nyala udh sebulan"), home).location is None


def test_urgent_report_is_marked_with_reasons(understanding: Understanding) -> None:
    record = record_of(sms("tlg pohon tumbang menutup jalan, motor gk bisa lewat"), understanding)
    assert record.priority == "urgent"
    assert record.category == "pohon"
    assert record.auto is not None and record.auto["priority"]["reasons"]


def test_kind_is_read_from_the_words(understanding: Understanding) -> None:
    assert record_of(sms("mohon info syarat bikin akta kelahiran"), understanding).kind == "information_request"
    assert record_of(sms("usul dibangun taman bermain di rw 3"), understanding).kind == "aspiration"


def test_what_the_channel_gave_is_never_overwritten(understanding: Understanding) -> None:
    message = ChannelMessage(
        channel="manual",
        provider="callcenter",
        external_id="m1",
        text="Lampu jalan mati di Kota Tegal",
        category="pelayanan_publik",
        kind="aspiration",
        location=Location(region_code="33.28", region_name="Kabupaten Tegal"),
        detect_intent=False,
    )
    record = record_of(message, understanding)
    assert record.category == "pelayanan_publik"
    assert record.kind == "aspiration"
    assert record.location is not None and record.location.region_code == "33.28"
    assert record.location.region_level == "kabupaten"  # the given region gets its path filled in
    assert record.auto is not None and record.auto["category"]["code"] == "pju"  # what it would have said


def test_anonymous_reporters_numbers_in_the_body_are_masked(understanding: Understanding) -> None:
    text = "LAPOR pungli di kelurahan, hub saya 0812-3456-7890 / budi@mail.com, NIK 3328051203900001"
    for given in (understanding, None):
        outcome = normalize(sms(text, anonymity="anonymous"), RECEIVED, understanding=given)
        assert isinstance(outcome, NewComplaint)
        body = outcome.record.body
        assert "0812" not in body and "budi@mail.com" not in body and "3328051203900001" not in body
        assert "[PHONE_1]" in body and "[EMAIL_1]" in body and "[NIK_1]" in body
    titled = normalize(
        sms(text, anonymity="anonymous", subject="WA 081234567890", location=Location(text="rumah, hp 081234567890")),
        RECEIVED,
    )
    assert isinstance(titled, NewComplaint)
    assert titled.record.subject == "WA [PHONE_1]"
    assert titled.record.location is not None and "081234567890" not in (titled.record.location.text or "")
    public = normalize(sms(text), RECEIVED, understanding=understanding)
    assert isinstance(public, NewComplaint) and "0812-3456-7890" in public.record.body


def test_without_models_the_record_is_as_the_channel_gave_it() -> None:
    outcome = normalize(sms("LAPOR jalan rusak di kota tegal"), RECEIVED)
    assert isinstance(outcome, NewComplaint)
    assert outcome.record.category is None and outcome.record.auto is None and outcome.record.location is None


def test_near_identical_reports_are_likely_duplicates() -> None:
    report = "Jalan berlubang besar di depan SDN 2 Slawi"
    candidates = [
        ("LPR-AAAAAA", "ada lubang besar di jalan depan SDN 2 slawi tolong"),
        ("LPR-BBBBBB", "jln depan sdn 2 slawi berlubang bgt"),
        ("LPR-CCCCCC", "sampah numpuk di pasar slawi"),
        ("LPR-DDDDDD", "jalan rusak di slawi"),
    ]
    assert likely_duplicates(report, candidates) == ["LPR-BBBBBB", "LPR-AAAAAA"]
    assert similarity(report, report) == 100.0
    assert likely_duplicates("jalan", candidates) == []
