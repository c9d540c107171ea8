"""The three BHPVAS criteria per head: importance, stability and similarity (SPEC section 3).

- Importance (Michel et al. 2019): E_x |dL(x)/d xi_h| at xi = 1, the absolute value taken per
  example (a gate per sample), summed over the calibration set with dropout off, divided by the
  number of tokens, then each layer's vector divided by its L2 norm. Fisher (Kwon et al. 2022):
  E_x (dL(x)/d xi_h)^2 from the same gradients.
- Stability: 1 - mean over samples of JSD(profile(x) || mean profile) / ln 2, where a profile is
  the six-way attention mass split of :mod:`pruning_core.attention`.
- Similarity: linear CKA between heads' context vectors over sampled non-padding tokens; a head's
  score is its maximum CKA with any other head.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from .batching import Encoded, collate, encode, length_batches, mask_key, resolve_keep_mask
from .cache import DiskCache, cache_key, cached_part
from .data import TextDataset
from .gating import capture_context
from .loading import LoadedModel
from .progress import ProgressFn, no_progress
from .schemes import Scheme


@dataclass
class Importance:
    """Head importance from per-example gate gradients g_x = dL(x)/d xi at xi = 1.

    ``raw``: sum_x |g_x| / tokens (Michel et al.'s E_x|dL(x)/d xi| averaged over tokens);
    ``normalized``: ``raw`` with each layer divided by its L2 norm; ``stderr``: the standard error
    of ``normalized`` over examples (ratio-estimator delta method, the layer norm held fixed);
    ``fisher``: E_x g_x^2 (Kwon et al. 2022); ``per_example``: |g_x| (examples, layers, heads);
    ``tokens``: non-padding tokens per example.
    """

    raw: np.ndarray
    normalized: np.ndarray
    stderr: np.ndarray
    fisher: np.ndarray
    per_example: np.ndarray
    tokens: np.ndarray

    def display(self) -> np.ndarray:
        """Global min-max of the normalized importance to [0, 1] (absent heads stay NaN)."""
        return minmax(self.normalized)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "raw": self.raw,
            "normalized": self.normalized,
            "stderr": self.stderr,
            "fisher": self.fisher,
            "per_example": self.per_example,
            "tokens": self.tokens,
        }


def minmax(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values.copy()
    low, high = finite.min(), finite.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def layer_normalize(raw: np.ndarray) -> np.ndarray:
    """Divide each layer's importance vector by its L2 norm (Michel et al.'s normalisation)."""
    norms = np.sqrt(np.nansum(raw**2, axis=1, keepdims=True))
    return np.where(norms > 0, raw / np.where(norms > 0, norms, 1), 0.0)


def example_gate_gradients(
    lm: LoadedModel,
    encoded: Encoded,
    keep: np.ndarray,
    max_tokens: int = 2048,
    progress: ProgressFn | None = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example dL(x)/d xi at the gates ``keep`` (pruned heads stay at 0), and tokens per example.

    Each sample of a batch gets its own gate row (a (batch, layers, heads) tensor), and the loss is
    the sum of the samples' losses, so one backward pass per batch gives every example's own
    gradient: nothing is mixed across examples, and the result does not depend on how batches are
    cut (up to float rounding). Dropout is off (the model is in eval mode). ``precision``: fp32,
    or an autocast precision (e.g. bf16 for an order, not a score).
    Runs on the eager-attention twin: the same weights and gradients (within 1e-6 relative of
    sdpa in fp32), but on a CPU sdpa's fused backward costs about five times its forward, and
    eager's does not (demo, 2,000 rows: 7.4 s forward + backward in bf16 with sdpa, 5.3 s eager).
    Returns (examples, layers, heads) signed gradients in dataset order and (examples,) token counts.
    """
    report = progress or no_progress
    pad_id = lm.pad_id
    grads = np.zeros((len(encoded), *keep.shape), dtype=np.float64)
    batches = length_batches(encoded.lengths, max_tokens)
    base = torch.as_tensor(keep, dtype=torch.float32, device=lm.device)
    model = lm.eager_model()
    for i, indices in enumerate(batches):
        gates = base.expand(len(indices), *keep.shape).clone().requires_grad_(True)
        batch = collate(encoded, indices, pad_id, lm.device)
        labels = torch.as_tensor(encoded.labels[indices], device=lm.device)
        with lm.gated(gates, model=model), lm.autocast(precision):
            loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, gates)
        grads[indices] = grad.double().cpu().numpy()
        report((i + 1) / len(batches), f"importance batch {i + 1}/{len(batches)}")
    return grads, encoded.lengths.astype(np.int64)


def importance_from_gradients(grads: np.ndarray, tokens: np.ndarray, present: np.ndarray) -> Importance:
    """Importance, its standard error and Fisher from per-example gradients (see :class:`Importance`)."""
    absolute = np.abs(grads)
    total = max(int(tokens.sum()), 1)
    raw = absolute.sum(0) / total
    absent = ~present
    norms = np.sqrt(np.sum(np.where(absent, 0.0, raw) ** 2, axis=1, keepdims=True))
    normalized = layer_normalize(np.where(absent, 0.0, raw))
    n = len(grads)
    if n > 1:
        # raw = mean|g| / mean(T): linearise the ratio, then the standard error of a mean.
        residual = (absolute - raw[None] * tokens[:, None, None]) / tokens.mean()
        stderr_raw = residual.std(0, ddof=1) / np.sqrt(n)
    else:
        stderr_raw = np.full(raw.shape, np.nan)
    stderr = np.where(norms > 0, stderr_raw / np.where(norms > 0, norms, 1), np.nan)
    fisher = (grads**2).mean(0) if n else np.zeros(raw.shape)
    for values in (raw, normalized, stderr, fisher):
        values[absent] = np.nan
    return Importance(raw, normalized, stderr, fisher, absolute.astype(np.float32), tokens)


def head_importance(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme | np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    max_tokens: int = 2048,
    precision: str = "fp32",
) -> Importance:
    """Michel et al. importance (and Fisher) of every head, under the gates of ``scheme`` (cached).

    ``max_tokens`` only sets the batch size; the result does not depend on it. ``precision``:
    fp32 for the scores users read; Michel's recomputations, which only decide an order, run in
    the model's own precision (bf16 where the hardware has it).
    """
    cache = cache if cache is not None else DiskCache()
    keep = resolve_keep_mask(lm, scheme)
    extra = {} if precision == "fp32" else {"precision": precision}
    key = cache_key("importance", model=lm.fingerprint, data=dataset.fingerprint, mask=mask_key(keep), estimator="per-example", **extra)
    return cached_part(
        cache,
        key,
        lambda: _importance(lm, dataset, keep, max_tokens, progress, precision),
        lambda result: (result.arrays(), {}),
        lambda arrays, _: Importance(**arrays),
    )


def _importance(
    lm: LoadedModel, dataset: TextDataset, keep: np.ndarray, max_tokens: int, progress: ProgressFn | None, precision: str
) -> Importance:
    encoded = encode(lm, dataset)
    grads, tokens = example_gate_gradients(lm, encoded, keep, max_tokens, progress, precision)
    return importance_from_gradients(grads, tokens, lm.present_mask())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JSD in nats along the last axis (0 <= JSD <= ln 2)."""
    p = np.clip(p, 0, None)
    q = np.clip(q, 0, None)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / np.where(b > 0, b, 1)), 0.0)
        return terms.sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def stability(profiles: np.ndarray) -> np.ndarray:
    """Stability per head from per-sample profiles (samples, layers, heads, 6): 1 - mean JSD / ln 2."""
    mean_profile = np.nanmean(profiles, axis=0, keepdims=True)
    divergence = jensen_shannon(profiles, np.broadcast_to(mean_profile, profiles.shape)) / np.log(2)
    result = 1.0 - np.nanmean(np.where(np.isnan(profiles).any(-1), np.nan, divergence), axis=0)
    return np.clip(result, 0.0, 1.0)


def linear_cka_matrix(features: np.ndarray) -> np.ndarray:
    """Linear CKA between every pair of heads.

    ``features`` is (heads, tokens, d_h): each head's context vectors over the same tokens.
    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred X, Y.
    """
    count, n, dim = features.shape
    x = torch.from_numpy(np.asarray(features, dtype=np.float64))
    x = x - x.mean(dim=1, keepdim=True)
    stacked = x.permute(1, 0, 2).reshape(n, count * dim)
    cross = (stacked.T @ stacked).reshape(count, dim, count, dim)
    hsic = (cross**2).sum(dim=(1, 3))
    diag = torch.sqrt(torch.diagonal(hsic))
    denom = diag[:, None] * diag[None, :]
    cka = torch.where(denom > 0, hsic / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(hsic))
    return cka.clamp(0, 1).numpy()


def sample_token_positions(encoded: Encoded, count: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Up to ``count`` (sample, position) pairs of non-padding tokens, drawn without replacement."""
    total = int(encoded.lengths.sum())
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(total, size=min(count, total), replace=False))
    starts = np.concatenate([[0], np.cumsum(encoded.lengths)[:-1]])
    sample = np.searchsorted(starts, flat, side="right") - 1
    chosen: dict[int, list[int]] = {}
    for s, f in zip(sample, flat):
        chosen.setdefault(int(s), []).append(int(f - starts[s]))
    return {s: np.asarray(p) for s, p in chosen.items()}


class ContextSampler:
    """Each head's context vector at ``tokens`` sampled tokens of ``dataset`` (seeded), under ``keep``.

    Filled from forward passes over the dataset: :meth:`add` takes one batch's captured context
    vectors (:func:`pruning_core.gating.capture_context`) and its row indices. A pass run for
    something else (the attention statistics) can fill it, so the similarity needs no pass of its
    own. ``vectors`` is (layers, heads, tokens, d_h), NaN for absent heads. Nothing is sampled or
    allocated until a pass adds to it or its vectors are asked for (an analysis reopened from the
    cache never does either).
    """

    def __init__(self, lm: LoadedModel, dataset: TextDataset, keep: np.ndarray, tokens: int, seed: int):
        self.lm, self.dataset, self.keep, self.tokens, self.seed = lm, dataset, keep, tokens, seed
        self.filled: set[int] = set()

    def matches(self, dataset: TextDataset, keep: np.ndarray, tokens: int | None = None, seed: int | None = None) -> bool:
        """Whether this sampler is for ``dataset`` under ``keep`` (and ``tokens``, ``seed`` when given)."""
        return (
            dataset.fingerprint == self.dataset.fingerprint
            and np.array_equal(keep, self.keep)
            and (tokens is None or tokens == self.tokens)
            and (seed is None or seed == self.seed)
        )

    @cached_property
    def encoded(self) -> Encoded:
        return encode(self.lm, self.dataset)

    @cached_property
    def positions(self) -> dict[int, np.ndarray]:
        return sample_token_positions(self.encoded, self.tokens, self.seed)

    @cached_property
    def offsets(self) -> dict[int, int]:
        """Where each sampled row's tokens start along the vectors' token axis."""
        starts = np.cumsum([0] + [len(self.positions[sample]) for sample in sorted(self.positions)])
        return {sample: int(start) for sample, start in zip(sorted(self.positions), starts)}

    @cached_property
    def vectors(self) -> np.ndarray:
        count = sum(len(p) for p in self.positions.values())
        return np.full((self.lm.num_layers, self.lm.num_heads, count, self.lm.head_dim), np.nan, dtype=np.float32)

    def add(self, indices: np.ndarray, captured: list[torch.Tensor | None]) -> None:
        rows = [(row, int(s)) for row, s in enumerate(indices) if int(s) in self.positions]
        head_dim = self.lm.head_dim
        for layer, context in enumerate(captured):
            present = self.lm.kept_heads[layer]
            if context is None or not present or not rows:
                continue
            heads = context.float().cpu().numpy().reshape(context.shape[0], context.shape[1], len(present), head_dim)
            for row, sample in rows:
                start = self.offsets[sample]
                positions = self.positions[sample]
                self.vectors[layer, present, start : start + len(positions)] = heads[row, positions].transpose(1, 0, 2)
        self.filled.update(sample for _, sample in rows)

    def complete(self) -> bool:
        return self.filled.issuperset(self.positions)


def context_vectors(
    lm: LoadedModel, sampler: ContextSampler, keep: np.ndarray, max_tokens: int = 4096, progress: ProgressFn | None = None
) -> np.ndarray:
    """Fill ``sampler`` with its own forward passes over the rows it samples, under ``keep``.

    Context vectors are the input of the attention output projection, taken before the gates of
    ``keep`` act (:func:`pruning_core.gating.capture_context`): a gated-off head's vector is what
    it computes on the gated model's hidden states, and no other caller's hooks change what is
    recorded. Returns (layers, heads, tokens, d_h); absent heads are NaN.
    """
    report = progress or no_progress
    encoded = sampler.encoded
    samples = np.asarray(sorted(sampler.positions))
    subset_batches = [samples[b] for b in length_batches(encoded.lengths[samples], max_tokens)]
    with capture_context(lm.model, lm.adapter, lm.kept_heads, lm.head_dim) as captured:
        for i, indices in enumerate(subset_batches):
            with torch.inference_mode(), lm.gated(keep):
                lm.model(**collate(encoded, indices, lm.pad_id, lm.device))
            sampler.add(indices, captured)
            report((i + 1) / len(subset_batches), f"context vectors {i + 1}/{len(subset_batches)}")
    return sampler.vectors


@dataclass
class Similarity:
    """Linear CKA between all heads (flattened layer-major), each head's max CKA and its partner."""

    cka: np.ndarray
    score: np.ndarray
    partner: np.ndarray
    tokens: int


def head_similarity(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme | np.ndarray | None = None,
    tokens: int = 4096,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    sampler: ContextSampler | None = None,
) -> Similarity:
    """CKA similarity of every pair of heads over ``tokens`` sampled non-padding tokens (cached).

    ``sampler``: where the context vectors are collected, possibly already by another pass over
    the same data, mask, tokens and seed (the analysis fills one during the attention
    statistics); one that does not match is not used, and one not yet complete is filled by the
    similarity's own pass.
    """
    cache = cache if cache is not None else DiskCache()
    keep = resolve_keep_mask(lm, scheme)
    key = cache_key("similarity", model=lm.fingerprint, data=dataset.fingerprint, mask=mask_key(keep), tokens=tokens, seed=seed)
    if sampler is None or not sampler.matches(dataset, keep, tokens, seed):
        sampler = ContextSampler(lm, dataset, keep, tokens, seed)
    return cached_part(
        cache,
        key,
        lambda: _similarity(lm, sampler, keep, progress),
        lambda r: ({"cka": r.cka, "score": r.score, "partner": r.partner, "tokens": np.asarray(r.tokens)}, {}),
        lambda arrays, _: Similarity(arrays["cka"], arrays["score"], arrays["partner"], int(arrays["tokens"])),
    )


def _similarity(lm: LoadedModel, sampler: ContextSampler, keep: np.ndarray, progress: ProgressFn | None) -> Similarity:
    vectors = sampler.vectors if sampler.complete() else context_vectors(lm, sampler, keep, progress=progress)
    flat = vectors.reshape(lm.num_layers * lm.num_heads, vectors.shape[2], lm.head_dim)
    present = lm.present_mask().ravel()
    cka = np.full((len(flat), len(flat)), np.nan, dtype=np.float32)
    cka[np.ix_(present, present)] = linear_cka_matrix(flat[present])
    return similarity_from_cka(cka, lm.shape, int(vectors.shape[2]))


def similarity_from_cka(cka: np.ndarray, shape: tuple[int, int], tokens: int) -> Similarity:
    """Each head's maximum CKA with another head and that partner's flat index (-1 if none)."""
    off = cka.astype(np.float64).copy()
    np.fill_diagonal(off, -np.inf)
    off = np.where(np.isnan(off), -np.inf, off)
    partner = off.argmax(1)
    score = off.max(1)
    valid = np.isfinite(score)
    partner = np.where(valid, partner, -1)
    score = np.where(valid, score, np.nan)
    return Similarity(cka, score.reshape(shape), partner.reshape(shape), tokens)


def exact_neighbors(distance: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Each row's ``count`` nearest points (itself first) and their distances, as UMAP's small-data
    path finds them (a stable sort of every row), handed to UMAP so that it skips compiling its
    parallel neighbour search (about 7 s of JIT per process for a few dozen heads)."""
    indices = np.argsort(distance, axis=1, kind="mergesort")[:, :count].astype(np.int32)
    return indices, np.take_along_axis(distance, indices, axis=1), None


_UMAP_LOCK = threading.Lock()


@contextmanager
def _uncompiled_fuzzy_graph() -> Iterator[None]:
    """While UMAP builds its neighbour graph, run the two per-point kernels (the bandwidth search
    and the edge weights) as the plain Python that umap-learn compiles with numba.

    For a few dozen heads they take milliseconds as Python, while compiling them (numba's parallel
    lowering, no disk cache) costs about 6 s in every new process. The Python is the same
    algorithm without numba's fastmath: bandwidths and weights agree within a few float32 ulps (a test
    checks).
    The swap is scoped to the call and serialised by a lock; umap's own functions are restored.
    """
    import umap.umap_ as umap_module

    names = ("smooth_knn_dist", "compute_membership_strengths")
    with _UMAP_LOCK:
        originals = {name: getattr(umap_module, name) for name in names}
        try:
            for name, compiled in originals.items():
                setattr(umap_module, name, getattr(compiled, "py_func", compiled))
            yield
        finally:
            for name, compiled in originals.items():
                setattr(umap_module, name, compiled)


def head_map(cka: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of heads from the distance 1 - CKA: UMAP, or t-SNE if UMAP fails.

    Returns (heads, 2) coordinates (NaN for absent heads) and the method used. UMAP's neighbour
    graph is built without compiling (:func:`_uncompiled_fuzzy_graph`); its layout is umap-learn's.
    """
    present = ~np.isnan(np.diag(cka))
    coords = np.full((len(cka), 2), np.nan)
    distance = np.clip(1.0 - cka[np.ix_(present, present)], 0, 1).astype(np.float64)
    np.fill_diagonal(distance, 0.0)
    distance = 0.5 * (distance + distance.T)
    n = int(present.sum())
    if n < 4:
        coords[present] = np.column_stack([np.arange(n), np.zeros(n)])
        return coords, "line"
    try:
        import umap

        neighbors = min(15, n - 1)
        knn = exact_neighbors(distance, neighbors)
        reducer = umap.UMAP(n_neighbors=neighbors, metric="precomputed", random_state=seed, n_jobs=1, init="random", precomputed_knn=knn)
        with warnings.catch_warnings(), _uncompiled_fuzzy_graph():
            warnings.filterwarnings("ignore", category=UserWarning, module="umap")
            coords[present] = reducer.fit_transform(distance)
        return coords, "umap"
    except Exception:
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, metric="precomputed", init="random", random_state=seed, perplexity=min(30.0, (n - 1) / 3))
        coords[present] = tsne.fit_transform(distance)
        return coords, "tsne"
