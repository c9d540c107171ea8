"""Tiny random-init classifiers of every supported architecture, saved as real model folders."""

from __future__ import annotations

from pathlib import Path

import torch

from pruning_core.demo import base_encoder_path

ARCHITECTURES = ("bert", "roberta", "distilbert", "electra", "xlm-roberta")


def tiny_config(model_type: str, layers: int = 3, heads: int = 4, head_dim: int = 8, num_labels: int = 2):
    from transformers import AutoConfig

    hidden = heads * head_dim
    labels = {"id2label": {i: f"class_{i}" for i in range(num_labels)}, "label2id": {f"class_{i}": i for i in range(num_labels)}}
    if num_labels == 2:
        labels = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
    if model_type == "distilbert":
        return AutoConfig.for_model(
            "distilbert",
            vocab_size=30522,
            dim=hidden,
            n_layers=layers,
            n_heads=heads,
            hidden_dim=2 * hidden,
            max_position_embeddings=128,
            pad_token_id=0,
            num_labels=num_labels,
            **labels,
        )
    extra = {"embedding_size": hidden} if model_type == "electra" else {}
    return AutoConfig.for_model(
        model_type,
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=130,
        pad_token_id=0,
        num_labels=num_labels,
        type_vocab_size=2,
        **labels,
        **extra,
    )


def save_tiny(model_type: str, folder: Path, seed: int = 0, **kwargs) -> Path:
    """Build a random-init classifier (BERT uncased tokenizer) and save it with save_pretrained."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(model_type, **kwargs))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "classifier" in name or "pre_classifier" in name:
                param.normal_(0, 0.5)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base_encoder_path()).save_pretrained(folder)
    return folder
