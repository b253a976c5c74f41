"""The text model: quality on the held-out reports (a regression floor), determinism, the fast path."""

from __future__ import annotations

import numpy as np

from gateway.config import default_categories
from gateway.normalizer_models import HELDOUT_FILE, TRAIN_FILE, read_examples
from normalizer.classify import Classifier, priority, train
from normalizer.evaluate import evaluate
from normalizer.slang import expand
from normalizer.understand import Understanding

# The figures reached on normalizer/data/heldout.jsonl (228 reports the model never sees); they may only rise.
MACRO_F1_FLOOR = 0.955
KIND_ACCURACY_FLOOR = 0.99
PRIORITY_ACCURACY_FLOOR = 0.97
REGION_ACCURACY_FLOOR = 1.0
SPURIOUS_REGION_CEILING = 0.0


def test_held_out_figures_do_not_drop(understanding: Understanding) -> None:
    result = evaluate(read_examples(HELDOUT_FILE), understanding)

    assert result.examples == 228
    assert result.macro_f1 >= MACRO_F1_FLOOR, result.per_class
    assert result.kind_accuracy >= KIND_ACCURACY_FLOOR
    assert result.priority_accuracy >= PRIORITY_ACCURACY_FLOOR
    assert result.region_accuracy >= REGION_ACCURACY_FLOOR, [m for m in result.misses if "region" in m]
    assert result.spurious_region_rate <= SPURIOUS_REGION_CEILING


def test_held_out_texts_are_not_in_the_training_file() -> None:
    trained = {e.text.lower() for e in read_examples(TRAIN_FILE)}
    held = [e.text for e in read_examples(HELDOUT_FILE)]
    assert not [text for text in held if text.lower() in trained]


def test_every_category_has_forty_training_texts_of_its_own() -> None:
    examples = read_examples(TRAIN_FILE)
    for code in default_categories():
        assert sum(e.category == code for e in examples) >= 40, code
    assert {e.kind for e in examples} == {"complaint", "aspiration", "information_request"}


def test_training_twice_gives_the_same_model(classifier: Classifier) -> None:
    again = train(read_examples(TRAIN_FILE), list(default_categories()))
    assert np.array_equal(again.category_model.coef_, classifier.category_model.coef_)
    assert np.array_equal(again.kind_model.coef_, classifier.kind_model.coef_)


def test_fast_path_gives_scikit_learns_probabilities(classifier: Classifier) -> None:
    pipelines = classifier.pipelines
    for example in read_examples(HELDOUT_FILE)[:60]:
        text = expand(example.text)
        columns, values = classifier.vector(text)
        for name, model, coef in (
            ("category", classifier.category_model, classifier._category_coef),
            ("kind", classifier.kind_model, classifier._kind_coef),
        ):
            expected = pipelines[name].predict_proba([text])[0]
            assert np.allclose(classifier._probabilities(model, coef, columns, values), expected)


# Spellings the held-out file may lack: runs of spaces, tabs and newlines, one-letter words, non-breaking and
# other Unicode spaces, capitals and accents, nothing at all.
def test_decisions_name_the_words_that_made_them(classifier: Classifier) -> None:
    category = classifier.category(expand("jukir liar narik 5rb gk kasih karcis"))
    assert category.code == "parkir"
    assert "jukir" in category.reasons
    kind = classifier.kind(expand("mhn info syaratnya apa buat bikin KTP?"))
    assert kind.code == "information_request"
    assert "syaratnya" in kind.reasons or "mohon info" in kind.reasons
    assert classifier.kind(expand("mohon dibangun jembatan penyeberangan")).code == "aspiration"
    assert classifier.category(expand("tes tes")).code is None


def test_safety_threats_are_urgent_with_their_reasons() -> None:
    for text in (
        "banjir masuk rumah warga setinggi lutut",
        "pohon tumbang menutup jalan raya",
        "kabel listrik putus menjuntai ke jalan",
        "tanggul sungai jebol, air deras",
        "kebakaran di gudang dekat pasar",
    ):
        decision = priority(expand(text))
        assert decision.code == "urgent", text
        assert decision.reasons
    assert priority(expand("lampu jalan mati sudah seminggu")).code == "normal"
