"""Pruning-process curves: accuracy, loss and agreement against the number of heads pruned, for
every strategy, plus the knee summary (most heads prunable within 1 and 3 accuracy points).

Points are evaluated at a fixed step (default 10% of the heads) and, where accuracy first falls
more than 1 point below the full model, at every K in between. Every evaluation goes through the
evaluation cache, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import AnalysisBundle
from .cache import DiskCache, cache_key, cached_part, single_flight
from .data import TextDataset
from .defaults import DEFAULT_STRATEGIES
from .errors import BhpvasError
from .evaluation import evaluate
from .loading import LoadedModel
from .progress import ProgressFn, no_progress, scaled
from .schemes import Scheme
from .strategies import REGISTRY, Head, StrategyContext
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


@dataclass
class StrategyCurve:
    """One strategy's curve; metrics are (runs, points) arrays (runs > 1 for random seeds)."""

    name: str
    label: str
    description: str
    ks: list[int]
    accuracy: np.ndarray
    loss: np.ndarray
    agreement: np.ndarray
    orders: list[list[Head]]
    seconds: float = 0.0

    def mean(self, metric: str = "accuracy") -> np.ndarray:
        return getattr(self, metric).mean(0)

    def band(self, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray]:
        values = getattr(self, metric)
        return values.min(0), values.max(0)

    def pruned_at(self, k: int, run: int = 0) -> list[Head]:
        return list(self.orders[run][:k])

    def knee(self, full_accuracy: float, max_drop: float) -> int:
        """Largest evaluated K whose (mean) accuracy stays within ``max_drop`` of the full model."""
        ok = [k for k, acc in zip(self.ks, self.mean()) if acc >= full_accuracy - max_drop - 1e-12]
        return max(ok) if ok else 0

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
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrategyCurve:
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
        )


@dataclass
class Curves:
    """All strategies' curves for one (model, dataset)."""

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

    def knee_table(self) -> list[dict[str, Any]]:
        """Per strategy: most heads prunable within 1 and 3 accuracy points, and the accuracy there."""
        rows = []
        for curve in self.curves.values():
            row: dict[str, Any] = {"strategy": curve.name, "label": curve.label}
            for points in (1, 3):
                k = curve.knee(self.full_accuracy, points / 100)
                row[f"k_{points}pt"] = k
                row[f"share_{points}pt"] = round(k / (self.num_layers * self.num_heads), 3)
                row[f"accuracy_{points}pt"] = round(float(curve.mean()[curve.ks.index(k)]), 4)
            row["seconds"] = round(curve.seconds, 1)
            rows.append(row)
        return rows

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
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()) + "\n")
        return path


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


def compute_curves(
    lm: LoadedModel,
    dataset: TextDataset,
    bundle: AnalysisBundle,
    params: CurveParams = CurveParams(),
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
) -> Curves:
    """Curves of every strategy in ``params`` (the whole result is cached on disk as well).

    Concurrent calls for the same model, data and parameters run once; the others wait for it.
    """
    cache = cache if cache is not None else DiskCache()
    key = cache_key("curves", model=lm.fingerprint, data=dataset.fingerprint, params=asdict(params), bundle=bundle.model_fingerprint)
    with single_flight(f"curves:{lm.fingerprint}:{dataset.fingerprint}:{params}"):
        return cached_part(
            cache,
            key,
            lambda: _compute_curves(lm, dataset, bundle, params, progress, cache),
            lambda result: ({}, {"curves": json.dumps(result.to_dict())}),
            lambda _, meta: Curves.from_dict(json.loads(str(meta["curves"]))),
        )


def _compute_curves(
    lm: LoadedModel, dataset: TextDataset, bundle: AnalysisBundle, params: CurveParams, progress: ProgressFn | None, cache: DiskCache
) -> Curves:
    report = progress or no_progress
    started = time.perf_counter()
    layers, heads = lm.shape
    total = layers * heads
    grid = pruning_steps(total, params.step_fraction)
    step = grid[1] - grid[0]
    full = evaluate(lm, dataset, None, cache=cache)
    evaluations = 0
    curves: dict[str, StrategyCurve] = {}
    extra: dict[str, Any] = {}
    for index, name in enumerate(params.strategies):
        part = scaled(report, index / len(params.strategies), (index + 1) / len(params.strategies))
        began = time.perf_counter()
        ctx = StrategyContext(lm, dataset, bundle, cache, scaled(part, 0.0, 0.3))
        runs = _runs(name, params, total, step)
        orders = []
        for run in runs:
            orders.append(run.order(ctx))
            if isinstance(run, DifferentiableSubset) and run.last is not None:
                extra["dsp"] = {
                    "train_seconds": round(run.last.seconds, 1),
                    "keep_k": run.last.k,
                    "steps": run.last.steps,
                    "train_data": run.last.train_data,
                }
        ks = list(grid)
        results: dict[tuple[int, int], tuple[float, float, float]] = {}

        def measure(run_index: int, k: int, results=results, orders=orders) -> None:
            nonlocal evaluations
            if (run_index, k) in results:
                return
            scheme = Scheme(layers, heads, frozenset(orders[run_index][:k]))
            result = full if k == 0 else evaluate(lm, dataset, scheme, cache=cache, remember=True)
            evaluations += int(not result.from_cache and k != 0)
            results[(run_index, k)] = (result.accuracy, result.loss, result.agreement)

        todo = [(r, k) for r in range(len(orders)) for k in grid]
        for i, (r, k) in enumerate(todo):
            measure(r, k)
            part(0.3 + 0.6 * (i + 1) / len(todo), f"{name}: {k} heads pruned")
        if params.refine_knee and len(orders) == 1:
            accuracy = [results[(0, k)][0] for k in grid]
            below = [i for i, acc in enumerate(accuracy) if acc < full.accuracy - 0.01]
            if below and below[0] > 0:
                low, high = grid[below[0] - 1], grid[below[0]]
                for k in range(low + 1, high):
                    measure(0, k)
                    part(0.9 + 0.1 * (k - low) / max(high - low, 1), f"{name}: refining the knee at {k}")
                ks = sorted({k for _, k in results})
        metric = {
            m: np.asarray([[results[(r, k)][i] for k in ks] for r in range(len(orders))])
            for i, m in enumerate(("accuracy", "loss", "agreement"))
        }
        first = runs[0]
        curves[name] = StrategyCurve(
            name,
            first.label,
            first.description,
            ks,
            metric["accuracy"],
            metric["loss"],
            metric["agreement"],
            orders,
            time.perf_counter() - began,
        )
    result = Curves(
        lm.name, dataset.name, layers, heads, full.accuracy, full.loss, params, curves, evaluations, time.perf_counter() - started, extra
    )
    report(1.0, "curves ready")
    return result
