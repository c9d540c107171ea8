"""Differentiable subset pruning (Li et al. 2021), pipelined mode: the model is frozen and only
per-head logits ``w`` are learned.

Each step draws Gumbel noise, builds a soft top-K mask by K successive softmaxes at temperature
tau (each step down-weights what earlier steps took), gates the heads with it and descends the
task loss. tau is annealed geometrically (1000 -> 0.1); the normalised-momentum step size decays
to zero on a cosine schedule. Gates are learned on the calibration set, in batches of rows of
similar length (shuffled epochs, :func:`~pruning_core.bucketing.bucketed_batches`: every row once
per epoch; on the demo's calibration set 7 % of the padded tokens are padding, against 68 % in
plain random batches, so a step costs about 0.4 as much), in the model's precision (bf16 autocast
where the hardware has it) on its eager-attention twin (sdpa's fused backward is slow on a CPU).
The final scheme keeps exactly the top-K of ``w`` (:meth:`DifferentiableSubset.scheme` trains for
that K); for a curve, heads are pruned in ascending order of ``w`` learned at K = half the heads,
so only that point is an exact-K run and the curve says so (:attr:`DifferentiableSubset.note`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..batching import collate, encode
from ..bucketing import bucketed_batches
from ..cache import DiskCache, cache_key, cached_part
from ..data import TextDataset
from ..evaluation import forward_logits
from ..loading import LoadedModel
from ..progress import ProgressFn, no_progress
from ..schemes import Scheme
from .base import Head, Strategy, StrategyContext, register


def cosine_scale(step: int, steps: int) -> float:
    """Learning-rate factor 1 -> 0 over the run (cosine). The updates are normalised, so without
    it the last steps, at low tau where the gradient is mostly Gumbel noise, would move the logits
    as far as the first ones and the result would depend on rounding-level differences."""
    return 0.5 * (1.0 + math.cos(math.pi * step / max(steps, 1)))


def soft_top_k(logits: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """A relaxed k-hot vector: the sum of k successive softmaxes, each masking what was taken.

    Not clamped at 1, as in the reference code: an entry can exceed 1 only while the temperature is
    high and the vector is close to uniform (k/n per entry), and a clamp would cut its gradient.
    """
    taken = torch.zeros_like(logits)
    current = logits
    result = torch.zeros_like(logits)
    for _ in range(k):
        current = current + torch.log(torch.clamp(1.0 - taken, min=1e-20))
        taken = torch.softmax(current / tau, dim=-1)
        result = result + taken
    return result


@dataclass
class DSPResult:
    logits: np.ndarray
    k: int
    steps: int
    seconds: float
    train_data: str

    def scheme(self, shape: tuple[int, int], model: str = "") -> Scheme:
        """Keep exactly the top-k heads of the learned logits."""
        flat = self.logits.ravel()
        keep = np.zeros(flat.size, dtype=bool)
        keep[np.argsort(-flat, kind="stable")[: self.k]] = True
        return Scheme.from_mask(keep.reshape(shape), model=model, name=f"dsp@keep{self.k}")


def train_dsp(
    lm: LoadedModel,
    data: TextDataset,
    keep_k: int,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 0.2,
    tau_start: float = 1000.0,
    tau_end: float = 0.1,
    seed: int = 0,
    objective: str = "labels",
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
) -> DSPResult:
    """Learn head logits for keeping ``keep_k`` heads (cached on disk).

    ``objective``: ``labels`` (cross-entropy with the dataset's labels, as Li et al.) or
    ``full_model`` (KL divergence from the full model's predicted distribution; then a head whose
    removal changes nothing is never preferred over one whose removal changes the output).
    """
    if objective not in ("labels", "full_model"):
        raise ValueError(f"objective must be 'labels' or 'full_model', not {objective!r}")
    cache = cache if cache is not None else DiskCache()
    key = cache_key(
        "dsp",
        model=lm.fingerprint,
        data=data.fingerprint,
        k=keep_k,
        steps=steps,
        batch=batch_size,
        lr=lr,
        tau=[tau_start, tau_end],
        lr_schedule="cosine",
        clamp=False,
        batches="bucketed",
        seed=seed,
        objective=objective,
        precision=lm.precision,
    )
    return cached_part(
        cache,
        key,
        lambda: _train(lm, data, keep_k, steps, batch_size, lr, tau_start, tau_end, seed, objective, progress),
        lambda r: ({"logits": r.logits}, {"seconds": r.seconds, "train_data": r.train_data}),
        lambda arrays, meta: DSPResult(arrays["logits"], keep_k, steps, float(meta["seconds"]), str(meta["train_data"])),
    )


def _train(
    lm: LoadedModel,
    data: TextDataset,
    keep_k: int,
    steps: int,
    batch_size: int,
    lr: float,
    tau_start: float,
    tau_end: float,
    seed: int,
    objective: str,
    progress: ProgressFn | None,
) -> DSPResult:
    report = progress or no_progress
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    encoded = encode(lm, data)
    teacher = None
    if objective == "full_model":
        teacher = torch.log_softmax(torch.as_tensor(forward_logits(lm, encoded)), dim=-1).to(lm.device)
    present = torch.as_tensor(lm.present_mask().ravel(), device=lm.device)
    logits = torch.zeros(lm.num_layers * lm.num_heads, device=lm.device, requires_grad=True)
    velocity = torch.zeros_like(logits)
    pad_id = lm.pad_id
    decay = (tau_end / tau_start) ** (1.0 / max(steps - 1, 1))
    model = lm.eager_model()
    batches: list[np.ndarray] = []
    for step in range(steps):
        tau = tau_start * decay**step
        if not batches:
            batches = bucketed_batches(encoded.lengths, batch_size, rng)
        indices = batches.pop()
        batch = collate(encoded, indices, pad_id, lm.device)
        labels = torch.as_tensor(encoded.labels[indices], device=lm.device)
        uniform = torch.rand(logits.shape, generator=generator).clamp(1e-10, 1 - 1e-10).to(lm.device)
        gumbel = -torch.log(-torch.log(uniform))
        scores = torch.where(present, logits + gumbel, torch.full_like(logits, -1e9))
        gates = soft_top_k(scores, keep_k, tau).view(lm.num_layers, lm.num_heads)
        with lm.gated(gates, model=model), lm.autocast():
            logits_out = model(**batch).logits.float()
        if teacher is None:
            loss = torch.nn.functional.cross_entropy(logits_out, labels)
        else:
            loss = torch.nn.functional.kl_div(torch.log_softmax(logits_out, -1), teacher[indices], log_target=True, reduction="batchmean")
        (grad,) = torch.autograd.grad(loss, logits)
        grad = grad - grad[present].mean() * present
        velocity = 0.9 * velocity + grad / (grad.norm() + 1e-12)
        with torch.no_grad():
            logits -= lr * cosine_scale(step, steps) * velocity
        if (step + 1) % 10 == 0 or step + 1 == steps:
            report((step + 1) / steps, f"DSP step {step + 1}/{steps} loss {loss.item():.3f}")
    learned = logits.detach().cpu().numpy().reshape(lm.shape)
    learned[~lm.present_mask()] = -np.inf
    seconds = time.perf_counter() - started
    return DSPResult(learned, keep_k, steps, seconds, data.name)


@register
class DifferentiableSubset(Strategy):
    name = "dsp"
    label = "Differentiable subset (DSP)"
    description = "Li et al. 2021: learned head logits with a Gumbel soft top-K at an annealed temperature; the model stays frozen."
    exact_k = True
    version = 3  # 3: the model's precision (bf16 where native), eager attention; 2: similar-length batches; 1: random batches

    def __init__(self, keep_fraction: float = 0.5, steps: int = 200, seed: int = 0):
        self.keep_fraction = keep_fraction
        self.steps = steps
        self.seed = seed
        self.last: DSPResult | None = None

    def learn(self, ctx: StrategyContext, keep_k: int) -> DSPResult:
        self.last = train_dsp(
            ctx.lm,
            ctx.calibration_set,
            keep_k,
            steps=self.steps,
            seed=self.seed,
            progress=ctx.progress,
            cache=ctx.cache,
        )
        return self.last

    def note(self, total: int) -> str:
        """Which K the curve's logits come from (shown with the curve)."""
        keep = max(1, round(self.keep_fraction * total))
        return (
            f"Every point prunes heads in ascending order of the logits learned for keeping {keep} heads "
            f"({total - keep} pruned); only that point is an exact-K run."
        )

    def order(self, ctx: StrategyContext) -> list[Head]:
        total = ctx.shape[0] * ctx.shape[1]
        learned = self.learn(ctx, max(1, round(self.keep_fraction * total))).logits
        return sorted(ctx.all_heads(), key=lambda h: (learned[h], h))

    def scheme(self, ctx: StrategyContext, k: int) -> Scheme:
        """Prune exactly ``k`` heads: learn the gates for keeping the other heads."""
        total = ctx.shape[0] * ctx.shape[1]
        if k >= total:
            return Scheme(*ctx.shape, frozenset(ctx.all_heads()), model=ctx.lm.name, name=f"dsp@{k}")
        return self.learn(ctx, total - k).scheme(ctx.shape, ctx.lm.name)
