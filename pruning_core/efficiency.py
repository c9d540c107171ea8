"""Size and speed: parameter counts, MACs (SPEC formula) and measured latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import torch

from .loading import LoadedModel


def count_parameters(lm: LoadedModel) -> int:
    return int(sum(p.numel() for p in lm.model.parameters()))


def attention_parameters(lm: LoadedModel) -> int:
    """Parameters of the q/k/v and attention output projections (what head pruning removes)."""
    total = 0
    for layer in lm.adapter.layers(lm.model):
        for linear in (*lm.adapter.qkv(layer), lm.adapter.out_proj(layer)):
            total += sum(p.numel() for p in linear.parameters())
    return int(total)


def _ffn_size(lm: LoadedModel) -> int:
    config = lm.config
    return int(getattr(config, "intermediate_size", getattr(config, "hidden_dim", 4 * lm.num_heads * lm.head_dim)))


def encoder_macs(lm: LoadedModel, seq_len: int, heads_per_layer: Sequence[int] | None = None) -> int:
    """Multiply-accumulates of the encoder for one sequence of ``seq_len`` tokens.

    Per layer with H' heads kept: H' (4 T d d_h + 2 T^2 d_h) + 2 T d d_ff (SPEC section 3).
    """
    d = lm.num_heads * lm.head_dim
    d_ff = _ffn_size(lm)
    t = seq_len
    heads = heads_per_layer if heads_per_layer is not None else [len(k) for k in lm.kept_heads]
    return int(sum(h * (4 * t * d * lm.head_dim + 2 * t * t * lm.head_dim) + 2 * t * d * d_ff for h in heads))


@dataclass
class LatencyRow:
    batch_size: int
    seq_len: int
    median_ms: float
    min_ms: float
    repeats: int


def _timed_forward(lm: LoadedModel, ids: torch.Tensor, mask: torch.Tensor) -> float:
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        lm.model(input_ids=ids, attention_mask=mask)
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def measure_latency(
    lm: LoadedModel,
    batch_sizes: Sequence[int] = (1, 32),
    seq_lens: Sequence[int] = (64, 128),
    repeats: int = 7,
    warmup: int = 2,
    others: Sequence[LoadedModel] = (),
) -> list[LatencyRow] | tuple[list[LatencyRow], ...]:
    """Median forward latency on random token ids of exactly ``seq_len`` tokens (no padding).

    With ``others``, every model is timed in turn on the same inputs, repeat by repeat, so that
    background load affects all of them alike; then a tuple of row lists is returned.
    """
    models = [lm, *others]
    generator = torch.Generator().manual_seed(0)
    vocab = int(lm.config.vocab_size)
    rows: list[list[LatencyRow]] = [[] for _ in models]
    for batch_size in batch_sizes:
        for seq_len in seq_lens:
            ids = torch.randint(5, vocab, (batch_size, seq_len), generator=generator).to(lm.device)
            mask = torch.ones_like(ids)
            times: list[list[float]] = [[] for _ in models]
            for i in range(warmup + repeats):
                for m, model in enumerate(models):
                    elapsed = _timed_forward(model, ids, mask)
                    if i >= warmup:
                        times[m].append(elapsed)
            for m in range(len(models)):
                rows[m].append(LatencyRow(batch_size, seq_len, statistics.median(times[m]), min(times[m]), repeats))
    return rows[0] if not others else tuple(rows)


@dataclass
class EfficiencyReport:
    """Size, MACs and latency of one model."""

    name: str
    heads: int
    parameters: int
    attention_parameters: int
    macs: dict[int, int]
    latency: list[LatencyRow]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["macs"] = {str(k): v for k, v in self.macs.items()}
        return data


def efficiency_report(
    lm: LoadedModel,
    batch_sizes: Sequence[int] = (1, 32),
    seq_lens: Sequence[int] = (64, 128),
    repeats: int = 7,
    latency: list[LatencyRow] | None = None,
) -> EfficiencyReport:
    """Size, MACs and latency of one model (``latency`` if already measured, e.g. paired)."""
    return EfficiencyReport(
        name=lm.name,
        heads=int(sum(len(k) for k in lm.kept_heads)),
        parameters=count_parameters(lm),
        attention_parameters=attention_parameters(lm),
        macs={t: encoder_macs(lm, t) for t in seq_lens},
        latency=latency if latency is not None else measure_latency(lm, batch_sizes, seq_lens, repeats),
    )


def paired_efficiency(
    full: LoadedModel,
    pruned: LoadedModel,
    batch_sizes: Sequence[int] = (1, 32),
    seq_lens: Sequence[int] = (64, 128),
    repeats: int = 7,
) -> tuple[EfficiencyReport, EfficiencyReport]:
    """Reports of two models whose latencies were measured interleaved (fair under background load)."""
    full_rows, pruned_rows = measure_latency(full, batch_sizes, seq_lens, repeats, others=[pruned])
    return (
        efficiency_report(full, batch_sizes, seq_lens, latency=full_rows),
        efficiency_report(pruned, batch_sizes, seq_lens, latency=pruned_rows),
    )


def compare_efficiency(full: EfficiencyReport, pruned: EfficiencyReport) -> list[dict]:
    """Per (batch, length): latencies, measured speed-up, and the MACs ceiling full/pruned."""
    rows = []
    pruned_rows = {(r.batch_size, r.seq_len): r for r in pruned.latency}
    for row in full.latency:
        other = pruned_rows.get((row.batch_size, row.seq_len))
        if other is None:
            continue
        rows.append(
            {
                "batch_size": row.batch_size,
                "seq_len": row.seq_len,
                "full_ms": round(row.median_ms, 3),
                "pruned_ms": round(other.median_ms, 3),
                "speedup": round(row.median_ms / other.median_ms, 3),
                "macs_ceiling": round(full.macs[row.seq_len] / max(pruned.macs[row.seq_len], 1), 3),
            }
        )
    return rows


def kept_per_layer(pruned: Iterable[tuple[int, int]], num_layers: int, num_heads: int) -> list[int]:
    """Heads kept in each layer when ``pruned`` (layer, head) pairs are removed."""
    removed = [0] * num_layers
    for layer, _ in set(pruned):
        removed[layer] += 1
    return [num_heads - count for count in removed]


def scheme_macs(lm: LoadedModel, seq_len: int, pruned: Iterable[tuple[int, int]]) -> tuple[int, float]:
    """Encoder MACs for one ``seq_len``-token sequence with ``pruned`` heads removed, and their share
    of the full model's MACs in percent."""
    full = encoder_macs(lm, seq_len, [lm.num_heads] * lm.num_layers)
    macs = encoder_macs(lm, seq_len, kept_per_layer(pruned, lm.num_layers, lm.num_heads))
    return macs, 100 * macs / full
