"""Calibration and evaluation sets (SPEC section 3).

Scores, orders and anything learned (importance, Fisher, leave-one-out, Michel's recomputation,
DSP) come from the calibration set; curves, knees and scheme metrics from the evaluation set, so
that no number that ranks heads is also the number that judges the ranking.

Defaults: for the bundled SST-2 dev set, 2,000 sentences of the bundled train split drawn with a
fixed seed; for any other data, the data itself unless a calibration file/dataset or a held-out
fraction is given (a held-out fraction is removed from the evaluation set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import TextDataset, load_dataset
from .errors import DataError

DEFAULT_CALIBRATION_ROWS = 2000
MEASURED_ROWS = 500
BUNDLED_EVALUATION = "sst2:dev"
BUNDLED_CALIBRATION = "sst2:train"


@dataclass(frozen=True)
class DataSets:
    """The calibration and evaluation sets, and a sentence describing each (shown with every number)."""

    calibration: TextDataset
    evaluation: TextDataset
    calibration_description: str
    evaluation_description: str

    def describe(self) -> dict[str, str]:
        return {"calibration": self.calibration_description, "evaluation": self.evaluation_description}


def _sampled(dataset: TextDataset, rows: int, seed: int) -> tuple[TextDataset, str]:
    if len(dataset) <= rows:
        return dataset, f"{dataset.name} ({len(dataset)} rows)"
    indices = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:rows])
    name = f"{dataset.name}[{rows} sampled, seed {seed}]"
    return dataset.subset(indices, name=name), f"{dataset.name}: {rows} of {len(dataset)} rows sampled (seed {seed})"


def measured_subset(calibration: TextDataset, rows: int = MEASURED_ROWS, seed: int = 0) -> TextDataset:
    """The rows of the calibration set used where every candidate costs a full evaluation
    (leave-one-out: one per head; the composite's weight search): at most ``rows``, drawn with
    ``seed``, so that these criteria stay affordable on a CPU."""
    return _sampled(calibration, rows, seed)[0]


def data_sets(
    source: str,
    data: TextDataset,
    calibration: str | TextDataset | None = None,
    fraction: float | None = None,
    rows: int = DEFAULT_CALIBRATION_ROWS,
    seed: int = 0,
) -> DataSets:
    """Calibration and evaluation sets for evaluation data ``data`` loaded from ``source``.

    ``calibration``: a dataset, a file, or ``sst2:train`` (then ``rows`` rows sampled with
    ``seed``); ``fraction``: hold out this share of ``data`` (drawn with ``seed``) to calibrate
    and evaluate on the rest. Without either, the bundled SST-2 dev set calibrates on ``rows``
    sampled train sentences and any other data calibrates on itself.
    """
    if calibration is not None and fraction is not None:
        raise DataError("Give a calibration set or a held-out fraction, not both.")
    evaluation_description = f"{data.name} ({len(data)} rows)"
    if fraction is not None:
        if not 0 < fraction < 1:
            raise DataError(f"The calibration fraction must be between 0 and 1 (exclusive), not {fraction}.")
        count = int(round(fraction * len(data)))
        if count < 1 or count >= len(data):
            raise DataError(f"A fraction of {fraction} of {len(data)} rows leaves no calibration or no evaluation rows.")
        order = np.random.default_rng(seed).permutation(len(data))
        held, rest = np.sort(order[:count]), np.sort(order[count:])
        cal = data.subset(held, name=f"{data.name}[calibration {count}, seed {seed}]")
        ev = data.subset(rest, name=f"{data.name}[evaluation {len(rest)}, seed {seed}]")
        return DataSets(
            cal,
            ev,
            f"{data.name}: {count} of {len(data)} rows held out (seed {seed})",
            f"{data.name}: the other {len(rest)} rows",
        )
    if calibration is None:
        if str(source).strip().lower() not in ("sst2", BUNDLED_EVALUATION):
            return DataSets(data, data, f"the evaluation data itself: {evaluation_description}", evaluation_description)
        calibration = BUNDLED_CALIBRATION
    if isinstance(calibration, str):
        loaded = load_dataset(calibration)
        if calibration.strip().lower() == BUNDLED_CALIBRATION:
            cal, description = _sampled(loaded, rows, seed)
        else:
            cal, description = loaded, f"{loaded.name} ({len(loaded)} rows)"
    else:
        cal, description = calibration, f"{calibration.name} ({len(calibration)} rows)"
    return DataSets(cal, data, description, evaluation_description)


def calibration_split(
    source: str,
    data: TextDataset,
    calibration: str | TextDataset | None = None,
    fraction: float | None = None,
    rows: int = DEFAULT_CALIBRATION_ROWS,
    seed: int = 0,
) -> tuple[TextDataset, str]:
    """The calibration set of :func:`data_sets` and its description (the evaluation set is
    ``data`` except with ``fraction``; use :func:`data_sets` to get both)."""
    sets = data_sets(source, data, calibration, fraction, rows, seed)
    return sets.calibration, sets.calibration_description
