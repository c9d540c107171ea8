"""Per-architecture description of where the attention heads live.

An adapter names the encoder's layer list, each layer's attention core (the module computing the
per-head context vectors), its q/k/v projections and the attention output projection, whose input
is the concatenation of the heads' context vectors: the place where head gates act.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import ModelLoadError


def _get(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _set(module: nn.Module, dotted: str, value: nn.Module) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        module = getattr(module, part)
    setattr(module, last, value)


@dataclass(frozen=True)
class ArchAdapter:
    """Where a BERT-family architecture keeps its heads (paths relative to ``model.base_model``)."""

    name: str
    model_types: tuple[str, ...]
    layers_path: str
    core_path: str
    qkv_names: tuple[str, str, str]
    out_proj_path: str
    heads_attr: str
    hidden_attr: str
    heads_count_attrs: tuple[str, ...]
    ffn_in_path: str = "intermediate.dense"
    ffn_activation_path: str = "intermediate.intermediate_act_fn"
    ffn_out_path: str = "output.dense"
    ffn_norm_path: str = "output.LayerNorm"
    head_kind: str = "sequence"

    def layers(self, model: nn.Module) -> list[nn.Module]:
        """The encoder layers of a (sequence-classification) model, bottom first."""
        return list(_get(model.base_model, self.layers_path))

    def attention_core(self, layer: nn.Module) -> nn.Module:
        return _get(layer, self.core_path)

    def set_attention_core(self, layer: nn.Module, module: nn.Module) -> None:
        _set(layer, self.core_path, module)

    def qkv(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        core = self.attention_core(layer)
        q, k, v = (getattr(core, name) for name in self.qkv_names)
        return q, k, v

    def out_proj(self, layer: nn.Module) -> nn.Linear:
        return _get(layer, self.out_proj_path)

    def ffn_in(self, layer: nn.Module) -> nn.Linear:
        """The feed-forward block's input projection (its input: the attention block's output)."""
        return _get(layer, self.ffn_in_path)

    def ffn_activation(self, layer: nn.Module) -> nn.Module:
        """The feed-forward block's activation, between :meth:`ffn_in` and :meth:`ffn_out`."""
        return _get(layer, self.ffn_activation_path)

    def ffn_out(self, layer: nn.Module) -> nn.Linear:
        """The feed-forward block's output projection (its input: the activations; its output is
        added to the attention block's output and normalised by :meth:`ffn_norm`)."""
        return _get(layer, self.ffn_out_path)

    def ffn_norm(self, layer: nn.Module) -> nn.Module:
        """The layer's last LayerNorm, whose input is the feed-forward output plus its residual."""
        return _get(layer, self.ffn_norm_path)

    def out_proj_inside_core(self) -> bool:
        return self.out_proj_path.startswith(self.core_path + ".")

    def classify(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from the encoder's last hidden states, as the model's own forward computes them."""
        if self.head_kind == "pooler":
            return model.classifier(model.dropout(model.base_model.pooler(hidden)))
        if self.head_kind == "first_token_mlp":
            first = torch.relu(model.pre_classifier(hidden[:, 0]))
            return model.classifier(model.dropout(first))
        return model.classifier(hidden)

    def num_heads(self, config) -> int:
        return int(getattr(config, self.heads_attr))

    def num_layers(self, config) -> int:
        return int(getattr(config, "num_hidden_layers", getattr(config, "n_layers", 0)))

    def head_dim(self, config) -> int:
        return int(getattr(config, self.hidden_attr)) // self.num_heads(config)


_BERT_LIKE = dict(
    layers_path="encoder.layer",
    core_path="attention.self",
    qkv_names=("query", "key", "value"),
    out_proj_path="attention.output.dense",
    heads_attr="num_attention_heads",
    hidden_attr="hidden_size",
    heads_count_attrs=("num_attention_heads",),
)

ADAPTERS: dict[str, ArchAdapter] = {
    "bert": ArchAdapter(name="BERT", model_types=("bert",), head_kind="pooler", **_BERT_LIKE),
    "roberta": ArchAdapter(name="RoBERTa", model_types=("roberta",), **_BERT_LIKE),
    "xlm-roberta": ArchAdapter(name="XLM-R", model_types=("xlm-roberta",), **_BERT_LIKE),
    "electra": ArchAdapter(name="ELECTRA", model_types=("electra",), **_BERT_LIKE),
    "distilbert": ArchAdapter(
        name="DistilBERT",
        model_types=("distilbert",),
        layers_path="transformer.layer",
        core_path="attention",
        qkv_names=("q_lin", "k_lin", "v_lin"),
        out_proj_path="attention.out_lin",
        heads_attr="n_heads",
        hidden_attr="dim",
        heads_count_attrs=("n_heads",),
        ffn_in_path="ffn.lin1",
        ffn_activation_path="ffn.activation",
        ffn_out_path="ffn.lin2",
        ffn_norm_path="output_layer_norm",
        head_kind="first_token_mlp",
    ),
}


def supported_model_types() -> list[str]:
    return sorted(ADAPTERS)


def adapter_for(model_type: str) -> ArchAdapter:
    """The adapter of a ``config.model_type``, or a clear error naming what is supported."""
    try:
        return ADAPTERS[model_type]
    except KeyError:
        raise ModelLoadError(
            f"Architecture {model_type!r} is not supported. bhpvas supports sequence classifiers of type: "
            f"{', '.join(supported_model_types())}."
        ) from None
