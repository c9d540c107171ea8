"""The Scheme page's repair step: refit the current scheme's kept heads on the calibration set
(:func:`pruning_core.repair.repair_scheme`, no training) and compare masked and repaired accuracy on
the evaluation set, each with its 95% interval and McNemar p against the full model."""

from __future__ import annotations

import streamlit as st

from app.context import Context, show_error
from app.resources import progress_bar, queued_job
from app.sidebar import change_text
from app.views.table import visualize_table
from pruning_core import BhpvasError
from pruning_core.evaluation import EvalResult, evaluate
from pruning_core.repair import repair_scheme, repaired_masked
from pruning_core.stats import change_from_predictions

REPAIRED = "scheme-repaired"


def repaired_evaluation(ctx: Context) -> EvalResult:
    """Repair the current scheme on the calibration set and evaluate the repaired model (gated by
    the scheme) on the evaluation set, through the job gate."""
    with queued_job("Repair"), progress_bar("Repairing the kept heads on the calibration set") as report:
        repair = repair_scheme(ctx.lm, ctx.scheme, ctx.sets.calibration, progress=report)
        return evaluate(repaired_masked(ctx.lm, repair), ctx.dataset, ctx.scheme, progress=report)


def repair_rows(ctx: Context, repaired: EvalResult) -> list[dict]:
    """Accuracy of the full, masked and repaired models on the evaluation set; the changes against the full model."""
    full, masked = ctx.full(), ctx.current()
    rows = [{"model": "full", "accuracy": f"{full.accuracy:.2%}", "change against the full model": "—"}]
    for name, result in (("masked", masked), ("masked + repair", repaired)):
        change = change_from_predictions(full.labels, full.preds, result.preds)
        rows.append({"model": name, "accuracy": f"{result.accuracy:.2%}", "change against the full model": change_text(change)})
    return rows


def repair_section(ctx: Context) -> None:
    """The Repair button and, once run for this scheme, masked vs repaired accuracy with intervals."""
    st.subheader("Repair", anchor=False)
    st.caption(
        "Refit the kept heads' output projections so that every layer's attention output matches the full model's "
        "on the calibration set (least squares, no training); accuracy is measured on the evaluation set."
    )
    if not ctx.scheme.pruned:
        st.caption("Prune some heads first.")
        return
    key = (ctx.lm.fingerprint, ctx.sets.calibration.fingerprint, ctx.dataset.fingerprint, ctx.scheme.key())
    if st.button("Repair the current scheme", key="scheme-repair", icon=":material/build:"):
        try:
            st.session_state[REPAIRED] = (key, repaired_evaluation(ctx))
        except BhpvasError as exc:
            show_error(exc)
            return
    stored = st.session_state.get(REPAIRED)
    if stored and stored[0] == key:
        visualize_table(repair_rows(ctx, stored[1]))
        st.text(ctx.provenance(scores=False) + "; repair fitted on the calibration set — " + ctx.sets.calibration_description)
