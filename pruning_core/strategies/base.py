"""The strategy interface: each strategy orders heads for pruning, or builds a scheme for a given K.

Adding a strategy is one file: subclass :class:`Strategy` and decorate it with :func:`register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..analysis import AnalysisBundle
from ..cache import DiskCache
from ..data import TextDataset
from ..loading import LoadedModel
from ..progress import ProgressFn, no_progress
from ..schemes import Scheme

Head = tuple[int, int]


@dataclass
class StrategyContext:
    """What a strategy may use: the model, the evaluation data, its analysis bundle, a cache and
    the calibration set (anything a strategy learns or recomputes comes from the calibration set;
    without one, from ``dataset``)."""

    lm: LoadedModel
    dataset: TextDataset
    bundle: AnalysisBundle
    cache: DiskCache = field(default_factory=DiskCache)
    progress: ProgressFn = no_progress
    calibration: TextDataset | None = None

    @property
    def calibration_set(self) -> TextDataset:
        return self.calibration if self.calibration is not None else self.dataset

    @property
    def shape(self) -> tuple[int, int]:
        return self.lm.shape

    def all_heads(self) -> list[Head]:
        layers, heads = self.shape
        return [(layer, head) for layer in range(layers) for head in range(heads)]


def by_importance(importance: np.ndarray, heads: list[Head]) -> list[Head]:
    """``heads`` sorted by ascending importance (ties: lower layer, then lower head first)."""
    return sorted(heads, key=lambda h: (np.nan_to_num(importance[h], nan=np.inf), h))


class Strategy(ABC):
    """A pruning strategy. ``order`` lists every head, first to be pruned first."""

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    exact_k: ClassVar[bool] = False
    version: ClassVar[int] = 1
    """Raised when the order the strategy computes changes: part of the curves' cache key, so a
    cached (or shipped) curve of an older version is not reused."""

    @abstractmethod
    def order(self, ctx: StrategyContext) -> list[Head]: ...

    def scheme(self, ctx: StrategyContext, k: int) -> Scheme:
        """The scheme pruning the first ``k`` heads of :meth:`order`."""
        layers, heads = ctx.shape
        return Scheme(layers, heads, frozenset(self.order(ctx)[:k]), model=ctx.lm.name, name=f"{self.name}@{k}")


REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    REGISTRY[cls.name] = cls
    return cls
