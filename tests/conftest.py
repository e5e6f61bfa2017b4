"""Shared fixtures: the fake encoder, the real default model, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from fakes import HashEncoder

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LATEINT_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture
def fake_encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "test.lateint"


@pytest.fixture
def fake_index(index_path, fake_encoder):
    import lateint_lite as li

    with li.open(index_path, create=True, encoder=fake_encoder) as idx:
        yield idx


@pytest.fixture(scope="session")
def real_encoder():
    """The shipped default model (int8 MiniLM-L6-v2), loaded once per test session."""
    from lateint_lite.encoder import OnnxEncoder

    return OnnxEncoder.from_model()


def dataset_dir(name: str) -> Path:
    """A BEIR dataset folder under ../shared/data, or skip the test with the reason."""
    path = DATA_DIR / name
    if not (path / "corpus.jsonl.gz").is_file():
        pytest.skip(f"dataset {name!r} not found at {path} (set LATEINT_DATA_DIR or provide ../shared/data)")
    return path
