"""Likely duplicates: which earlier reports say nearly the same thing (many citizens report one pothole).

Pure: the worker hands in the candidates (open complaints of the same category and
region, from one indexed query) and gets back the tracking ids whose text is close.
Texts are compared after slang folding and without the little words that every
report shares, with rapidfuzz's token-set ratio, so word order and an extra
sentence do not hide a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz, process

from normalizer.slang import expand

SIMILARITY_THRESHOLD = 82.0
MAX_RELATED = 5
_STOPWORDS = frozenset(
    {
        "di",
        "ke",
        "dari",
        "yang",
        "dan",
        "ini",
        "itu",
        "ada",
        "sudah",
        "tidak",
        "belum",
        "mohon",
        "tolong",
        "segera",
        "min",
        "admin",
        "pak",
        "bu",
        "saya",
        "kami",
        "sangat",
        "banget",
        "sekali",
        "untuk",
        "dengan",
        "karena",
        "juga",
        "lagi",
        "akan",
        "bisa",
        "harus",
        "terima",
        "kasih",
        "lapor",
        # Level words: every candidate lies in the same region already, and "kec"/"kecamatan" differ only in spelling.
        "kecamatan",
        "kec",
        "kabupaten",
        "kab",
        "kota",
        "desa",
        "ds",
        "kelurahan",
        "kel",
        "provinsi",
        "prov",
    }
)


def content(text: str) -> str:
    """The words that carry a report, slang folded, in their order."""
    return " ".join(word for word in expand(text).split() if word not in _STOPWORDS and len(word) > 1)


def similarity(a: str, b: str) -> float:
    """0-100: how nearly two reports say the same thing."""
    return float(fuzz.token_set_ratio(content(a), content(b)))


def likely_duplicates(
    text: str,
    candidates: Sequence[tuple[str, str]],
    threshold: float = SIMILARITY_THRESHOLD,
    limit: int = MAX_RELATED,
) -> list[str]:
    """Tracking ids of the ``(tracking_id, text)`` candidates that read like ``text``, closest first."""
    query = content(text)
    if len(query.split()) < 2:
        return []  # "jalan rusak" alone is everyone's report: too little to call a duplicate
    choices = {tracking_id: content(other) for tracking_id, other in candidates}
    found = process.extract(query, choices, scorer=fuzz.token_set_ratio, score_cutoff=threshold, limit=limit)
    return [str(key) for _, _, key in sorted(found, key=lambda hit: (-hit[1], str(hit[2])))]
