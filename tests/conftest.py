"""Shared fixtures: one tiny kit model per test session, paths to the real-data fixtures.

``eval_data`` is ``tests/data`` (small verbatim excerpts of MATH500 and ArenaHard v0.1, see its
README), so the evaluation tests run on a fresh clone. ``full_math500`` is the whole 500-problem
file from ``$GENRM_SHARED_DATA`` (default: ``../shared/data`` beside the repository); the few tests
that need every problem are skipped, with that reason, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"
SHARED_DATA = Path(os.environ.get("GENRM_SHARED_DATA") or ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def tiny_model_and_tokenizer():
    from genrm_plugin.toy import build_tiny_model

    return build_tiny_model()


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_and_tokenizer):
    from genrm_plugin.backends.transformers import TransformersBackend

    model, tokenizer = tiny_model_and_tokenizer
    return TransformersBackend(model, tokenizer, batch_size=8, progress=False)


@pytest.fixture(scope="session")
def eval_data() -> Path:
    """``tests/data``: ``math500/test.jsonl`` and ``arena_hard_v0.1/*.jsonl`` excerpts."""
    return TEST_DATA


@pytest.fixture(scope="session")
def full_math500() -> Path:
    """All 500 MATH500 problems (``math500/test.jsonl`` under ``SHARED_DATA``); skips the test without them."""
    path = SHARED_DATA / "math500" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"needs the full MATH500 file at {path} (not part of a clone; the fixtures cover the rest)")
    return path
