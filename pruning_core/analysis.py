"""One analysis bundle: every per-head evidence the views draw, computed once and cached.

Parts (attention statistics, importance, similarity, roles and alignment) are cached one by one,
so a rerun, or a run after a crash, resumes instead of restarting. :meth:`AnalysisBundle.save`
writes a documented folder (``bundle.json``, ``scores.csv``, ``arrays.npz``) that the app and
other machines can open with :func:`load_bundle`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .ablation import LeaveOneOut, leave_one_out
from .attention import PROFILE_NAMES, AttentionStats, attention_statistics
from .cache import CODE_VERSION, DiskCache, cache_key, cached_part, single_flight
from .criteria import Signal, signal_report
from .data import TextDataset
from .errors import BhpvasError
from .loading import LoadedModel
from .oom import halving_retry
from .progress import ProgressFn, no_progress, scaled
from .redundancy import redundant_pairs
from .roles import RELATIONS, ROLES, Alignment, Roles, syntax_evidence
from .scores import ContextSampler, Importance, Similarity, head_importance, head_map, head_similarity, stability

BUNDLE_FORMAT = 2

COLUMNS_DOC = {
    "layer": "layer index, from 0 (bottom)",
    "head": "head index within the layer, from 0",
    "importance": "Michel et al. importance: sum over calibration examples of |dL(x)/d gate| at gate 1 / tokens, each layer L2-normalised",
    "importance_display": "importance min-max scaled to [0, 1] over all heads",
    "importance_stderr": "standard error of the normalised importance over calibration examples",
    "fisher": "Fisher importance (Kwon et al.): mean over calibration examples of (dL(x)/d gate)^2",
    "loo_loss": "calibration loss increase when this head alone is gated off (leave-one-out)",
    "loo_accuracy": "calibration accuracy change when this head alone is gated off (leave-one-out)",
    "stability": "1 - mean over samples of JSD(attention profile || mean profile) / ln 2, in [0, 1]",
    "similarity": "maximum linear CKA of the head's context vectors with any other head",
    "most_similar": "the head (layer.head) with that maximum CKA",
    "entropy": "mean attention row entropy in nats",
    "distance": "mean attention distance in tokens",
    "to_cls/to_sep/to_self/to_prev/to_next/to_other": "mean attention profile: mass on [CLS], separators, itself, previous, next, other tokens",
    "role_<r>": "functional role r assigned: one-sided t-test of mean sieve score > tau, p < 0.05",
    "beta_<r>/p_<r>": "mean sieve score and p-value of role r",
    "align_all": "dependency alignment over all relations (better direction)",
    "umap_x/umap_y": "2-D map of heads from 1 - CKA (UMAP; t-SNE fallback)",
}


@dataclass(frozen=True)
class AnalysisParams:
    similarity_tokens: int = 4096
    role_sentences: int = 100
    alignment_sentences: int = 500
    tau: float = 3.0
    seed: int = 0
    leave_one_out: bool = True


@dataclass
class AnalysisBundle:
    """All per-head evidence of one (model, dataset); ``dataset`` is the calibration set
    (``calibration`` describes it), ``loo`` the leave-one-out ablation (None when skipped),
    ``signal`` each criterion's verdict of :mod:`pruning_core.criteria`; ``precision`` that of the
    evaluations behind leave-one-out (gradients and statistics are always fp32)."""

    model: str
    model_fingerprint: str
    data: str
    data_fingerprint: str
    num_layers: int
    num_heads: int
    params: AnalysisParams
    importance: Importance
    stability: np.ndarray
    similarity: Similarity
    attention: AttentionStats
    roles: Roles
    alignment: Alignment
    head_map: np.ndarray
    map_method: str
    timings: dict[str, float] = field(default_factory=dict)
    loo: LeaveOneOut | None = None
    signal: dict[str, Signal] = field(default_factory=dict)
    calibration: str = ""
    precision: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_layers, self.num_heads

    def present_mask(self) -> np.ndarray:
        """Heads physically present in the analysed model."""
        return np.isfinite(self.importance.normalized)

    def redundant_pairs(self, threshold: float | None = None) -> list[dict]:
        """Pairs of heads that are each other's (or one the other's) most similar head with CKA >=
        ``threshold`` (default: the 75th percentile of the heads' max CKA), strongest first."""
        if threshold is None:
            scores = self.similarity.score[np.isfinite(self.similarity.score)]
            threshold = float(np.quantile(scores, 0.75)) if scores.size else 1.0
        return redundant_pairs(self.similarity.cka, self.shape, threshold)

    def criteria(self) -> dict[str, np.ndarray]:
        """The per-head arrays (layers, heads) that can colour a grid or span a scatter axis."""
        result = {
            "importance": self.importance.normalized,
            "importance_display": self.importance.display(),
            "stability": self.stability,
            "similarity": self.similarity.score,
            "fisher": self.importance.fisher,
            "importance_stderr": self.importance.stderr,
            "entropy": self.attention.mean_entropy,
            "distance": self.attention.mean_distance,
            "align_all": self.alignment.best()[RELATIONS.index("all")],
        }
        if self.loo is not None:
            result["loo_loss"] = self.loo.loss
            result["loo_accuracy"] = self.loo.accuracy
        for index, role in enumerate(ROLES):
            result[f"beta_{role}"] = self.roles.mean[..., index]
        return result

    def scores_table(self) -> list[dict[str, Any]]:
        """One row per head (see :data:`COLUMNS_DOC`)."""
        rows = []
        profile = self.attention.mean_profile
        criteria = self.criteria()
        for layer in range(self.num_layers):
            for head in range(self.num_heads):
                flat = layer * self.num_heads + head
                partner = int(self.similarity.partner[layer, head])
                row: dict[str, Any] = {
                    "layer": layer,
                    "head": head,
                    "importance": _num(self.importance.normalized[layer, head]),
                    "importance_display": _num(criteria["importance_display"][layer, head]),
                    "importance_stderr": _num(self.importance.stderr[layer, head]),
                    "fisher": _num(self.importance.fisher[layer, head]),
                    "loo_loss": _num(self.loo.loss[layer, head]) if self.loo is not None else None,
                    "loo_accuracy": _num(self.loo.accuracy[layer, head]) if self.loo is not None else None,
                    "stability": _num(self.stability[layer, head]),
                    "similarity": _num(self.similarity.score[layer, head]),
                    "most_similar": f"{partner // self.num_heads}.{partner % self.num_heads}" if partner >= 0 else "",
                    "entropy": _num(self.attention.mean_entropy[layer, head]),
                    "distance": _num(self.attention.mean_distance[layer, head]),
                }
                for index, name in enumerate(PROFILE_NAMES):
                    row[f"to_{name}"] = _num(profile[layer, head, index])
                for index, role in enumerate(ROLES):
                    row[f"role_{role}"] = bool(self.roles.assigned[layer, head, index])
                    row[f"beta_{role}"] = _num(self.roles.mean[layer, head, index])
                    row[f"p_{role}"] = _num(self.roles.p[layer, head, index])
                row["align_all"] = _num(criteria["align_all"][layer, head])
                row["umap_x"] = _num(self.head_map[flat, 0])
                row["umap_y"] = _num(self.head_map[flat, 1])
                rows.append(row)
        return rows

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Top and bottom heads per criterion, role counts and Spearman correlations of the criteria."""
        from scipy.stats import spearmanr

        criteria = self.criteria()
        names = tuple(n for n in ("importance", "fisher", "loo_loss", "stability", "similarity") if n in criteria)
        ranked = {}
        for name in names:
            values = criteria[name].ravel()
            order = [int(i) for i in np.argsort(-np.nan_to_num(values, nan=-np.inf)) if np.isfinite(values[i])]
            label = [f"{i // self.num_heads}.{i % self.num_heads}" for i in order]
            ranked[name] = {"top": label[:top], "bottom": label[-top:][::-1]}
        correlations = {}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                x, y = criteria[a].ravel(), criteria[b].ravel()
                ok = np.isfinite(x) & np.isfinite(y)
                correlations[f"{a}~{b}"] = round(float(spearmanr(x[ok], y[ok]).statistic), 4) if ok.sum() > 2 else None
        return {
            "model": self.model,
            "data": self.data,
            "heads": self.num_layers * self.num_heads,
            "ranked": ranked,
            "role_counts": {role: int(self.roles.assigned[..., k].sum()) for k, role in enumerate(ROLES)},
            "spearman": correlations,
            "signal": {name: verdict.to_dict() for name, verdict in self.signal.items()},
            "calibration": self.calibration,
            "map_method": self.map_method,
            "timings": self.timings,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            **{f"importance_{k}": v for k, v in self.importance.arrays().items()},
            **({f"loo_{k}": v for k, v in self.loo.arrays().items()} if self.loo is not None else {}),
            "stability": self.stability,
            "cka": self.similarity.cka,
            "similarity_score": self.similarity.score,
            "similarity_partner": self.similarity.partner,
            "similarity_tokens": np.asarray(self.similarity.tokens),
            **{f"attention_{k}": v for k, v in self.attention.arrays().items()},
            "roles_mean": self.roles.mean,
            "roles_t": self.roles.t,
            "roles_p": self.roles.p,
            "roles_assigned": self.roles.assigned,
            "roles_sentences": np.asarray(self.roles.sentences),
            "alignment_accuracy": self.alignment.accuracy,
            "alignment_baseline": self.alignment.baseline,
            "alignment_baseline_offset": self.alignment.baseline_offset,
            "alignment_pairs": self.alignment.pairs,
            "head_map": self.head_map,
        }

    def meta(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "code_version": CODE_VERSION,
            "model": self.model,
            "model_fingerprint": self.model_fingerprint,
            "data": self.data,
            "data_fingerprint": self.data_fingerprint,
            "calibration": self.calibration,
            "precision": self.precision,
            "signal": {name: verdict.to_dict() for name, verdict in self.signal.items()},
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "params": asdict(self.params),
            "map_method": self.map_method,
            "roles": list(ROLES),
            "relations": list(RELATIONS),
            "profile": list(PROFILE_NAMES),
            "timings": self.timings,
            "columns": COLUMNS_DOC,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``bundle.json`` (metadata and column docs), ``scores.csv`` and ``arrays.npz``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / "arrays.npz", **self.arrays())
        rows = self.scores_table()
        with open(out / "scores.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (out / "bundle.json").write_text(json.dumps(self.meta(), indent=2) + "\n")
        return out


def _num(value: Any) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else round(value, 6)


def _from_parts(meta: dict[str, Any], a: dict[str, np.ndarray]) -> AnalysisBundle:
    return AnalysisBundle(
        model=meta["model"],
        model_fingerprint=meta["model_fingerprint"],
        data=meta["data"],
        data_fingerprint=meta["data_fingerprint"],
        num_layers=int(meta["num_layers"]),
        num_heads=int(meta["num_heads"]),
        params=AnalysisParams(**meta["params"]),
        importance=Importance(**{k: a[f"importance_{k}"] for k in ("raw", "normalized", "stderr", "fisher", "per_example", "tokens")}),
        stability=a["stability"],
        similarity=Similarity(a["cka"], a["similarity_score"], a["similarity_partner"], int(a["similarity_tokens"])),
        attention=AttentionStats(a["attention_profiles"], a["attention_entropy"], a["attention_distance"], a["attention_entropy_hist"]),
        roles=Roles(
            a["roles_mean"], a["roles_t"], a["roles_p"], a["roles_assigned"], float(meta["params"]["tau"]), int(a["roles_sentences"])
        ),
        alignment=Alignment(a["alignment_accuracy"], a["alignment_baseline"], a["alignment_baseline_offset"], a["alignment_pairs"]),
        head_map=a["head_map"],
        map_method=meta["map_method"],
        timings=meta.get("timings", {}),
        loo=LeaveOneOut.from_arrays({k[4:]: v for k, v in a.items() if k.startswith("loo_")}) if "loo_loss" in a else None,
        signal={name: Signal(**verdict) for name, verdict in meta.get("signal", {}).items()},
        calibration=meta.get("calibration", ""),
        precision=meta.get("precision", ""),
    )


def load_bundle(folder: str | Path) -> AnalysisBundle:
    """Open a folder written by :meth:`AnalysisBundle.save`."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "bundle.json").read_text())
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return _from_parts(meta, arrays)
    except (OSError, ValueError, KeyError) as exc:
        raise BhpvasError(
            f"{folder} is not a readable analysis bundle ({type(exc).__name__}: {exc}). Recompute it with `python -m pruning_core analyze`."
        ) from None


ATTENTION_TOKENS = 2048
"""Padded tokens per batch of the attention statistics; halved on out-of-memory (results do not depend on it)."""


def analyze(
    lm: LoadedModel,
    dataset: TextDataset,
    params: AnalysisParams = AnalysisParams(),
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    calibration: str = "",
) -> AnalysisBundle:
    """Compute (or reopen from the cache) every per-head evidence of ``lm`` on ``dataset``.

    ``dataset`` should be the calibration set (:mod:`pruning_core.calibration`); ``calibration``
    describes it (recorded in the bundle). Concurrent calls for the same model, data and
    parameters run once; the others wait for it.
    """
    cache = cache if cache is not None else DiskCache()
    with single_flight(f"analysis:{lm.fingerprint}:{lm.precision}:{dataset.fingerprint}:{params}"):
        return _analyze(lm, dataset, params, progress, cache, calibration or f"{dataset.name} ({len(dataset)} rows)")


def _analyze(
    lm: LoadedModel, dataset: TextDataset, params: AnalysisParams, progress: ProgressFn | None, cache: DiskCache, calibration: str
) -> AnalysisBundle:
    report = progress or no_progress
    timings: dict[str, float] = {}

    def timed(name: str, start: float, end: float, fn):
        began = time.perf_counter()
        value = fn(scaled(report, start, end))
        timings[name] = round(time.perf_counter() - began, 3)
        return value

    sampler = ContextSampler(lm, dataset, lm.present_mask(), params.similarity_tokens, params.seed)
    stats = timed(
        "attention_statistics",
        0.0,
        0.2,
        lambda p: halving_retry(
            lambda budget: attention_statistics(lm, dataset, progress=p, cache=cache, max_tokens=budget, sampler=sampler),
            ATTENTION_TOKENS,
            device=lm.device,
            what="the attention statistics",
        ),
    )
    importance = timed("importance", 0.2, 0.35, lambda p: head_importance(lm, dataset, progress=p, cache=cache))
    similarity = timed(
        "similarity",
        0.35,
        0.45,
        lambda p: head_similarity(lm, dataset, tokens=params.similarity_tokens, seed=params.seed, progress=p, cache=cache, sampler=sampler),
    )
    syntax = timed(
        "roles_alignment",
        0.45,
        0.65,
        lambda p: syntax_evidence(
            lm, dataset, params.role_sentences, params.alignment_sentences, params.tau, seed=params.seed, progress=p, cache=cache
        ),
    )
    loo = None
    if params.leave_one_out:
        loo = timed("leave_one_out", 0.65, 0.95, lambda p: leave_one_out(lm, dataset, progress=p, cache=cache))
    began = time.perf_counter()
    coords, method = _cached_map(similarity.cka, params.seed, cache)
    timings["head_map"] = round(time.perf_counter() - began, 3)
    report(1.0, "analysis ready")
    stability_values = stability(stats.profiles)
    return AnalysisBundle(
        model=lm.name,
        model_fingerprint=lm.fingerprint,
        data=dataset.name,
        data_fingerprint=dataset.fingerprint,
        num_layers=lm.num_layers,
        num_heads=lm.num_heads,
        params=params,
        importance=importance,
        stability=stability_values,
        similarity=similarity,
        attention=stats,
        roles=syntax.roles,
        alignment=syntax.alignment,
        head_map=coords,
        map_method=method,
        timings=timings,
        loo=loo,
        signal=_signal(importance, stability_values, similarity, loo),
        calibration=calibration,
        precision=lm.precision,
    )


def _signal(importance: Importance, stable: np.ndarray, similarity: Similarity, loo: LeaveOneOut | None) -> dict[str, Signal]:
    """Each criterion's signal verdict against leave-one-out damage (empty without leave-one-out)."""
    if loo is None:
        return {}
    criteria = {"importance": importance.normalized, "fisher": importance.fisher, "stability": stable, "similarity": similarity.score}
    return signal_report(criteria, loo.loss)


def _cached_map(cka: np.ndarray, seed: int, cache: DiskCache) -> tuple[np.ndarray, str]:
    key = cache_key("headmap", cka=hashlib.sha256(np.nan_to_num(cka, nan=-1.0).tobytes()).hexdigest(), seed=seed)
    return cached_part(
        cache,
        key,
        lambda: head_map(cka, seed),
        lambda result: ({"coords": result[0]}, {"method": result[1]}),
        lambda arrays, meta: (arrays["coords"], str(meta["method"])),
    )
