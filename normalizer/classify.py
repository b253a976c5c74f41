"""Category, kind and urgency of a report, each with the words that decided it.

Category and kind: TF-IDF over word n-grams (1-2) and character n-grams (2-5,
inside word boundaries, so "jukir"/"juru parkir" and misspellings share
features) feeding a logistic regression, as a scikit-learn ``Pipeline``;
combined with a small lexicon of decisive words ("pdam" is water, "pungli" is
extortion, "mohon info" asks for information) that the model may not have seen
often enough. Urgency is rules only: a report threatens safety because of what it
says ("banjir masuk rumah", "kabel putus menjuntai"), and the rule names it.

Training is deterministic (fixed solver, no shuffling, no random state), so the
same files give the same model; ``train`` takes examples, not paths — reading and
caching the files is the wiring's job.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from normalizer.slang import expand

NORMALIZER_VERSION = "2026.12.1"
KIND_CODES: tuple[str, ...] = ("complaint", "aspiration", "information_request")
MIN_CATEGORY_CONFIDENCE = 0.3
LEXICON_WEIGHT = 0.35
# "mohon info", "syaratnya", "usul" decide the kind more surely than the category words decide the category.
KIND_LEXICON_WEIGHT = 0.6
NO_CATEGORY = "_none"  # the class learnt from texts that have no category ("tes", "halo min")

# Decisive words per category: a phrase here settles the matter unless the model strongly disagrees.
CATEGORY_LEXICON: dict[str, tuple[str, ...]] = {
    "jalan": ("jalan berlubang", "jalan rusak", "aspal", "trotoar", "jembatan", "lubang", "amblas", "paving"),
    "pju": ("pju", "lampu jalan", "penerangan jalan", "lampu penerangan", "lampu merkuri"),
    "parkir": ("jukir", "juru parkir", "tukang parkir", "parkir liar", "karcis parkir", "tarif parkir", "parkiran"),
    "lalu_lintas": ("lampu merah", "traffic light", "lampu lalu lintas", "lampu lalin", "rambu", "marka", "macet"),
    "banjir": ("banjir", "drainase", "selokan", "gorong gorong", "irigasi", "tanggul", "got", "genangan", "rob"),
    "sampah": ("sampah", "tps", "tpa", "truk sampah", "tong sampah"),
    "lingkungan": ("limbah", "pencemaran", "polusi", "asap pabrik", "bising", "amdal", "tambang"),
    "air": ("pdam", "air bersih", "pipa air", "meteran air", "air ledeng", "tirta"),
    "listrik": ("pln", "listrik", "mati lampu", "token listrik", "pemadaman", "gardu", "travo"),
    "internet": ("wifi", "sinyal", "internet", "hotspot", "tower bts", "bts", "blank spot", "fiber optik"),
    "pohon": ("pohon", "tumbang", "dahan", "ranting", "taman kota", "taman"),
    "reklame": ("baliho", "reklame", "spanduk", "billboard", "banner", "umbul umbul", "videotron"),
    "ketertiban": ("pkl", "pedagang kaki lima", "balap liar", "satpol pp", "gepeng", "pengamen", "tawuran", "miras"),
    "adminduk": ("ktp", "e ktp", "kk", "kartu keluarga", "akta", "disdukcapil", "dukcapil", "capil", "nik", "kia"),
    "kesehatan": ("puskesmas", "bpjs", "rumah sakit", "rsud", "igd", "posyandu", "dokter", "vaksin", "fogging"),
    "pendidikan": ("sekolah", "ppdb", "spmb", "guru", "murid", "ijazah", "beasiswa", "kip", "pip", "zonasi"),
    "bansos": ("bansos", "pkh", "blt", "dtks", "bpnt", "bantuan sosial", "sembako", "kks"),
    "pungli": ("pungli", "pungutan liar", "suap", "korupsi", "uang pelicin", "calo", "gratifikasi", "uang damai"),
    "pelayanan_publik": ("pelayanan", "izin usaha", "perizinan", "loket", "call center", "mal pelayanan"),
}
KIND_LEXICON: dict[str, tuple[str, ...]] = {
    "information_request": (
        "mohon info",
        "minta info",
        "mau tanya",
        "bagaimana cara",
        "bagaimana prosedur",
        "cara daftar",
        "syarat",
        "syaratnya",
        "prosedur",
        "berapa biaya",
        "berapa lama",
        "berapa tarif",
        "kapan jadwal",
        "apakah",
        "ke mana",
        "kemana saya",
        "siapa yang",
    ),
    "aspiration": (
        "saran",
        "usul",
        "usulan",
        "mohon dibangun",
        "mohon dipasang",
        "mohon ditambah",
        "mohon diadakan",
        "mohon disediakan",
        "mohon dibuat",
        "sebaiknya",
        "alangkah baiknya",
        "mohon pembangunan",
        "mohon penambahan",
    ),
}
# Urgency: each rule a pattern over the folded, slang-expanded text; urgent when the weights reach 1.
URGENT_RULES: tuple[tuple[str, float], ...] = (
    (r"\b(banjir|air)\b.{0,25}\bmasuk\b.{0,10}\brumah", 1.0),
    (r"\bbanjir bandang\b|\bair bah\b", 1.0),
    (r"\b(sampai|setinggi|hingga) (lutut|pinggang|dada|leher|atap|1 meter|satu meter)|\bsepinggang\b|\bsedada\b", 0.6),
    (r"\btanggul\b.{0,20}\b(jebol|retak|rembes)", 1.0),
    (r"\b(jebol|ambrol)\b", 0.5),
    (r"\bkebakaran\b|\bterbakar\b|\bpercikan api\b|\bmenyala api\b", 1.0),
    (r"\bpohon\b.{0,30}\b(tumbang|roboh)\b.{0,30}\b(menutup|menimpa|nutup)", 1.0),
    (r"\b(tumbang|roboh|ambruk|runtuh)\b", 0.6),
    (r"\b(jalan|jalur)\b.{0,15}\btertutup\b", 0.4),
    (r"\b(mau|hampir|bisa) (roboh|ambruk|runtuh|jatuh|patah|tumbang|tertimpa|kena|longsor)", 0.6),
    (r"\b(rangka|papan|baliho|reklame|tiang)\b.{0,40}\b(lepas|jatuh|ambruk|roboh)\b", 0.7),
    (r"\bkabel (listrik|pln|tegangan)\b.{0,40}\b(putus|menjuntai|jatuh|terkelupas|rendah)", 1.0),
    (r"\bkabel\b.{0,40}\b(putus|menjuntai)\b", 0.6),
    (r"\bkabel\w*\b.{0,40}\b(terkelupas|rendah)\b|\btegangan tinggi\b", 0.4),
    (r"\btersengat listrik\b|\bmasih ada setrumnya\b|\bnyetrum\b", 1.0),
    (r"\blongsor\b", 0.8),
    (r"\b(meledak|ledakan|gas bocor|bocor gas|bau gas|kebocoran gas)\b", 1.0),
    (r"\b(keracunan|diare massal)\b", 1.0),
    (r"\b(luka|terluka|meninggal|tewas|tenggelam|pingsan|kejang|sesak napas|sesak nafas)\b", 0.6),
    (r"\bkorban\b|\bdemam tinggi\b|\bretak\b|\bcondong\b|\bgatal\b", 0.3),
    (r"\b(dievakuasi|diungsikan|terisolir|hanyut)\b|\b(butuh|minta|tolong) evakuasi\b", 1.0),
    (r"\bevakuasi\b", 0.4),
    (r"\b(senjata tajam|parang|celurit|tawuran)\b", 1.0),
    (r"\bpalang(nya)? tidak turun\b|\bambulans tidak datang\b", 1.0),
    (r"\b(bahaya|berbahaya|darurat|segera|tolong)\b", 0.3),
    (
        r"\bditolak\b.{0,20}\b(igd|rumah sakit)|\b(igd|rumah sakit)\b.{0,30}\b(ditolak|dibiarkan)|\bdibiarkan di igd\b",
        1.0,
    ),
    (r"\bmiring\b", 0.4),
    (r"\bbocor\b.{0,20}\b(kimia|amonia)\b|\b(kimia|amonia)\b.{0,20}\bbocor\b", 0.6),
    # Asking for aid after the event is not an emergency now.
    (
        r"\b(bantuan|santunan)\b.{0,10}\b(untuk )?korban\b|\bbelum (dapat|cair|menerima)\b.{0,20}\bbantuan|\bhuntara\b",
        -0.8,
    ),
)
_COMPILED_URGENT = tuple((re.compile(pattern), weight) for pattern, weight in URGENT_RULES)


@dataclass(frozen=True)
class Decision:
    code: str | None
    confidence: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "confidence": self.confidence, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Example:
    """One labelled text of ``normalizer/data/*.jsonl``."""

    text: str
    category: str | None
    kind: str
    region_code: str | None = None
    priority: str = "normal"
    home_region: str | None = None


def parse_examples(lines: Iterable[str]) -> list[Example]:
    """JSON lines to examples; a bad line is an error naming its number."""
    examples: list[Example] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            examples.append(
                Example(
                    text=str(data["text"]),
                    category=data.get("category"),
                    kind=str(data.get("kind") or "complaint"),
                    region_code=data.get("region_code"),
                    priority=str(data.get("priority") or "normal"),
                    home_region=data.get("home_region"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: not a labelled example ({exc})") from None
    return examples


def _padded(lexicon: dict[str, tuple[str, ...]]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each phrase with the spaces it must have around it in a text, built once rather than per text."""
    return {code: tuple((phrase, f" {phrase} ") for phrase in phrases) for code, phrases in lexicon.items()}


_CATEGORY_PHRASES = _padded(CATEGORY_LEXICON)
_KIND_PHRASES = _padded(KIND_LEXICON)


def _phrases_in(padded_text: str, phrases: tuple[tuple[str, str], ...]) -> list[str]:
    """The phrases found as whole words in a text; ``padded_text`` is the text with a space either side."""
    return [phrase for phrase, padded in phrases if padded in padded_text]


def _features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ]
    )


def _model() -> LogisticRegression:
    return LogisticRegression(C=20.0, max_iter=3000)


class Classifier:
    """The fitted features and the category and kind models, with the lexicons; read-only once built.

    Both models read the same TF-IDF features (fitted once on the same texts). At run time the
    features of one text are computed here from the fitted vocabularies, idf weights and
    coefficients rather than through ``Pipeline.predict_proba``: the same numbers (a test holds
    them equal) at a tenth of the cost, since scikit-learn's per-call checks dominate for one text.
    """

    def __init__(
        self,
        features: FeatureUnion,
        category: LogisticRegression,
        kind: LogisticRegression,
        categories: Sequence[str],
        trained_on: int,
    ) -> None:
        self.features = features
        self.category_model = category
        self.kind_model = kind
        self.categories = tuple(categories)
        self.trained_on = trained_on
        self.version = NORMALIZER_VERSION
        self._category_classes = [str(c) for c in category.classes_]
        self._kind_classes = [str(c) for c in kind.classes_]
        self._parts = self._vector_parts()
        words: TfidfVectorizer = features.transformer_list[0][1]
        self._word_names = words.get_feature_names_out()
        # Transposed once, so one text's columns are a contiguous gather.
        self._category_coef = np.ascontiguousarray(category.coef_.T)
        self._kind_coef = np.ascontiguousarray(kind.coef_.T)

    def _vector_parts(self) -> list[tuple[Callable[[str], list[str]], dict[str, int], Any, int]]:
        """Per feature part: its analyzer, vocabulary, idf weights and first column."""
        parts: list[tuple[Callable[[str], list[str]], dict[str, int], Any, int]] = []
        offset = 0
        for _, vectorizer in self.features.transformer_list:
            parts.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, offset))
            offset += len(vectorizer.vocabulary_)
        return parts

    def __getstate__(self) -> dict[str, Any]:
        # The analyzers are rebuilt on loading (they are code, not data): a model cached by an older
        # normalizer of the same version gets today's.
        return {key: value for key, value in self.__dict__.items() if key != "_parts"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._parts = self._vector_parts()

    @property
    def pipelines(self) -> dict[str, Pipeline]:
        """The two models as scikit-learn pipelines (for inspection and the equality test)."""
        return {
            "category": Pipeline([("features", self.features), ("model", self.category_model)]),
            "kind": Pipeline([("features", self.features), ("model", self.kind_model)]),
        }

    def vector(self, text: str) -> tuple[Any, Any]:
        """Column indices and TF-IDF values of ``text``: sublinear tf times idf, L2-normalised per part."""
        columns: list[Any] = []
        values: list[Any] = []
        for analyzer, vocabulary, idf, offset in self._parts:
            # map and Counter run in C: one text's few hundred n-grams without a Python loop.
            counts = Counter(map(vocabulary.get, analyzer(text)))
            counts.pop(None, None)
            if not counts:
                continue
            found = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            weights = tf * idf[found]
            weights /= np.sqrt(np.dot(weights, weights))
            columns.append(found + offset)
            values.append(weights)
        if not columns:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        # Joined as arrays: the same numbers in the same order as through Python lists, without the round trip.
        return np.concatenate(columns), np.concatenate(values)

    @staticmethod
    def _probabilities(model: LogisticRegression, coef_t: Any, columns: Any, values: Any) -> Any:
        scores = values @ coef_t[columns] + model.intercept_
        if scores.shape[0] == 1:  # two classes: one logistic score
            positive = 1.0 / (1.0 + np.exp(-scores[0]))
            return np.array([1.0 - positive, positive])
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()

    # ---- deciding -----------------------------------------------------------------------------

    def category(self, text: str, vector: tuple[Any, Any] | None = None) -> Decision:
        """``text`` already slang-expanded (``slang.expand``); ``vector`` its ``vector`` if known."""
        columns, values = vector if vector is not None else self.vector(text)
        probabilities = self._probabilities(self.category_model, self._category_coef, columns, values)
        scores = dict(zip(self._category_classes, probabilities.tolist(), strict=True))
        hits: dict[str, list[str]] = {}
        padded_text = f" {text} "
        for code, phrases in _CATEGORY_PHRASES.items():
            if code in scores:
                found = _phrases_in(padded_text, phrases)
                if found:
                    hits[code] = found
        total = 1.0 + LEXICON_WEIGHT * len(hits)
        combined = {code: (p + (LEXICON_WEIGHT if code in hits else 0.0)) / total for code, p in scores.items()}
        best = max(combined, key=lambda code: (combined[code], code))
        confidence = combined[best]
        if best == NO_CATEGORY or (confidence < MIN_CATEGORY_CONFIDENCE and best not in hits):
            return Decision(None, round(confidence, 2), ())
        coef = self._category_coef[:, self._category_classes.index(best)]
        reasons = [*hits.get(best, []), *self._top_words(columns, values, coef)]
        return Decision(best, round(confidence, 2), tuple(dict.fromkeys(reasons))[:5])

    def kind(self, text: str, vector: tuple[Any, Any] | None = None) -> Decision:
        columns, values = vector if vector is not None else self.vector(text)
        probabilities = self._probabilities(self.kind_model, self._kind_coef, columns, values)
        scores = dict(zip(self._kind_classes, probabilities.tolist(), strict=True))
        padded_text = f" {text} "
        hits = {code: found for code, phrases in _KIND_PHRASES.items() if (found := _phrases_in(padded_text, phrases))}
        total = 1.0 + KIND_LEXICON_WEIGHT * len(hits)
        combined = {code: (p + (KIND_LEXICON_WEIGHT if code in hits else 0.0)) / total for code, p in scores.items()}
        best = max(combined, key=lambda code: (combined[code], code))
        reasons = hits.get(best, [])
        if not reasons and best != "complaint":
            reasons = self._top_words(columns, values, self._kind_coef[:, self._kind_classes.index(best)])
        return Decision(best, round(combined[best], 2), tuple(reasons)[:5])

    def _top_words(self, columns: Any, values: Any, coef: Any, limit: int = 3) -> list[str]:
        """The word n-grams of this text that pushed hardest towards the class."""
        words = columns < len(self._word_names)
        picked = columns[words]
        if not len(picked):
            return []
        contributions = values[words] * coef[picked]
        order = np.argsort(-contributions)[:limit]
        return [str(self._word_names[picked[i]]) for i in order if contributions[i] > 0]


def priority(text: str) -> Decision:
    """``urgent`` when what the text says threatens safety, with the phrases that said so."""
    weight = 0.0
    reasons: list[str] = []
    for pattern, value in _COMPILED_URGENT:
        found = pattern.search(text)
        if found:
            weight += value
            reasons.append(found.group(0))
    if weight >= 1.0:
        return Decision("urgent", round(min(weight, 2.0) / 2.0 + 0.5, 2), tuple(reasons))
    return Decision("normal", round(1.0 - weight / 2.0, 2), ())


def train(examples: Sequence[Example], categories: Sequence[str]) -> Classifier:
    """Fit both pipelines on ``examples``; categories outside ``categories`` are learnt as no category."""
    known = set(categories)
    texts = [expand(example.text) for example in examples]
    labels = [example.category if example.category in known else NO_CATEGORY for example in examples]
    kinds = [example.kind if example.kind in KIND_CODES else "complaint" for example in examples]
    features = _features()
    matrix = features.fit_transform(texts)
    category = _model().fit(matrix, labels)
    kind = _model().fit(matrix, kinds)
    return Classifier(features, category, kind, categories, trained_on=len(examples))
