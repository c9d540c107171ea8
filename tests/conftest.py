"""Shared fixtures: an isolated result cache and tiny random-init models of every architecture."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Exactness tests compare to 1e-5: run in fp32 unless a test asks for another precision.
os.environ.setdefault("BHPVAS_PRECISION", "fp32")

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


@pytest.fixture(scope="session")
def bad_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """Folders a user might point bhpvas at: missing, not a model, an unsupported architecture, an encoder without a head."""
    from transformers import AutoTokenizer, BertConfig, BertModel, GPT2Config, GPT2ForSequenceClassification

    from pruning_core.demo import base_encoder_path

    root = tmp_path_factory.mktemp("bad-models")
    notes = root / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not a model")
    gpt2 = root / "gpt2"
    GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=64, num_labels=2)).save_pretrained(gpt2)
    encoder = root / "encoder-only"
    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(encoder)
    AutoTokenizer.from_pretrained(base_encoder_path()).save_pretrained(encoder)
    return {"missing": root / "no-such-model", "notes": notes, "gpt2": gpt2, "encoder": encoder}


@pytest.fixture(scope="session")
def demo_cache_dir(tmp_path_factory) -> Path:
    """One result cache for the app tests on the demo, so the demo analysis is computed once per run."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture
def demo_cache(isolated_cache, demo_cache_dir, monkeypatch) -> Path:
    monkeypatch.setenv("BHPVAS_CACHE_DIR", str(demo_cache_dir))
    return demo_cache_dir
