""" "+ repair" curves: every point of a strategy's curve repaired (on the calibration set) and
evaluated (on the evaluation set), beside the plain masked curve.

The repaired curves go into ``Curves.extra["repaired"]`` (name -> :class:`StrategyCurve` as a
dict) with the settings in ``Curves.extra["repair"]``, so the curves JSON carries plain and
repaired points side by side and older readers ignore them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .cache import DiskCache
from .curves import Curves, StrategyCurve
from .data import TextDataset
from .evaluation import evaluate
from .loading import LoadedModel
from .progress import ProgressFn, no_progress, scaled
from .repair import DEFAULT_RIDGE, repair_scheme, repaired_pruned
from .schemes import Scheme


def repaired_accuracy(
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    scheme: Scheme | np.ndarray,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    target: str = "attention",
):
    """Repair ``scheme`` on ``calibration``, prune it for real and evaluate it on ``evaluation``.

    Returns (:class:`~pruning_core.evaluation.EvalResult`, :class:`~pruning_core.repair.Repair`).
    """
    repair = repair_scheme(
        lm, scheme, calibration, variant=variant, ridge=ridge, target=target, progress=scaled(progress, 0.0, 0.8), cache=cache
    )
    model = repaired_pruned(lm, repair)
    return evaluate(model, evaluation, None, progress=scaled(progress, 0.8, 1.0), cache=cache), repair


def repaired_curve(
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    curve: StrategyCurve,
    full_accuracy: float,
    refine_knee: bool = True,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    target: str = "attention",
) -> StrategyCurve:
    """The strategy's curve with every scheme repaired: the same orders and K grid (K = 0 is the
    full model; K = all heads cannot be repaired and keeps its masked value), plus every K around
    the repaired curve's 1-point knee."""
    report = progress or no_progress
    started = time.perf_counter()
    layers, heads = lm.shape
    total = layers * heads
    results: dict[tuple[int, int], tuple[float, float, float]] = {}

    def measure(run: int, k: int) -> None:
        if (run, k) in results:
            return
        if k == 0 or k >= total:
            column = curve.ks.index(k)
            results[(run, k)] = tuple(float(getattr(curve, m)[run, column]) for m in ("accuracy", "loss", "agreement"))
            return
        scheme = Scheme(layers, heads, frozenset(curve.orders[run][:k]))
        result, _ = repaired_accuracy(lm, evaluation, calibration, scheme, variant, ridge, cache=cache, target=target)
        full_preds = evaluate(lm, evaluation, None, cache=cache).preds
        results[(run, k)] = (result.accuracy, result.loss, float((result.preds == full_preds).mean()))

    grid = list(curve.ks)
    todo = [(r, k) for r in range(len(curve.orders)) for k in grid]
    for i, (r, k) in enumerate(todo):
        measure(r, k)
        report(0.9 * (i + 1) / len(todo), f"{curve.name} + repair: {k} heads pruned")
    ks = grid
    if refine_knee and len(curve.orders) == 1:
        accuracy = [results[(0, k)][0] for k in grid]
        below = [i for i, acc in enumerate(accuracy) if acc < full_accuracy - 0.01]
        if below and below[0] > 0:
            low, high = grid[below[0] - 1], grid[below[0]]
            for k in range(low + 1, high):
                measure(0, k)
                report(0.9 + 0.1 * (k - low) / max(high - low, 1), f"{curve.name} + repair: refining the knee at {k}")
            ks = sorted({k for _, k in results})
    metric = {
        m: np.asarray([[results[(r, k)][i] for k in ks] for r in range(len(curve.orders))])
        for i, m in enumerate(("accuracy", "loss", "agreement"))
    }
    return StrategyCurve(
        f"{curve.name}+repair",
        f"{curve.label} + repair",
        f"{curve.description} Every scheme repaired (least squares on the calibration set).",
        ks,
        metric["accuracy"],
        metric["loss"],
        metric["agreement"],
        curve.orders,
        time.perf_counter() - started,
    )


def add_repaired_curves(
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    curves: Curves,
    names: tuple[str, ...] | None = None,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    target: str = "attention",
) -> Curves:
    """Add the repaired curve of each strategy in ``names`` (default: all) to ``curves.extra``."""
    names = names or tuple(curves.curves)
    repaired: dict[str, Any] = dict(curves.extra.get("repaired", {}))
    for index, name in enumerate(names):
        part = scaled(progress, index / len(names), (index + 1) / len(names))
        curve = repaired_curve(
            lm,
            evaluation,
            calibration,
            curves.curves[name],
            curves.full_accuracy,
            curves.params.refine_knee,
            variant,
            ridge,
            part,
            cache,
            target,
        )
        repaired[name] = curve.to_dict()
    curves.extra["repaired"] = repaired
    curves.extra["repair"] = {
        "variant": variant,
        "ridge": ridge,
        "target": target,
        "calibration": calibration.name,
        "calibration_fingerprint": calibration.fingerprint,
    }
    return curves


def repaired_curves(curves: Curves) -> dict[str, StrategyCurve]:
    """The repaired curves stored in ``curves`` (name of the plain strategy -> curve)."""
    return {name: StrategyCurve.from_dict(d) for name, d in curves.extra.get("repaired", {}).items()}


def repaired_knee_table(curves: Curves) -> list[dict[str, Any]]:
    """Per strategy with a repaired curve: its plain and repaired knees at 1 and 3 points."""
    total = curves.num_layers * curves.num_heads
    rows = []
    for name, repaired in repaired_curves(curves).items():
        plain = curves.curves[name]
        row: dict[str, Any] = {"strategy": name, "label": plain.label}
        for points in (1, 3):
            for kind, curve in (("plain", plain), ("repaired", repaired)):
                k = curve.knee(curves.full_accuracy, points / 100)
                row[f"k_{points}pt_{kind}"] = k
                row[f"share_{points}pt_{kind}"] = round(k / total, 3)
                row[f"accuracy_{points}pt_{kind}"] = round(float(curve.mean()[curve.ks.index(k)]), 4)
        rows.append(row)
    return rows
