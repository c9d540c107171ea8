"""The BHPVAS composite criterion: low importance, together with high stability and/or conditional
redundancy.

As a scheme (the sidebar's proposal, :class:`Thresholds`): a head is proposed when importance <=
t_I and, for the enabled criteria, stability >= t_S and/or its max CKA with a head that stays is
>= t_C. Thresholds are percentiles of the model's own distributions by default (``scale=
"percentile"``: 0.5 = the median head), so one set of defaults means the same on any model;
``scale="value"`` takes raw values (importance on its 0-1 display scale). Candidates are visited
from the least important up and redundancy is recomputed against the heads still kept, so the two
members of a redundant pair are never both proposed on similarity alone. A criterion flagged as
carrying no signal (:mod:`pruning_core.criteria`) is left out and :meth:`Thresholds.notes` says so.

As an order (the curve, :class:`Composite`): greedily, the next head pruned is the one minimising
``rank(importance) - w_S * rank(stability) - w_C * redundancy(kept)``, ranks as percentiles in
[0, 1] and redundancy its max CKA with the heads still kept. The weights are chosen on the
calibration set from a small grid that includes (0, 0) (= one-shot importance): the pair with the
lowest mean calibration loss (on the measured subset of the calibration set,
:func:`pruning_core.calibration.measured_subset`) at 40, 50, 60 and 70% of heads pruned. Criteria without signal get
weight 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..analysis import AnalysisBundle
from ..calibration import measured_subset
from ..evaluation import evaluate
from ..redundancy import conditional_redundancy, prune_in_order
from ..schemes import Scheme
from .base import Head, Strategy, StrategyContext, register

WEIGHT_GRID = (0.0, 0.25, 0.5)
TUNING_FRACTIONS = (0.4, 0.5, 0.6, 0.7)


def _flagged(bundle: AnalysisBundle, criterion: str) -> bool:
    verdict = bundle.signal.get(criterion)
    return verdict is not None and not verdict.signal


def _cutoff(values: np.ndarray, threshold: float, scale: str) -> float:
    if scale == "value":
        return threshold
    if threshold > 1:
        return np.inf
    if threshold < 0:
        return -np.inf
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, threshold)) if finite.size else np.inf


@dataclass(frozen=True)
class Thresholds:
    """Sidebar thresholds (see the module docstring); ``None`` disables a criterion."""

    importance: float = 0.5
    stability: float | None = 0.5
    similarity: float | None = 0.75
    logic: str = "or"
    scale: str = "percentile"
    skip_no_signal: bool = True

    def __post_init__(self) -> None:
        if self.scale not in ("percentile", "value"):
            raise ValueError(f"scale must be 'percentile' or 'value', not {self.scale!r}")
        if self.logic not in ("or", "and"):
            raise ValueError(f"logic must be 'or' or 'and', not {self.logic!r}")

    def uses(self, bundle: AnalysisBundle) -> dict[str, bool]:
        """Whether stability and similarity take part (enabled, and not flagged when skipping)."""
        return {
            name: getattr(self, name) is not None and not (self.skip_no_signal and _flagged(bundle, name))
            for name in ("stability", "similarity")
        }

    def cutoffs(self, bundle: AnalysisBundle) -> dict[str, float | None]:
        """The value thresholds applied: importance (display scale), stability, CKA."""
        criteria = bundle.criteria()
        result: dict[str, float | None] = {"importance": _cutoff(criteria["importance_display"], self.importance, self.scale)}
        for name in ("stability", "similarity"):
            threshold = getattr(self, name)
            result[name] = None if threshold is None else _cutoff(criteria[name], threshold, self.scale)
        return result

    def notes(self, bundle: AnalysisBundle) -> list[str]:
        """Sentences for the page: criteria left out for lack of signal, and flagged criteria still used."""
        notes = []
        for name in ("stability", "similarity"):
            verdict = bundle.signal.get(name)
            if verdict is None or verdict.signal or getattr(self, name) is None:
                continue
            action = "left out of the proposal" if self.skip_no_signal else "still used"
            notes.append(f"{name.capitalize()} carries no signal on this model ({verdict.reason}); {action}.")
        return notes

    def proposed(self, bundle: AnalysisBundle) -> np.ndarray:
        """Boolean (layers, heads): heads proposed for pruning."""
        criteria = bundle.criteria()
        cut = self.cutoffs(bundle)
        importance = criteria["importance_display"]
        low = np.nan_to_num(importance, nan=np.inf) <= cut["importance"]
        uses = self.uses(bundle)
        if not any(uses.values()):
            return low
        stable = np.nan_to_num(criteria["stability"], nan=-np.inf) >= (cut["stability"] if uses["stability"] else np.inf)
        candidates = sorted(zip(*map(list, np.nonzero(low))), key=lambda h: (importance[h], h))
        candidates = [(int(a), int(b)) for a, b in candidates]
        if uses["similarity"]:
            removed = prune_in_order(
                candidates,
                bundle.similarity.cka,
                bundle.present_mask(),
                cut["similarity"],
                otherwise=(lambda h: bool(stable[h])) if uses["stability"] else None,
                logic=self.logic,
            )
        else:
            removed = [h for h in candidates if stable[h]]
        mask = np.zeros(bundle.shape, dtype=bool)
        for head in removed:
            mask[head] = True
        return mask

    def scheme(self, bundle: AnalysisBundle, model: str = "") -> Scheme:
        return Scheme.from_mask(~self.proposed(bundle), model=model, name="bhpvas-thresholds")


def percentile_rank(values: np.ndarray, fill: float) -> np.ndarray:
    """Percentile ranks in (0, 1] of ``values`` (NaN replaced by ``fill`` first), same shape."""
    flat = np.nan_to_num(values, nan=fill).ravel()
    return (rankdata(flat) / flat.size).reshape(values.shape)


def composite_order(bundle: AnalysisBundle, w_stability: float = 0.0, w_similarity: float = 0.0) -> list[Head]:
    """Every head, first pruned first, by the greedy composite score of the module docstring."""
    criteria = bundle.criteria()
    importance = percentile_rank(criteria["importance"], np.inf)
    stable = percentile_rank(criteria["stability"], -np.inf)
    kept = np.ones(bundle.shape, dtype=bool)
    order: list[Head] = []
    heads = [(layer, head) for layer in range(bundle.num_layers) for head in range(bundle.num_heads)]
    while len(order) < len(heads):
        redundancy = conditional_redundancy(bundle.similarity.cka, kept)[0] if w_similarity else 0.0
        score = importance - w_stability * stable - w_similarity * redundancy
        head = min((h for h in heads if kept[h]), key=lambda h: (score[h], h))
        kept[head] = False
        order.append(head)
    return order


def tune_weights(ctx: StrategyContext, use_stability: bool = True, use_similarity: bool = True) -> dict:
    """The grid weights with the lowest mean calibration loss at :data:`TUNING_FRACTIONS` pruned.

    Returns ``{"stability": w_S, "similarity": w_C, "objective": ..., "tried": [...]}``.
    """
    bundle = ctx.bundle
    grids = {
        name: WEIGHT_GRID if use and not _flagged(bundle, name) else (0.0,)
        for name, use in (("stability", use_stability), ("similarity", use_similarity))
    }
    layers, heads = ctx.shape
    total = layers * heads
    data = measured_subset(ctx.calibration_set)
    ks = sorted({max(1, round(f * total)) for f in TUNING_FRACTIONS})
    tried = []
    for w_s, w_c in itertools.product(grids["stability"], grids["similarity"]):
        if len(grids["stability"]) * len(grids["similarity"]) == 1:
            tried.append({"stability": w_s, "similarity": w_c, "calibration_loss": None})
            break
        order = composite_order(bundle, w_s, w_c)
        losses = [evaluate(ctx.lm, data, Scheme(layers, heads, frozenset(order[:k])), cache=ctx.cache).loss for k in ks]
        tried.append({"stability": w_s, "similarity": w_c, "calibration_loss": float(np.mean(losses))})
    best = min(tried, key=lambda t: (t["calibration_loss"] or 0.0, t["stability"] + t["similarity"]))
    return {
        "stability": best["stability"],
        "similarity": best["similarity"],
        "objective": f"mean calibration loss at {ks} heads pruned",
        "tried": tried,
    }


@register
class Composite(Strategy):
    name = "bhpvas"
    label = "BHPVAS composite"
    description = (
        "Greedy: low importance rank, minus weighted stability rank and redundancy with the heads still kept; "
        "weights chosen on the calibration set (criteria without signal get 0)."
    )

    def __init__(self, use_stability: bool = True, use_similarity: bool = True, weights: tuple[float, float] | None = None):
        self.use_stability = use_stability
        self.use_similarity = use_similarity
        self.weights = weights
        self.last: dict | None = None

    def order(self, ctx: StrategyContext) -> list[Head]:
        if self.weights is not None:
            self.last = {"stability": self.weights[0], "similarity": self.weights[1], "objective": "given", "tried": []}
        else:
            self.last = tune_weights(ctx, self.use_stability, self.use_similarity)
        return composite_order(ctx.bundle, self.last["stability"], self.last["similarity"])
