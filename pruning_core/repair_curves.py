""" "+ repair" curves: every point of a strategy's curve repaired (on the calibration set) and
evaluated (on the evaluation set), beside the plain masked curve.

The repaired curves go into ``Curves.extra["repaired"]`` (name -> :class:`StrategyCurve` as a
dict) with the settings in ``Curves.extra["repair"]``, so the curves JSON carries plain and
repaired points side by side and older readers ignore them. A repaired curve carries what a plain
one does: per point the 95% paired-bootstrap interval of the accuracy change against the full
model and the McNemar p-value, so its knees get intervals and ties the same way
(:func:`repaired_knee_table`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np

from .cache import DiskCache, cache_key, cached_part, single_flight
from .curves import (
    KNEE_RESAMPLES,
    KNEES,
    REFINEMENT,
    Curves,
    Point,
    StrategyCurve,
    _unbits,
    bootstrap_knees,
    pruning_steps,
    strategy_curve,
    sweep,
)
from .data import TextDataset
from .evaluation import EvalResult, evaluate
from .loading import LoadedModel
from .progress import ProgressFn, scaled
from .repair import DEFAULT_RIDGE, REPAIR_VERSION, Repair, TeacherTargets, repair_scheme, repaired_pruned
from .schemes import Scheme
from .stats import bootstrap_counts


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
    teacher: TeacherTargets | None = None,
) -> tuple[EvalResult, Repair]:
    """Repair ``scheme`` on ``calibration``, prune it for real and evaluate it on ``evaluation``.

    ``teacher``: keeps the full model's side of the repair between calls (see
    :class:`~pruning_core.repair.TeacherTargets`).
    """
    repair = repair_scheme(
        lm,
        scheme,
        calibration,
        variant=variant,
        ridge=ridge,
        target=target,
        progress=scaled(progress, 0.0, 0.8),
        cache=cache,
        teacher=teacher,
    )
    model = repaired_pruned(lm, repair)
    return evaluate(model, evaluation, None, progress=scaled(progress, 0.8, 1.0), cache=cache), repair


def repaired_curve(
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    curve: StrategyCurve,
    grid: list[int] | None = None,
    refine_knee: bool = True,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    target: str = "attention",
    teacher: TeacherTargets | None = None,
) -> StrategyCurve:
    """The strategy's curve with every scheme repaired, cached on disk (by the model's, the
    evaluation set's and the calibration set's fingerprints, the strategy's orders, the grid and
    the repair settings).

    The same orders on ``grid`` (default: the plain curve's K) and, for a single run, every K where
    the repaired curve first falls more than 1 point below the full model or first drops
    significantly. K = 0 is the full model; K = all heads cannot be repaired and keeps its masked
    value. Each point carries its accuracy change interval and McNemar p like a plain curve.
    """
    cache = cache if cache is not None else DiskCache()
    grid = list(curve.ks if grid is None else grid)
    key = cache_key(
        "repaired-curve",
        refinement=REFINEMENT,
        repair_version=REPAIR_VERSION,
        model=lm.fingerprint,
        data=evaluation.fingerprint,
        calibration=calibration.fingerprint,
        precision=lm.precision,
        orders=curve.orders,
        grid=grid,
        refine_knee=refine_knee,
        variant=variant,
        ridge=ridge,
        target=target,
    )
    with single_flight(key):
        repaired = cached_part(
            cache,
            key,
            lambda: _repaired_curve(
                lm, evaluation, calibration, curve, grid, refine_knee, variant, ridge, progress, cache, target, teacher
            ),
            lambda result: ({}, {"curve": json.dumps(result.to_dict())}),
            lambda _, meta: StrategyCurve.from_dict(json.loads(str(meta["curve"]))),
        )
    return named_after(repaired, curve)


def named_after(repaired: StrategyCurve, plain: StrategyCurve) -> StrategyCurve:
    """``repaired`` named after ``plain``: two strategies with the same orders (e.g. the composite
    when it equals importance) share one cached repaired curve, but each shows its own name."""
    return dataclasses.replace(
        repaired,
        name=f"{plain.name}+repair",
        label=f"{plain.label} + repair",
        description=f"{plain.description} Every scheme repaired (least squares on the calibration set).",
    )


def _repaired_curve(
    lm: LoadedModel,
    evaluation: TextDataset,
    calibration: TextDataset,
    curve: StrategyCurve,
    grid: list[int],
    refine_knee: bool,
    variant: str,
    ridge: float,
    progress: ProgressFn | None,
    cache: DiskCache,
    target: str,
    teacher: TeacherTargets | None,
) -> StrategyCurve:
    started = time.perf_counter()
    layers, heads = lm.shape
    teacher = teacher if teacher is not None else TeacherTargets()
    full = evaluate(lm, evaluation, None, cache=cache)
    full_correct = full.preds == full.labels

    def measure(run: int, k: int) -> Point:
        scheme = Scheme(layers, heads, frozenset(curve.orders[run][:k]))
        if k == 0:
            result = full
        elif k >= layers * heads:
            result = evaluate(lm, evaluation, scheme, cache=cache)
        else:
            result, _ = repaired_accuracy(lm, evaluation, calibration, scheme, variant, ridge, cache=cache, target=target, teacher=teacher)
        return result.accuracy, result.loss, float((result.preds == full.preds).mean()), result.preds == result.labels

    label = f"{curve.label} + repair"
    points = sweep(label, len(curve.orders), grid, measure, full.accuracy, full_correct, refine_knee, progress)
    description = f"{curve.description} Every scheme repaired (least squares on the calibration set)."
    return strategy_curve(f"{curve.name}+repair", label, description, curve.orders, points, full_correct, time.perf_counter() - started)


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
    """Add the repaired curve of each strategy in ``names`` (default: all) to ``curves.extra``, on
    the curves' 10% grid (``params.step_fraction``) with their knee refinement. The full model's
    side of the repair is computed once for all of them. Returns ``curves``."""
    names = names or tuple(curves.curves)
    grid = pruning_steps(curves.num_layers * curves.num_heads, curves.params.step_fraction)
    teacher = TeacherTargets()
    repaired: dict[str, Any] = dict(curves.extra.get("repaired", {}))
    for index, name in enumerate(names):
        part = scaled(progress, index / len(names), (index + 1) / len(names))
        curve = repaired_curve(
            lm,
            evaluation,
            calibration,
            curves.curves[name],
            grid,
            curves.params.refine_knee,
            variant,
            ridge,
            part,
            cache,
            target,
            teacher,
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
    stored = curves.extra.get("repaired", {})
    return {name: named_after(StrategyCurve.from_dict(d), curves.curves[name]) for name, d in stored.items() if name in curves.curves}


def repaired_knee_table(curves: Curves, plain_table: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per strategy with a repaired curve: its plain and its repaired knees, and the gain.

    Every field of :meth:`Curves.knee_table`'s row appears twice, suffixed ``_plain`` and
    ``_repaired`` (``k_1pt_plain``, ``k_nosig_interval_repaired``, ``delta_3pt_repaired``,
    ``p_1pt_repaired``, ...): plain knees are ranked and tied among the plain curves, repaired
    knees among the repaired ones (ties name the repaired curves, ``<strategy>+repair``).
    ``gain_<knee>`` is the repaired knee minus the plain one and ``gain_<knee>_interval`` the
    2.5-97.5 percentiles of that difference over the same paired bootstrap resamples of the
    evaluation samples as the knees' intervals. ``plain_table``: ``curves.knee_table()`` when the
    caller already has it.
    """
    repaired = repaired_curves(curves)
    if not repaired:
        return []
    plain_rows = {row["strategy"]: row for row in (plain_table if plain_table is not None else curves.knee_table())}
    twin = dataclasses.replace(curves, curves=repaired, extra={})
    repaired_rows = dict(zip(repaired, twin.knee_table(), strict=True))
    full_correct = _unbits(curves.full_correct) if curves.full_correct else None
    counts = bootstrap_counts(len(full_correct), KNEE_RESAMPLES, curves.seed) if full_correct is not None else None
    rows = []
    for name, curve in repaired.items():
        plain = curves.curves[name]
        row: dict[str, Any] = {"strategy": name, "label": plain.label}
        for which, source in (("plain", plain_rows[name]), ("repaired", repaired_rows[name])):
            row.update({f"{key}_{which}": value for key, value in source.items() if key not in ("strategy", "label")})
        for kind in KNEES:
            if f"k_{kind}_plain" in row and f"k_{kind}_repaired" in row:
                row[f"gain_{kind}"] = row[f"k_{kind}_repaired"] - row[f"k_{kind}_plain"]
        plain_correct, repaired_correct = plain.correct_matrix(), curve.correct_matrix()
        if counts is not None and plain_correct is not None and repaired_correct is not None:
            before = bootstrap_knees(plain.ks, plain_correct, full_correct, counts)
            after = bootstrap_knees(curve.ks, repaired_correct, full_correct, counts)
            for kind in KNEES:
                low, high = np.percentile(after[kind] - before[kind], [2.5, 97.5])
                row[f"gain_{kind}_interval"] = [int(round(low)), int(round(high))]
        rows.append(row)
    return rows
