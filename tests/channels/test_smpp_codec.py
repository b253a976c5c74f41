"""GSM 03.38, UCS-2 and UDH on the SMPP wire: pure table tests."""

from __future__ import annotations

import pytest

from channels.gsm import GSM_BASIC, GSM_EXTENSION, gsm_decode, gsm_encode, is_gsm
from channels.smpp.codec import (
    DC_UCS2,
    UDHI,
    Concat,
    concat_from_udh,
    decode_text,
    encode_reply,
    split_udh,
)

GSM_SPOT_CHECKS = [
    ("@", b"\x00"),
    ("£", b"\x01"),
    ("$", b"\x02"),
    ("è", b"\x04"),
    ("\n", b"\x0a"),
    ("Δ", b"\x10"),
    ("_", b"\x11"),
    ("¤", b"\x24"),
    ("¡", b"\x40"),
    ("§", b"\x5f"),
    ("¿", b"\x60"),
    ("à", b"\x7f"),
    ("{", b"\x1b\x28"),
    ("}", b"\x1b\x29"),
    ("[", b"\x1b\x3c"),
    ("]", b"\x1b\x3e"),
    ("~", b"\x1b\x3d"),
    ("\\", b"\x1b\x2f"),
    ("^", b"\x1b\x14"),
    ("|", b"\x1b\x40"),
    ("€", b"\x1b\x65"),
    ("\f", b"\x1b\x0a"),
]


@pytest.mark.parametrize(("char", "septets"), GSM_SPOT_CHECKS)
def test_gsm_character_has_its_table_septets(char: str, septets: bytes) -> None:
    assert gsm_encode(char) == septets
    assert gsm_decode(septets) == char


def test_whole_gsm_alphabet_and_escape_table_round_trip() -> None:
    every = "".join(ch for i, ch in enumerate(GSM_BASIC) if i != 0x1B) + "".join(GSM_EXTENSION.values())
    assert len(GSM_BASIC) == 128
    assert gsm_decode(gsm_encode(every)) == every
    assert len(gsm_encode(every)) == 127 + 2 * len(GSM_EXTENSION)


def test_escape_before_unknown_code_shows_the_basic_character() -> None:
    assert gsm_decode(b"\x1bA") == "A"


def test_byte_above_0x7f_is_no_septet_and_becomes_replacement_char() -> None:
    assert gsm_decode(b"ok\x80") == "ok\ufffd"


def test_characters_outside_gsm_are_refused() -> None:
    assert not is_gsm("harga naïk")
    with pytest.raises(ValueError, match=r"GSM 03\.38"):
        gsm_encode("😡")


@pytest.mark.parametrize(
    ("body", "data_coding", "alphabet", "text"),
    [
        (b"LAPOR \x1b\x65" + b"5", 0x00, "gsm0338", "LAPOR €5"),
        ("kafé".encode("latin-1"), 0x00, "latin1", "kafé"),
        (b"plain", 0x00, "ascii", "plain"),
        (b"plain", 0x01, "gsm0338", "plain"),
        ("kafé".encode("latin-1"), 0x03, "gsm0338", "kafé"),
        ("mati 😡".encode("utf-16-be"), 0x08, "gsm0338", "mati 😡"),
        ("mati 😡".encode("utf-16-be"), 0x18, "gsm0338", "mati 😡"),  # GSM DCS general group, UCS-2
        (b"\x00\x01", 0xF0, "latin1", "@£"),  # message class group, GSM alphabet whatever the default
        ("Привет".encode("iso8859-5"), 0x06, "gsm0338", "Привет"),
    ],
)
def test_data_coding_picks_the_alphabet(body: bytes, data_coding: int, alphabet: str, text: str) -> None:
    assert decode_text(body, data_coding, alphabet) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0xF4])
def test_eight_bit_binary_is_no_text(data_coding: int) -> None:
    assert decode_text(b"\x80\x81", data_coding) is None


def test_lone_surrogate_in_ucs2_is_replaced_not_raised() -> None:
    assert decode_text(b"\xd8\x3d\x00A", DC_UCS2) == "\ufffdA"


@pytest.mark.parametrize(
    ("udh", "concat"),
    [
        (bytes([5, 0x00, 3, 0x2A, 3, 2]), Concat(ref=0x2A, total=3, seq=2, ref_bits=8)),
        (bytes([6, 0x08, 4, 0x12, 0x34, 2, 1]), Concat(ref=0x1234, total=2, seq=1, ref_bits=16)),
        # a port-addressing IE (0x05) before the concatenation IE
        (bytes([11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 7, 2, 2]), Concat(ref=7, total=2, seq=2, ref_bits=8)),
        (bytes([4, 0x05, 2, 0x0B, 0x84]), None),
    ],
)
def test_udh_concatenation_information_elements(udh: bytes, concat: Concat | None) -> None:
    header, body = split_udh(udh + b"text")
    assert header == udh
    assert body == b"text"
    assert concat_from_udh(header) == concat


def test_udh_longer_than_the_message_is_refused() -> None:
    with pytest.raises(ValueError, match="UDH"):
        split_udh(bytes([9, 0, 3]))


def test_short_gsm_reply_is_one_part_without_udh() -> None:
    reply = encode_reply("Laporan Anda diterima. No. LPR-7K3Q9X. Cek status: kirim STATUS LPR-7K3Q9X", ref=1)
    assert reply.data_coding == 0
    assert reply.esm_class == 0
    assert len(reply.short_messages) == 1


def test_160_gsm_septets_fit_one_part_and_161_need_two() -> None:
    assert len(encode_reply("a" * 160, ref=1).short_messages) == 1
    two = encode_reply("a" * 161, ref=9)
    assert two.esm_class == UDHI
    assert [sm[:6] for sm in two.short_messages] == [bytes([5, 0, 3, 9, 2, 1]), bytes([5, 0, 3, 9, 2, 2])]
    assert [len(sm) - 6 for sm in two.short_messages] == [153, 8]


def test_gsm_escape_pair_is_never_cut_between_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = encode_reply(text, ref=3).short_messages
    assert parts[0][6:] == b"a" * 152
    assert parts[1][6:8] == b"\x1b\x65"
    assert "".join(gsm_decode(split_udh(sm)[1]) for sm in parts) == text


def test_long_ucs2_reply_is_split_in_67_unit_parts_without_cutting_an_emoji() -> None:
    text = "Terima kasih 🙏 " * 12
    reply = encode_reply(text, ref=0x1FF)
    assert reply.data_coding == DC_UCS2
    assert reply.esm_class == UDHI
    bodies = [split_udh(sm)[1] for sm in reply.short_messages]
    assert all(len(body) <= 134 for body in bodies)
    assert all(sm[3] == 0xFF for sm in reply.short_messages)
    assert [body.decode("utf-16-be") for body in bodies]  # each part decodes on its own: no split pair
    assert "".join(body.decode("utf-16-be") for body in bodies) == text


def test_latin1_default_alphabet_sends_gsm_representable_text_as_latin1_bytes() -> None:
    reply = encode_reply("café €", ref=1, default_alphabet="latin1")
    assert reply.data_coding == DC_UCS2  # € has no Latin-1 byte
    reply = encode_reply("Ä café", ref=1, default_alphabet="latin1")
    assert reply.data_coding == 0
    assert reply.short_messages == ("Ä café".encode("latin-1"),)
