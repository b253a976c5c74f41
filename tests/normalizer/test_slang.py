"""Informal Indonesian folded to the standard words the model and lexicon read."""

from __future__ import annotations

import pytest

from normalizer.slang import expand

CASES = [
    ("jln rusak parah bgt", "jalan rusak parah banget"),
    ("yg gk diperbaiki2 udh 2 thn", "yang tidak diperbaiki sudah 2 tahun"),
    ("tdk ada PJU dgn lampu2 mati", "tidak ada pju dengan lampu mati"),
    ("sdh lapor krn mhn tlg", "sudah lapor karena mohon tolong"),
    ("jukir narik 5rb", "jukir narik 5rb"),
    ("Ga ada sinyal, GAK bisa telpon", "tidak ada sinyal tidak bisa telpon"),
    ("SMP negeri", "smp negeri"),  # a school, not "sampai"
    ("buat KTP", "buat ktp"),  # "buat" is "make" here, left alone
]


@pytest.mark.parametrize(("written", "read"), CASES)
def test_slang_is_folded_to_standard_words(written: str, read: str) -> None:
    assert expand(written) == read
