"""Fixtures of the training tests: the corpus texts and a tiny Qwen built once per session."""

from __future__ import annotations

import pytest

TINY_CORPUS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")


@pytest.fixture(scope="session")
def tiny_corpus_texts(corpus_dir) -> list[str]:
    return [(corpus_dir / name).read_text(encoding="utf-8") for name in TINY_CORPUS]


@pytest.fixture(scope="session")
def gemma_dir():
    """The Gemma-3-270M folder `kgqa models fetch gemma-270m` made; tests skip without it (CI does not fetch)."""
    from kgqa.settings import get_settings
    from training.gemma_base import GEMMA_270M, MANIFEST

    folder = get_settings().models_dir / GEMMA_270M.dir_name
    if not (folder / MANIFEST).is_file():
        pytest.skip(
            f"Gemma-3-270M not installed at {folder}: run kgqa models fetch gemma-270m (not run in CI)"
        )
    return folder
