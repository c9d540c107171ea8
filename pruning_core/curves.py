"""Pruning-process curves: accuracy, loss and agreement against the number of heads pruned, for
every strategy, on the evaluation set, plus the knee summary (most heads prunable within 1 point,
within 3 points, and with no significant drop), each knee with its uncertainty (SPEC section 3).

Points are evaluated at a fixed step (default 10% of the heads) and, where accuracy first falls
more than 1 point below the full model or the drop first becomes significant, at every K in
between. Each point carries the 95% paired-bootstrap interval of its accuracy change against the
full model and the McNemar exact p-value (:mod:`pruning_core.stats`). Orders are learned on the
calibration set. Every evaluation goes through the evaluation cache, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import AnalysisBundle
from .batching import resolve_keep_mask
from .cache import DiskCache, cache_key, cached_part, single_flight
from .confirm import confirm_knees
from .data import TextDataset
from .defaults import DEFAULT_STRATEGIES
from .errors import BhpvasError
from .evaluation import EvalResult, evaluate
from .incremental import prefix_sharing_order
from .loading import LoadedModel
from .progress import ProgressFn, no_progress, scaled
from .schemes import Scheme
from .stats import ALPHA, Change, accuracy_changes, bootstrap_counts, is_significant_drop, mcnemar_exact, within_drop
from .strategies import REGISTRY, Head, StrategyContext
from .strategies.composite import Composite
from .strategies.dsp import DifferentiableSubset
from .strategies.importance import MichelIterative
from .strategies.random_order import RandomOrder


@dataclass(frozen=True)
class CurveParams:
    step_fraction: float = 0.1
    random_seeds: int = 5
    refine_knee: bool = True
    dsp_steps: int = 200
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES


def pruning_steps(total: int, fraction: float) -> list[int]:
    """0, the multiples of ``fraction * total`` (rounded), and ``total``."""
    count = max(1, round(1 / fraction))
    return sorted({round(i * total / count) for i in range(count + 1)})


KNEES = ("1pt", "3pt", "nosig")
KNEE_RESAMPLES = 1000
REFINEMENT = 2  # the rule of :func:`_refine_ranges`, part of the cache keys of curves


def knee_k(ks: list[int], accuracy: np.ndarray, full_accuracy: float, max_drop: float) -> int:
    """Largest evaluated K whose accuracy stays within ``max_drop`` of the full model."""
    ok = [k for k, acc in zip(ks, accuracy) if within_drop(acc, full_accuracy, max_drop)]
    return max(ok) if ok else 0


def no_drop_k(ks: list[int], changes: list[Change]) -> int:
    """Largest evaluated K with no significant drop: not (lower accuracy and McNemar p < 0.05)."""
    ok = [k for k, change in zip(ks, changes) if not change.significant_drop]
    return max(ok) if ok else 0


def _bits(correct: np.ndarray) -> str:
    return "".join("1" if c else "0" for c in correct)


def _unbits(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


@dataclass
class StrategyCurve:
    """One strategy's curve; metrics are (runs, points) arrays (runs > 1 for random seeds).

    ``correct``: per run and point, which evaluation samples the pruned model gets right (a
    '0'/'1' string), the basis of every interval; ``delta_low``/``delta_high``/``p_value``: the
    95% paired-bootstrap interval of the accuracy change against the full model and the McNemar
    exact p-value at each point; ``representative``: the run whose curve is closest (least
    squares) to the mean curve: knees and knee schemes of a multi-run strategy come from it, so
    the knee scheme is on a plotted curve; ``note``: what the page must say about the curve (e.g.
    which K DSP's logits come from).
    """

    name: str
    label: str
    description: str
    ks: list[int]
    accuracy: np.ndarray
    loss: np.ndarray
    agreement: np.ndarray
    orders: list[list[Head]]
    seconds: float = 0.0
    correct: list[list[str]] = field(default_factory=list)
    delta_low: np.ndarray | None = None
    delta_high: np.ndarray | None = None
    p_value: np.ndarray | None = None
    representative: int = 0
    note: str = ""

    def mean(self, metric: str = "accuracy") -> np.ndarray:
        return getattr(self, metric).mean(0)

    def band(self, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
        values = getattr(self, metric)
        return values.min(0), values.max(0)

    def pruned_at(self, k: int, run: int | None = None) -> list[Head]:
        return list(self.orders[self.representative if run is None else run][:k])

    def knee(self, full_accuracy: float, max_drop: float) -> int:
        """Largest evaluated K of the representative run within ``max_drop`` of the full model."""
        return knee_k(self.ks, self.accuracy[self.representative], full_accuracy, max_drop)

    def correct_matrix(self, run: int | None = None) -> np.ndarray | None:
        """(points, samples) booleans of the representative (or given) run, None if not recorded."""
        if not self.correct:
            return None
        return np.stack([_unbits(bits) for bits in self.correct[self.representative if run is None else run]])

    def changes(self, full_correct: np.ndarray, seed: int = 0) -> list[Change]:
        """The accuracy change with its interval and p-value at every point of the representative run."""
        matrix = self.correct_matrix()
        return accuracy_changes(full_correct, matrix, seed=seed) if matrix is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "ks": self.ks,
            "accuracy": self.accuracy.tolist(),
            "loss": self.loss.tolist(),
            "agreement": self.agreement.tolist(),
            "orders": [[list(h) for h in order] for order in self.orders],
            "seconds": self.seconds,
            "correct": self.correct,
            "delta_low": None if self.delta_low is None else self.delta_low.tolist(),
            "delta_high": None if self.delta_high is None else self.delta_high.tolist(),
            "p_value": None if self.p_value is None else self.p_value.tolist(),
            "representative": self.representative,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrategyCurve:
        def optional(name: str) -> np.ndarray | None:
            return None if d.get(name) is None else np.asarray(d[name])

        return cls(
            d["name"],
            d["label"],
            d["description"],
            list(d["ks"]),
            np.asarray(d["accuracy"]),
            np.asarray(d["loss"]),
            np.asarray(d["agreement"]),
            [[tuple(h) for h in order] for order in d["orders"]],
            float(d.get("seconds", 0.0)),
            [list(run) for run in d.get("correct", [])],
            optional("delta_low"),
            optional("delta_high"),
            optional("p_value"),
            int(d.get("representative", 0)),
            str(d.get("note", "")),
        )


def bootstrap_knees(ks: list[int], correct: np.ndarray, full_correct: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each knee recomputed on every bootstrap resample of the samples (``counts``: (B, n), how often
    each sample is drawn in each resample, from :func:`~pruning_core.stats.bootstrap_counts`).

    All points of all curves share the resamples, so the knees' intervals are paired. Every
    resampled count is a product with ``counts`` (exact in float64).
    """
    n = len(full_correct)
    full = np.asarray(full_correct, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    accuracy = correct.astype(np.float64) @ counts.T / n  # points, B
    full_accuracy = counts @ full.astype(np.float64) / n  # B
    lost = ((full[None] & ~correct).astype(np.float64) @ counts.T).astype(np.int64)
    gained = ((~full[None] & correct).astype(np.float64) @ counts.T).astype(np.int64)
    drop = (accuracy < full_accuracy[None]) & (mcnemar_exact(lost, gained) < ALPHA)
    k = np.asarray(ks)[:, None]
    result = {}
    for kind, max_drop in (("1pt", 0.01), ("3pt", 0.03)):
        ok = within_drop(accuracy, full_accuracy[None], max_drop)
        result[kind] = np.where(ok, k, 0).max(0)
    result["nosig"] = np.where(~drop, k, 0).max(0)
    return result


@dataclass
class Curves:
    """All strategies' curves for one (model, evaluation set).

    ``full_correct``: which evaluation samples the full model gets right ('0'/'1'); ``calibration``
    and ``evaluation`` describe the sets the orders were learned on and the curves measured on.
    """

    model: str
    data: str
    num_layers: int
    num_heads: int
    full_accuracy: float
    full_loss: float
    params: CurveParams
    curves: dict[str, StrategyCurve]
    evaluations: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    full_correct: str = ""
    calibration: str = ""
    evaluation: str = ""
    seed: int = 0
    precision: str = "fp32"

    def knee_points(self, curve: StrategyCurve, changes: list[Change] | None = None) -> dict[str, int]:
        """The strategy's knees: K within 1 point, within 3 points and, when samples were recorded, with
        no significant drop (``changes``: the curve's per-point changes, when already computed)."""
        knees = {"1pt": curve.knee(self.full_accuracy, 0.01), "3pt": curve.knee(self.full_accuracy, 0.03)}
        if changes is None and self.full_correct and curve.correct:
            changes = curve.changes(_unbits(self.full_correct), self.seed)
        if changes:
            knees["nosig"] = no_drop_k(curve.ks, changes)
        return knees

    def fp32_knees(self) -> dict[str, dict[str, Any]]:
        """The fp32 confirmation of every strategy's knees (strategy -> kind -> numbers), empty when
        the curves were measured in fp32 or not confirmed (:mod:`pruning_core.confirm`)."""
        return self.extra.get("fp32_confirmation", {}).get("knees", {})

    def knee_table(self) -> list[dict[str, Any]]:
        """Per strategy: the most heads prunable within 1 point, within 3 points and with no
        significant drop (McNemar p >= 0.05 or no lower accuracy), each with

        - ``accuracy_<knee>`` and ``delta_<knee>`` = [low, high]: the 95% paired-bootstrap interval
          of the accuracy change at that K, and ``p_<knee>`` its McNemar p-value;
        - ``k_<knee>_interval`` = [low, high]: the 2.5-97.5 percentiles of the knee itself over
          paired bootstrap resamples of the evaluation samples (on the evaluated K grid);
        - ``tied_<knee>``: the other strategies whose knee intervals overlap this one's (a tie:
          the data cannot tell the knees apart), and ``best_<knee>``: whether this strategy's knee
          is the largest or tied with it.
        """
        total = self.num_layers * self.num_heads
        full_correct = _unbits(self.full_correct) if self.full_correct else None
        counts = bootstrap_counts(len(full_correct), KNEE_RESAMPLES, self.seed) if full_correct is not None else None
        rows, intervals = [], {}
        for curve in self.curves.values():
            row: dict[str, Any] = {"strategy": curve.name, "label": curve.label}
            changes = curve.changes(full_correct, self.seed) if full_correct is not None else []
            accuracy = curve.accuracy[curve.representative]
            knees = self.knee_points(curve, changes)
            if changes:
                sampled = bootstrap_knees(curve.ks, curve.correct_matrix(), full_correct, counts)
            for kind, k in knees.items():
                point = curve.ks.index(k)
                row[f"k_{kind}"] = k
                row[f"share_{kind}"] = round(k / total, 3)
                row[f"accuracy_{kind}"] = round(float(accuracy[point]), 4)
                if changes:
                    change = changes[point]
                    row[f"delta_{kind}"] = [round(change.low, 4), round(change.high, 4)]
                    row[f"p_{kind}"] = round(change.p_value, 4)
                    low, high = np.percentile(sampled[kind], [2.5, 97.5])
                    row[f"k_{kind}_interval"] = [int(round(low)), int(round(high))]
                    intervals[(curve.name, kind)] = (low, high)
            row["seconds"] = round(curve.seconds, 1)
            if curve.note:
                row["note"] = curve.note
            rows.append(row)
        for kind in KNEES:
            named = [(row["strategy"], intervals[(row["strategy"], kind)]) for row in rows if (row["strategy"], kind) in intervals]
            if not named:
                continue
            best = max(rows, key=lambda r: r.get(f"k_{kind}", -1))["strategy"]
            for row in rows:
                mine = intervals.get((row["strategy"], kind))
                if mine is None:
                    continue
                row[f"tied_{kind}"] = [name for name, other in named if name != row["strategy"] and _overlap(mine, other)]
                row[f"best_{kind}"] = row["strategy"] == best or best in row[f"tied_{kind}"]
        return rows

    def knee_scheme(self, strategy: str, max_drop_points: float) -> Scheme:
        """The scheme at ``strategy``'s knee (for random: the representative seed's run, which is plotted)."""
        curve = self.curves[strategy]
        k = curve.knee(self.full_accuracy, max_drop_points / 100)
        return Scheme(self.num_layers, self.num_heads, frozenset(curve.pruned_at(k)), model=self.model, name=f"{strategy}@{k}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "full_accuracy": self.full_accuracy,
            "full_loss": self.full_loss,
            "params": asdict(self.params),
            "curves": {k: v.to_dict() for k, v in self.curves.items()},
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "extra": self.extra,
            "full_correct": self.full_correct,
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "seed": self.seed,
            "precision": self.precision,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curves:
        params = dict(d["params"])
        params["strategies"] = tuple(params["strategies"])
        return cls(
            d["model"],
            d["data"],
            int(d["num_layers"]),
            int(d["num_heads"]),
            float(d["full_accuracy"]),
            float(d["full_loss"]),
            CurveParams(**params),
            {k: StrategyCurve.from_dict(v) for k, v in d["curves"].items()},
            int(d.get("evaluations", 0)),
            float(d.get("seconds", 0.0)),
            d.get("extra", {}),
            str(d.get("full_correct", "")),
            str(d.get("calibration", "")),
            str(d.get("evaluation", "")),
            int(d.get("seed", 0)),
            str(d.get("precision", "not recorded")),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()) + "\n")
        return path


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def load_curves(path: str | Path) -> Curves:
    try:
        return Curves.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BhpvasError(f"{path} is not a readable curves file ({exc}). Recompute it with `python -m pruning_core curves`.") from None


def _runs(name: str, params: CurveParams, total: int, step: int):
    """The strategy instances whose orders make up one curve."""
    if name == "random":
        return [RandomOrder(seed) for seed in range(params.random_seeds)]
    if name == "michel":
        return [MichelIterative(step=step)]
    if name == "dsp":
        return [DifferentiableSubset(steps=params.dsp_steps)]
    if name not in REGISTRY:
        raise BhpvasError(f"Unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}.")
    return [REGISTRY[name]()]


def strategy_versions(strategies: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Each registered strategy's version: part of the curves' cache key and of a results manifest,
    so curves made by an older version of a strategy are neither reused nor shipped unnoticed."""
    return {name: REGISTRY[name].version for name in strategies if name in REGISTRY}


def compute_curves(
    lm: LoadedModel,
    dataset: TextDataset,
    bundle: AnalysisBundle,
    params: CurveParams = CurveParams(),
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    calibration: TextDataset | None = None,
    descriptions: dict[str, str] | None = None,
) -> Curves:
    """Curves of every strategy in ``params`` on the evaluation set ``dataset`` (the whole result is
    cached on disk as well).

    Orders are learned on ``calibration`` (Michel's recomputation, DSP, the composite's weights;
    default: ``dataset``); ``descriptions`` (``calibration``/``evaluation``) are recorded in the
    result. Concurrent calls for the same model, data and parameters run once; the others wait.
    """
    cache = cache if cache is not None else DiskCache()
    calibration_set = calibration if calibration is not None else dataset
    names = descriptions or {}
    described = (
        names.get("calibration") or f"{calibration_set.name} ({len(calibration_set)} rows)",
        names.get("evaluation") or f"{dataset.name} ({len(dataset)} rows)",
    )
    key = cache_key(
        "curves",
        refinement=REFINEMENT,
        model=lm.fingerprint,
        data=dataset.fingerprint,
        calibration=calibration_set.fingerprint,
        params=asdict(params),
        versions=strategy_versions(params.strategies),
        bundle=bundle.model_fingerprint,
        bundle_data=bundle.data_fingerprint,
        precision=lm.precision,
    )
    with single_flight(f"curves:{lm.fingerprint}:{lm.precision}:{dataset.fingerprint}:{calibration_set.fingerprint}:{params}"):
        return cached_part(
            cache,
            key,
            lambda: _compute_curves(lm, dataset, bundle, params, progress, cache, calibration_set, described),
            lambda result: ({}, {"curves": json.dumps(result.to_dict())}),
            lambda _, meta: Curves.from_dict(json.loads(str(meta["curves"]))),
        )


def _compute_curves(
    lm: LoadedModel,
    dataset: TextDataset,
    bundle: AnalysisBundle,
    params: CurveParams,
    progress: ProgressFn | None,
    cache: DiskCache,
    calibration: TextDataset,
    described: tuple[str, str],
) -> Curves:
    """Every strategy's orders first, then the grid points of all of them, then the refinements:
    each batch of evaluations in :func:`~pruning_core.incremental.prefix_sharing_order`, so masks
    that agree on their first layers reuse those layers' hidden states."""
    report = progress or no_progress
    started = time.perf_counter()
    layers, heads = lm.shape
    total = layers * heads
    grid = pruning_steps(total, params.step_fraction)
    step = grid[1] - grid[0]
    full = evaluate(lm, dataset, None, cache=cache, remember=True)
    full_correct = full.preds == full.labels
    extra: dict[str, Any] = {}
    runs_of: dict[str, list] = {}
    orders_of: dict[str, list[list[Head]]] = {}
    notes: dict[str, str] = {}
    seconds: dict[str, float] = {}
    count = len(params.strategies)
    for index, name in enumerate(params.strategies):
        began = time.perf_counter()
        ctx = StrategyContext(lm, dataset, bundle, cache, scaled(report, 0.3 * index / count, 0.3 * (index + 1) / count), calibration)
        runs_of[name] = _runs(name, params, total, step)
        orders_of[name], notes[name] = [], ""
        for run in runs_of[name]:
            orders_of[name].append(run.order(ctx))
            if isinstance(run, DifferentiableSubset) and run.last is not None:
                notes[name] = run.note(total)
                extra["dsp"] = {
                    "train_seconds": round(run.last.seconds, 1),
                    "keep_k": run.last.k,
                    "logits_from_pruned_k": total - run.last.k,
                    "exact_k_points": [total - run.last.k],
                    "note": notes[name],
                    "steps": run.last.steps,
                    "train_data": run.last.train_data,
                }
            if isinstance(run, Composite) and run.last is not None:
                extra["bhpvas"] = {
                    **run.last,
                    "signal": {k: v.to_dict() for k, v in bundle.signal.items()},
                    "tuned_on": described[0],
                }
                used = [f"{c} weight {run.last[c]}" for c in ("stability", "similarity")]
                notes[name] = "Weights chosen on the calibration set: " + ", ".join(used) + "."
        seconds[name] = time.perf_counter() - began

    points: dict[str, dict[tuple[int, int], Point]] = {name: {} for name in params.strategies}
    evaluations = 0

    def measure_all(wanted: list[tuple[str, int, int]], low: float, high: float, what: str) -> None:
        """Evaluate every (strategy, run, K) of ``wanted`` not yet measured, each distinct mask once."""
        nonlocal evaluations
        by_mask: dict[bytes, tuple[np.ndarray, list[tuple[str, int, int]]]] = {}
        for name, run, k in wanted:
            if k == 0:
                points[name][(run, k)] = _point(full)
                continue
            keep = resolve_keep_mask(lm, Scheme(layers, heads, frozenset(orders_of[name][run][:k])))
            by_mask.setdefault(keep.tobytes(), (keep, []))[1].append((name, run, k))
        masks = list(by_mask.values())
        for done, i in enumerate(prefix_sharing_order([keep for keep, _ in masks])):
            keep, users = masks[i]
            name, _, k = users[0]
            began = time.perf_counter()
            result = evaluate(lm, dataset, keep, cache=cache, remember=True)
            seconds[name] += time.perf_counter() - began
            evaluations += int(not result.from_cache)
            for user, run, user_k in users:
                points[user][(run, user_k)] = _point(result)
            report(
                low + (high - low) * (done + 1) / len(masks), f"{what} {done + 1}/{len(masks)}: {runs_of[name][0].label}, {k} heads pruned"
            )

    measure_all([(name, r, k) for name in params.strategies for r in range(len(orders_of[name])) for k in grid], 0.3, 0.8, "grid point")
    if params.refine_knee:
        refine = []
        for name in params.strategies:
            if len(orders_of[name]) != 1:
                continue
            refine += [(name, 0, k) for k in refinement_ks(grid, [points[name][(0, k)] for k in grid], full.accuracy, full_correct)]
        measure_all(refine, 0.8, 0.97, "knee refinement")
    curves = {
        name: strategy_curve(
            name,
            runs_of[name][0].label,
            runs_of[name][0].description,
            orders_of[name],
            points[name],
            full_correct,
            seconds[name],
            notes[name],
        )
        for name in params.strategies
    }
    result = Curves(
        lm.name,
        dataset.name,
        layers,
        heads,
        full.accuracy,
        full.loss,
        params,
        curves,
        evaluations,
        time.perf_counter() - started,
        extra,
        _bits(full_correct),
        described[0],
        described[1],
        precision=lm.precision,
    )
    if lm.precision != "fp32":
        knees = {
            name: {
                kind: (Scheme(layers, heads, frozenset(curve.pruned_at(k))), curve.correct_matrix()[curve.ks.index(k)])
                for kind, k in result.knee_points(curve).items()
            }
            for name, curve in curves.items()
        }
        result.extra["fp32_confirmation"] = confirm_knees(lm, dataset, knees, cache, scaled(report, 0.97, 1.0))
    report(1.0, "curves ready")
    return result


Point = tuple[float, float, float, np.ndarray]
"""One curve point: accuracy, loss, agreement with the full model, and which samples are right."""


def _point(result: EvalResult) -> Point:
    return result.accuracy, result.loss, result.agreement, result.preds == result.labels


def sweep(
    name: str,
    runs: int,
    grid: list[int],
    measure: Callable[[int, int], Point],
    full_accuracy: float,
    full_correct: np.ndarray,
    refine_knee: bool,
    progress: ProgressFn | None = None,
) -> dict[tuple[int, int], Point]:
    """``measure(run, k)`` at every K of ``grid`` for every run and, for a single run with
    ``refine_knee``, at every K where accuracy first falls more than 1 point below the full model
    and where the drop first becomes significant (:func:`_refine_ranges`)."""
    report = progress or no_progress
    points: dict[tuple[int, int], Point] = {}
    todo = [(r, k) for r in range(runs) for k in grid]
    for i, (r, k) in enumerate(todo):
        points[(r, k)] = measure(r, k)
        report(0.9 * (i + 1) / len(todo), f"{name}: {k} heads pruned")
    if refine_knee and runs == 1:
        ks = refinement_ks(grid, [points[(0, k)] for k in grid], full_accuracy, full_correct)
        for i, k in enumerate(ks):
            points[(0, k)] = measure(0, k)
            report(0.9 + 0.1 * (i + 1) / len(ks), f"{name}: refining at {k}")
    report(1.0, f"{name}: done")
    return points


def strategy_curve(
    name: str,
    label: str,
    description: str,
    orders: list[list[Head]],
    points: dict[tuple[int, int], Point],
    full_correct: np.ndarray,
    seconds: float,
    note: str = "",
) -> StrategyCurve:
    """The curve through ``points`` (from :func:`sweep`), each point with the 95% paired-bootstrap
    interval of its accuracy change against the full model and its McNemar p-value."""
    ks = sorted({k for _, k in points})
    runs = range(len(orders))
    metric = {m: np.asarray([[points[(r, k)][i] for k in ks] for r in runs]) for i, m in enumerate(("accuracy", "loss", "agreement"))}
    changes = [accuracy_changes(full_correct, np.stack([points[(r, k)][3] for k in ks])) for r in runs]
    return StrategyCurve(
        name,
        label,
        description,
        ks,
        metric["accuracy"],
        metric["loss"],
        metric["agreement"],
        orders,
        seconds,
        correct=[[_bits(points[(r, k)][3]) for k in ks] for r in runs],
        delta_low=np.asarray([[c.low for c in row] for row in changes]),
        delta_high=np.asarray([[c.high for c in row] for row in changes]),
        p_value=np.asarray([[c.p_value for c in row] for row in changes]),
        representative=closest_to_mean(metric["accuracy"]),
        note=note,
    )


def closest_to_mean(accuracy: np.ndarray) -> int:
    """The run whose curve is closest (least squares) to the mean curve; the lowest index on ties."""
    distance = ((accuracy - accuracy.mean(0, keepdims=True)) ** 2).sum(1)
    return int(np.argmin(distance))


def refinement_ks(grid: list[int], points: list[Point], full_accuracy: float, full_correct: np.ndarray) -> list[int]:
    """The K to evaluate between grid points (:func:`_refine_ranges`), in increasing order; none is on the grid."""
    return [k for low, high in _refine_ranges(grid, points, full_accuracy, full_correct) for k in range(low + 1, high)]


def _refine_ranges(
    grid: list[int], points: list[tuple[float, float, float, np.ndarray]], full_accuracy: float, full_correct: np.ndarray
) -> list[tuple[int, int]]:
    """Grid intervals to evaluate at every K, for the 1-point knee and the first significant drop:
    where the curve first crosses the threshold, and after the last grid K still on the good side
    (the knee is the largest such K, which a noisy curve, e.g. a repaired one, can reach after
    dipping below the threshold and coming back)."""
    ranges = set()
    within = [within_drop(p[0], full_accuracy, 0.01) for p in points]
    unharmed = [
        not is_significant_drop(p[0] - full_accuracy, mcnemar_exact(int((full_correct & ~p[3]).sum()), int((~full_correct & p[3]).sum())))
        for p in points
    ]
    for good in (within, unharmed):
        first_bad = next((i for i, ok in enumerate(good) if not ok), None)
        if first_bad:
            ranges.add((grid[first_bad - 1], grid[first_bad]))
        last_good = max((i for i, ok in enumerate(good) if ok), default=None)
        if last_good is not None and last_good + 1 < len(grid):
            ranges.add((grid[last_good], grid[last_good + 1]))
    return sorted(ranges)
