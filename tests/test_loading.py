"""Model loading: supported architectures, device, and a clear error for every bad model source."""

from __future__ import annotations

import pytest

from pruning_core import ModelLoadError, load_model
from tiny import ARCHITECTURES


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_supported_architecture_loads(arch, tiny_dirs):
    lm = load_model(tiny_dirs[arch])
    assert lm.shape == (3, 4) and lm.head_dim == 8
    assert lm.model.config._attn_implementation == "sdpa"
    assert lm.eager_model().config._attn_implementation == "eager"
    assert lm.eager_model().base_model.embeddings.word_embeddings.weight is lm.model.base_model.embeddings.word_embeddings.weight


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "missing")


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(tmp_path)


def test_unsupported_architecture(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_head=2, n_embd=8).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="not supported.*bert.*distilbert.*electra.*roberta"):
        load_model(tmp_path)


def test_model_without_classification_head(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from pruning_core.demo import base_encoder_path

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(base_encoder_path()).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="no trained classification head"):
        load_model(tmp_path)


def test_hub_id_without_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="Hugging Face Hub"):
        load_model("some-org/some-model-that-is-not-here")


def test_the_fingerprint_follows_the_weights_not_the_folder(tiny_bert_dir, tmp_path):
    import shutil

    from pruning_core import load_model

    copy = shutil.copytree(tiny_bert_dir, tmp_path / "elsewhere" / "same-model")
    assert load_model(copy).fingerprint == load_model(tiny_bert_dir).fingerprint
