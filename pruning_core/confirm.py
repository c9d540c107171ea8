"""fp32 confirmation of numbers measured in reduced precision.

Curves and toggles run in bf16 autocast where the hardware has it (fast), but the numbers a user
acts on are re-measured in fp32: every strategy's knee points (:func:`confirm_knees`, run at the end
of :func:`pruning_core.curves.compute_curves`) and, on request, any scheme (:func:`confirm_scheme`).
Both evaluate on the same evaluation set with an fp32 twin of the model (same weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .cache import DiskCache
from .data import TextDataset
from .evaluation import evaluate
from .loading import LoadedModel
from .progress import ProgressFn, no_progress
from .schemes import Scheme
from .stats import accuracy_change, is_significant_drop, within_drop

KNEE_DROPS = {"1pt": 0.01, "3pt": 0.03}


@dataclass(frozen=True)
class Confirmation:
    """One scheme measured in the reduced precision and in fp32 on the same evaluation set.

    ``changed``: samples whose correctness differs between the two precisions; ``delta``: the fp32
    accuracy change against the fp32 full model with its 95% interval and McNemar p.
    """

    k: int
    precision: str
    accuracy: float
    accuracy_fp32: float
    full_accuracy_fp32: float
    changed: int
    delta_fp32: tuple[float, float, float]
    p_fp32: float

    def holds(self, kind: str) -> bool:
        """Whether the knee's criterion still holds in fp32 (within 1 / 3 points, or no significant drop)."""
        if kind in KNEE_DROPS:
            return within_drop(self.accuracy_fp32, self.full_accuracy_fp32, KNEE_DROPS[kind])
        return not is_significant_drop(self.accuracy_fp32 - self.full_accuracy_fp32, self.p_fp32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"delta_fp32": list(self.delta_fp32)}


def _fp32_full(lm: LoadedModel, dataset: TextDataset, cache: DiskCache | None):
    return evaluate(lm.with_precision("fp32"), dataset, None, cache=cache)


def confirm_scheme(
    lm: LoadedModel, dataset: TextDataset, scheme: Scheme, reduced_correct: np.ndarray, cache: DiskCache | None = None
) -> Confirmation:
    """``scheme`` evaluated in fp32; ``reduced_correct``: which samples it gets right in ``lm``'s precision."""
    exact = lm.with_precision("fp32")
    full = _fp32_full(lm, dataset, cache)
    result = evaluate(exact, dataset, scheme, cache=cache)
    correct = result.preds == result.labels
    change = accuracy_change(full.preds == full.labels, correct)
    return Confirmation(
        k=len(scheme.pruned),
        precision=lm.precision,
        accuracy=float(np.mean(reduced_correct)),
        accuracy_fp32=result.accuracy,
        full_accuracy_fp32=full.accuracy,
        changed=int((correct != np.asarray(reduced_correct, dtype=bool)).sum()),
        delta_fp32=(round(change.delta, 4), round(change.low, 4), round(change.high, 4)),
        p_fp32=round(change.p_value, 4),
    )


def confirm_knees(
    lm: LoadedModel,
    dataset: TextDataset,
    knees: dict[str, dict[str, tuple[Scheme, np.ndarray]]],
    cache: DiskCache | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Knee schemes (strategy -> kind -> (scheme, samples right in ``lm``'s precision)) re-evaluated
    in fp32: ``{"precision", "full_accuracy_fp32", "knees": {strategy: {kind: Confirmation dict + holds}}}``."""
    report = progress or no_progress
    full = _fp32_full(lm, dataset, cache)
    confirmed: dict[str, dict[str, Any]] = {}
    for index, (name, points) in enumerate(knees.items()):
        confirmed[name] = {}
        for kind, (scheme, reduced_correct) in points.items():
            confirmation = confirm_scheme(lm, dataset, scheme, reduced_correct, cache)
            confirmed[name][kind] = confirmation.to_dict() | {"holds": confirmation.holds(kind)}
        report((index + 1) / len(knees), f"fp32 check of {name}'s knees")
    return {"precision": lm.precision, "full_accuracy_fp32": full.accuracy, "knees": confirmed}
