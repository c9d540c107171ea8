"""Shared fixtures: an isolated result cache and tiny random-init models of every architecture."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tiny import ARCHITECTURES, save_tiny  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own result cache folder."""
    monkeypatch.setenv("BHPVAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: save_tiny(arch, root / arch, seed=i) for i, arch in enumerate(ARCHITECTURES)}


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_dirs) -> Path:
    return tiny_dirs["bert"]


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    from pruning_core import load_model

    return load_model(tiny_bert_dir)


@pytest.fixture(scope="session")
def sst2_small():
    from pruning_core import load_dataset

    return load_dataset("sst2", max_rows=48)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bert, tmp_path_factory):
    """A real analysis bundle of the tiny BERT on 64 SST-2 sentences (its own cache folder)."""
    from pruning_core import DiskCache, load_dataset
    from pruning_core.analysis import AnalysisParams, analyze

    data = load_dataset("sst2", max_rows=64)
    cache = DiskCache(tmp_path_factory.mktemp("bundle-cache"))
    return data, analyze(tiny_bert, data, AnalysisParams(similarity_tokens=500, role_sentences=30, alignment_sentences=60), cache=cache)
