"""What this session did to the current scheme beyond masking: its repair and, after that, its
recovery fine-tune. One record is kept per session (the last scheme repaired), keyed by the model,
the calibration and evaluation sets and the scheme, so the sidebar, the comparison and the real
pruning of the Scheme page show it only while that scheme is current."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app.context import Context
from pruning_core.evaluation import EvalResult
from pruning_core.recovery import Compensation, RecoveryParams
from pruning_core.repair import Repair
from pruning_core.stats import Change, change_from_predictions

REPAIRED = "scheme-repaired"


@dataclass
class Recovered:
    """A recovery run of the repaired model: its settings and summary, and once it finished, the
    recovered model's evaluation and the kept heads' compensation (``None`` while it is stopped part-way)."""

    params: RecoveryParams
    summary: dict
    completed: bool
    result: EvalResult | None = None
    compensation: Compensation | None = None


@dataclass
class SchemeRepair:
    """The repair of one scheme, the repaired (physically pruned) model's evaluation, and its recovery."""

    key: tuple[str, ...]
    repair: Repair
    result: EvalResult
    recovery: Recovered | None = None

    @property
    def recovered(self) -> EvalResult | None:
        """The recovered model's evaluation when a recovery finished."""
        return self.recovery.result if self.recovery is not None and self.recovery.completed else None

    def treated(self) -> list[tuple[str, EvalResult]]:
        """(what was done, evaluation): ``repair`` and, when recovered, ``repair + recovery``."""
        rows = [("repair", self.result)]
        if (recovered := self.recovered) is not None:
            rows.append(("repair + recovery", recovered))
        return rows


def repair_key(ctx: Context) -> tuple[str, ...]:
    """What a repair depends on: the model, the calibration and evaluation sets, and the scheme."""
    return ctx.lm.fingerprint, ctx.sets.calibration.fingerprint, ctx.dataset.fingerprint, ctx.scheme.key()


def current_repair(ctx: Context) -> SchemeRepair | None:
    """The session's repair of the current scheme, if it made one."""
    record = st.session_state.get(REPAIRED)
    return record if isinstance(record, SchemeRepair) and record.key == repair_key(ctx) else None


def store_repair(record: SchemeRepair) -> None:
    st.session_state[REPAIRED] = record


def change_against_full(ctx: Context, result: EvalResult) -> Change:
    """A treated model's accuracy change against the full model on the evaluation set (95% interval, McNemar p)."""
    full = ctx.full()
    return change_from_predictions(full.labels, full.preds, result.preds)
