"""Repair-aware selection: choose heads knowing that :mod:`pruning_core.repair` will refit the
output projections afterwards (ZipLM / optimal-brain-surgeon style, from the same Gram matrices).

For a layer whose kept heads are S, the repair leaves the residual
``E(S) = min_P ||X~_S P - Y||^2`` of the full model's attention output ``Y`` regressed on the
kept context vectors (plus a constant for the bias); it follows in closed form from the layer's
Gram matrix ``X~^T X~`` of the full model's context vectors on the calibration set. Greedily, the
head removed next is the one with the smallest expected damage after repair,

    D_h = I_h * sqrt( (E(S \\ h) - E(S)) / ||X_h W_h^T||^2 ),

its importance (Michel et al., on the calibration set, layer-normalised) scaled by the share of its
output the other kept heads of its layer cannot rebuild. Only the layer that lost a head is
rescored. Every head costs the same MACs (SPEC formula), so a MAC budget is a head budget.
"""

from __future__ import annotations

import numpy as np

from ..data import TextDataset
from ..repair import calibration_for, context_grams
from ..scores import head_importance
from .base import Head, Strategy, StrategyContext, register


def residual_energy(gram: np.ndarray, target: np.ndarray, columns: np.ndarray, ridge: float = 1e-6) -> float:
    """||X~_S P* - X~ T||^2 for the best P* (ridge-stabilised), from ``gram`` = X~^T X~.

    ``target`` is T (all columns of X~ to the layer's outputs); ``columns`` indexes S in X~.
    """
    energy = float(np.sum(target * (gram @ target)))
    if len(columns) == 0:
        return energy
    sub = gram[np.ix_(columns, columns)]
    cross = gram[columns] @ target
    lam = ridge * max(float(np.mean(np.diag(sub))), 1e-12)
    solved = np.linalg.solve(sub + lam * np.eye(len(columns)), cross)
    return max(energy - float(np.sum(cross * solved)), 0.0)


def repair_aware_order(
    grams: list[np.ndarray],
    projections: list[tuple[np.ndarray, np.ndarray]],
    importance: np.ndarray,
    head_dim: int,
) -> list[Head]:
    """Every head, first to be pruned first, by greedy minimum damage after repair.

    ``grams[l]`` is layer l's X~^T X~ over all its heads' context vectors plus a constant-1 column
    (last); ``projections[l]`` its output projection (weight, bias); ``importance`` (layers, heads).
    """
    layers, heads = importance.shape
    kept = [list(range(heads)) for _ in range(layers)]
    targets, own, current = [], [], []
    for layer in range(layers):
        weight, bias = projections[layer]
        target = np.concatenate([weight.T, bias[None, :]]).astype(np.float64)
        targets.append(target)
        own.append([_output_energy(grams[layer], target, _cols([h], head_dim)) for h in range(heads)])
        current.append(residual_energy(grams[layer], target, _with_bias(kept[layer], head_dim, heads)))
    scores = np.full((layers, heads), np.inf)

    def rescore(layer: int) -> None:
        scores[layer] = np.inf
        for h in kept[layer]:
            rest = [k for k in kept[layer] if k != h]
            loss = residual_energy(grams[layer], targets[layer], _with_bias(rest, head_dim, heads)) - current[layer]
            share = np.sqrt(max(loss, 0.0) / max(own[layer][h], 1e-30))
            scores[layer, h] = np.nan_to_num(importance[layer, h], nan=0.0) * share

    for layer in range(layers):
        rescore(layer)
    order: list[Head] = []
    for _ in range(layers * heads):
        layer, head = np.unravel_index(int(np.argmin(np.where(np.isfinite(scores), scores, np.inf))), scores.shape)
        layer, head = int(layer), int(head)
        order.append((layer, head))
        kept[layer].remove(head)
        current[layer] = residual_energy(grams[layer], targets[layer], _with_bias(kept[layer], head_dim, heads))
        rescore(layer)
    return order


def _output_energy(gram: np.ndarray, target: np.ndarray, columns: np.ndarray) -> float:
    """||X_h W_h^T||^2: the energy of one head's own contribution to the layer's output."""
    part = target[columns]
    return float(np.sum(part * (gram[np.ix_(columns, columns)] @ part)))


def _cols(heads: list[int], head_dim: int) -> np.ndarray:
    return np.asarray([h * head_dim + j for h in heads for j in range(head_dim)], dtype=int)


def _with_bias(heads: list[int], head_dim: int, total_heads: int) -> np.ndarray:
    return np.concatenate([_cols(sorted(heads), head_dim), [total_heads * head_dim]]).astype(int)


@register
class RepairAware(Strategy):
    name = "repair-aware"
    label = "Repair-aware (greedy)"
    description = (
        "Greedy: next the head whose removal the least-squares repair of its layer compensates best, weighted by its importance; "
        "evaluate it with the repair."
    )

    def __init__(self, calibration: TextDataset | None = None):
        self.calibration = calibration

    def order(self, ctx: StrategyContext) -> list[Head]:
        lm = ctx.lm
        if lm.is_pruned:
            raise ValueError("Repair-aware selection needs the unpruned model.")
        calibration = self.calibration if self.calibration is not None else calibration_for(ctx.dataset)
        ctx.progress(0.0, "repair-aware: calibration Gram matrices")
        grams = context_grams(lm, calibration, cache=ctx.cache)
        ctx.progress(0.3, "repair-aware: importance on the calibration set")
        importance = head_importance(lm, calibration, cache=ctx.cache).normalized
        projections = []
        for layer in lm.adapter.layers(lm.model):
            out_proj = lm.adapter.out_proj(layer)
            weight = out_proj.weight.detach().cpu().double().numpy()
            bias = out_proj.bias.detach().cpu().double().numpy() if out_proj.bias is not None else np.zeros(weight.shape[0])
            projections.append((weight, bias))
        ctx.progress(0.6, "repair-aware: greedy selection")
        return repair_aware_order(grams, projections, importance, lm.head_dim)
