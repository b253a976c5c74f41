"""The normalizer's loaded parts, built once per test session (the region index takes seconds)."""

from __future__ import annotations

import pytest

from gateway.config import default_categories
from gateway.normalizer_models import TRAIN_FILE, read_examples, shared_lokal_index
from normalizer.classify import Classifier, train
from normalizer.regions import RegionIndex
from normalizer.understand import Understanding


@pytest.fixture(scope="session")
def regions() -> RegionIndex:
    return shared_lokal_index()


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return train(read_examples(TRAIN_FILE), list(default_categories()))


@pytest.fixture(scope="session")
def understanding(classifier: Classifier, regions: RegionIndex) -> Understanding:
    return Understanding(classifier, regions, home_region=None)
