"""Conditional redundancy (SPEC section 3): a head is redundant only while a head that stays
resembles it.

Its redundancy under a keep-mask is its maximum linear CKA with another head that is kept. As
heads are removed the kept set shrinks and the redundancy of the rest is recomputed, so when two
heads resemble only each other, removing one makes the other non-redundant: similarity alone never
removes both members of a redundant pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

Head = tuple[int, int]


def conditional_redundancy(cka: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each head's maximum CKA with a kept head other than itself, and that head's flat index.

    ``cka`` is the (L*H, L*H) matrix (NaN for absent heads), ``keep`` the (L, H) keep-mask.
    Heads with no kept partner get redundancy 0 and partner -1.
    """
    shape = keep.shape
    values = np.nan_to_num(np.asarray(cka, dtype=np.float64), nan=-np.inf).copy()
    np.fill_diagonal(values, -np.inf)
    values[:, ~keep.ravel()] = -np.inf
    partner = values.argmax(1)
    score = values.max(1)
    none = ~np.isfinite(score)
    return np.where(none, 0.0, score).reshape(shape), np.where(none, -1, partner).reshape(shape)


def prune_in_order(
    candidates: Iterable[Head],
    cka: np.ndarray,
    keep: np.ndarray,
    threshold: float,
    otherwise: Callable[[Head], bool] | None = None,
    logic: str = "or",
) -> list[Head]:
    """Walk ``candidates`` in order and remove each head that qualifies, given the heads still kept.

    A head qualifies on redundancy when its max CKA with a head still kept is >= ``threshold``;
    ``otherwise`` is the other test (e.g. stability) combined with ``logic`` ("or"/"and"); without
    it redundancy alone decides. Returns the removed heads in removal order.
    """
    kept = keep.copy()
    flat_cka = np.nan_to_num(np.asarray(cka, dtype=np.float64), nan=-np.inf)
    width = keep.shape[1]
    removed: list[Head] = []
    for head in candidates:
        index = head[0] * width + head[1]
        row = np.where(kept.ravel(), flat_cka[index], -np.inf)
        row[index] = -np.inf
        redundant = bool(row.max() >= threshold) if row.size else False
        if otherwise is None:
            qualifies = redundant
        else:
            other = otherwise(head)
            qualifies = (redundant and other) if logic == "and" else (redundant or other)
        if qualifies:
            kept[head] = False
            removed.append(head)
    return removed


def redundant_pairs(cka: np.ndarray, shape: tuple[int, int], threshold: float) -> list[dict]:
    """Pairs of heads where one is the other's most similar head and CKA >= ``threshold``.

    One entry per pair (strongest first): ``a`` and ``b`` as (layer, head), ``cka`` and
    ``mutual`` (each is the other's most similar head). Plain data, for the head map.
    """
    values = np.nan_to_num(np.asarray(cka, dtype=np.float64), nan=-np.inf).copy()
    np.fill_diagonal(values, -np.inf)
    best = values.argmax(1)
    width = shape[1]
    pairs: dict[tuple[int, int], dict] = {}
    for i, j in enumerate(best):
        if not np.isfinite(values[i, j]) or values[i, j] < threshold:
            continue
        a, b = sorted((int(i), int(j)))
        pairs[(a, b)] = {
            "a": (a // width, a % width),
            "b": (b // width, b % width),
            "cka": float(values[a, b]),
            "mutual": bool(best[a] == b and best[b] == a),
        }
    return sorted(pairs.values(), key=lambda p: -p["cka"])
