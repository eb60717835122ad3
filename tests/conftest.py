"""Shared fixtures: the small hand-written Chinese corpus of tests/fixtures.py with known feature values."""
import pytest

from core.corpus import Corpus
from tests.fixtures import tiny_records


@pytest.fixture
def tiny_corpus() -> Corpus:
    return Corpus.from_records(**tiny_records())
