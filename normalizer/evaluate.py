"""How well the normalizer reads a labelled set: the figures ``normalizer evaluate`` prints and the tests hold.

Category: precision, recall and F1 per class and their macro average, in the
shape of scikit-learn's ``classification_report``, with the confusion counts.
Kind and priority: accuracy. Region: the share of examples whose region code is
exactly the labelled one (``null`` included), and the spurious-region rate, the
share of examples naming no place that were given a region anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.metrics import classification_report

from normalizer.classify import Example
from normalizer.understand import Understanding, read

NONE_LABEL = "(none)"


@dataclass(frozen=True)
class Evaluation:
    examples: int
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # code -> precision, recall, f1, support
    confusion: dict[str, dict[str, int]]  # true code -> predicted code -> count
    kind_accuracy: float
    priority_accuracy: float
    region_accuracy: float
    spurious_region_rate: float
    version: str
    misses: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "category": {"macro_f1": self.macro_f1, "per_class": self.per_class, "confusion": self.confusion},
            "kind_accuracy": self.kind_accuracy,
            "priority_accuracy": self.priority_accuracy,
            "region_accuracy": self.region_accuracy,
            "spurious_region_rate": self.spurious_region_rate,
            "normalizer": self.version,
            "misses": self.misses,
        }


def evaluate(examples: Sequence[Example], understanding: Understanding) -> Evaluation:
    """Read every example (with its own ``home_region`` when it names one) and score the readings."""
    truth: list[str] = []
    predicted: list[str] = []
    kinds = priorities = regions = 0
    unplaced = spurious = 0
    misses: list[dict[str, Any]] = []
    for example in examples:
        home = example.home_region or understanding.home_region
        reading = read(example.text, Understanding(understanding.classifier, understanding.regions, home))
        got_category = reading.category.code or NONE_LABEL
        got_region = reading.region.code if reading.region else None
        truth.append(example.category or NONE_LABEL)
        predicted.append(got_category)
        kinds += reading.kind.code == example.kind
        priorities += reading.priority.code == example.priority
        regions += got_region == example.region_code
        if example.region_code is None:
            unplaced += 1
            spurious += got_region is not None
        wrong = {
            field: {"want": want, "got": got}
            for field, want, got in (
                ("category", example.category or NONE_LABEL, got_category),
                ("kind", example.kind, reading.kind.code),
                ("region", example.region_code, got_region),
                ("priority", example.priority, reading.priority.code),
            )
            if want != got
        }
        if wrong:
            misses.append({"text": example.text, **wrong})
    labels = sorted({label for label in truth if label != NONE_LABEL})
    report: dict[str, Any] = classification_report(truth, predicted, labels=labels, output_dict=True, zero_division=0.0)
    per_class = {
        label: {
            "precision": round(float(report[label]["precision"]), 4),
            "recall": round(float(report[label]["recall"]), 4),
            "f1": round(float(report[label]["f1-score"]), 4),
            "support": int(report[label]["support"]),
        }
        for label in labels
    }
    confusion: dict[str, dict[str, int]] = {}
    for want, got in zip(truth, predicted, strict=True):
        row = confusion.setdefault(want, {})
        row[got] = row.get(got, 0) + 1
    count = max(len(examples), 1)
    return Evaluation(
        examples=len(examples),
        macro_f1=round(float(report["macro avg"]["f1-score"]), 4),
        per_class=per_class,
        confusion=confusion,
        kind_accuracy=round(kinds / count, 4),
        priority_accuracy=round(priorities / count, 4),
        region_accuracy=round(regions / count, 4),
        spurious_region_rate=round(spurious / unplaced, 4) if unplaced else 0.0,
        version=understanding.version,
        misses=misses,
    )
