"""Places in free text: level words, kota/kabupaten, nicknames, misspellings, kode pos, the home region, traps."""

from __future__ import annotations

import pytest

from normalizer.regions import RegionIndex

# (text, home region, expected code or None)
PLACES = [
    ("Jalan berlubang besar di depan SDN 2 Slawi, Kecamatan Slawi, Kabupaten Tegal", None, "33.28.10"),
    ("jln rusak parah bgt di ds kalisapu kec slawi", None, "33.28.10.2001"),
    ("banjir di kota tegal", None, "33.76"),
    ("banjir di kab. tegal", None, "33.28"),
    ("pemkab tegal tidak merespon", None, "33.28"),
    ("jalan rusak di kab. bantul diy", None, "34.02"),
    ("kebakaran di Sleman, Yogyakarta", None, "34.04"),
    ("jalan rusak di Kelurahan Kemiri Muka, Beji, Depok", None, "32.76.06.1004"),
    ("pju mati di jaksel", None, "31.74"),
    ("macet parah di solo", None, "33.72"),
    ("sampah di surabaya", None, "35.78"),
    ("kota kudus banjir", None, "33.19"),  # no Kota Kudus: the town of Kabupaten Kudus
    ("banjir di Malang", None, "35"),  # kota or kabupaten unsettled: only the province is sure
    ("banjir di tegal", None, "33"),
    ("air pdam mati di kecamatan adiwrna", "33.28", "33.28.11"),  # misspelt after a level word
    ("lampu mati kec. adiwerna", "33.28", "33.28.11"),
    ("sampah numpuk di Margadana", "33.76", "33.76.04"),  # kecamatan and kelurahan of one name: the kecamatan
    ("pohon tumbang di kalisapu", "33.28", "33.28.10.2001"),
    ("kode pos 52419 jalan rusak", None, "33.28.10"),  # two villages share it: their kecamatan
    ("banjir di kota jambi dekat sungai batanghari", None, "15.71"),  # a level word outweighs a river's name
    ("pohon tumbang di kab bandung barat jalur lembang", None, "32.17.01"),
]
NO_PLACE = [
    ("lampu PJU mati di jl surabaya dekat toko jakarta baru", None),
    ("makan soto kudus enak tapi warungnya buang sampah ke kali", None),
    ("Pak Medan tukang parkir liar di depan bank", None),
    ("jalan raya bogor macet", None),
    ("rm padang buang sampah ke got", None),
    ("batang pohon tumbang di jalan", None),
    ("bayar 50000 ke jukir", None),
    ("di kota ini jalan rusak semua", None),
    ("kepala desa minta uang 5 juta", None),  # "desa minta": a desa is named Minta, this is not it
    ("air sumur bor desa kering", None),
    ("sampah numpuk di Margadana", None),  # a bare kecamatan is only looked for in the home region
    ("angkot jurusan bekasi ngetem sembarangan", None),
    ("jalan rusak parah sudah dua tahun", "33.28"),  # no place named: not the home region either
]


@pytest.mark.parametrize(("text", "home", "code"), PLACES)
def test_place_named_in_text_gives_its_region(regions: RegionIndex, text: str, home: str | None, code: str) -> None:
    found = regions.find(text, home)
    assert found is not None, text
    assert found.code == code, (text, found)


@pytest.mark.parametrize(("text", "home"), NO_PLACE)
def test_look_alikes_and_placeless_texts_give_no_region(regions: RegionIndex, text: str, home: str | None) -> None:
    assert regions.find(text, home) is None


def test_a_region_carries_its_level_path_and_reasons(regions: RegionIndex) -> None:
    found = regions.find("ds kalisapu kec slawi")
    assert found is not None
    assert found.level == "desa"
    assert found.path == (
        ("33", "Jawa Tengah"),
        ("33.28", "Kabupaten Tegal"),
        ("33.28.10", "Slawi"),
        ("33.28.10.2001", "Kalisapu"),
    )
    assert set(found.reasons) == {"ds kalisapu", "kec slawi"}
    kota = regions.find("kota tegal")
    assert kota is not None and kota.level == "kota" and kota.name == "Kota Tegal"


def test_two_places_that_cannot_both_be_right_give_none(regions: RegionIndex) -> None:
    assert regions.find("kec slawi kota tegal") is None


def test_a_small_index_reads_the_same_way() -> None:
    index = RegionIndex.build(
        [("33", "Jawa Tengah"), ("33.28", "Kabupaten Tegal"), ("33.76", "Kota Tegal"), ("33.28.10", "Slawi")],
        postal_codes={},
        nicknames={},
    )
    assert index.find("slawi, tegal") is not None
    assert index.find("slawi, kab tegal").code == "33.28.10"  # type: ignore[union-attr]
    assert index.find("soto tegal") is None
