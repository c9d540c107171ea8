"""The Scheme page's repair step: refit the current scheme's kept heads on the calibration set
(:func:`pruning_core.repair.repair_scheme`, no training) and compare masked, repaired and (after the
recovery step of :mod:`app.recovery_panel`) recovered accuracy on the evaluation set, each with its
95% interval and McNemar p against the full model."""

from __future__ import annotations

import streamlit as st

from app.context import Context, rerun_after
from app.recovery_panel import recovery_section
from app.repaired import SchemeRepair, change_against_full, current_repair, repair_key, store_repair
from app.resources import progress_bar, queued_job
from app.sidebar import change_text
from app.views.table import visualize_table
from pruning_core.evaluation import evaluate
from pruning_core.repair import repair_scheme, repaired_pruned


def repaired_record(ctx: Context) -> SchemeRepair:
    """Repair the current scheme on the calibration set and evaluate the repaired, physically pruned
    model (the model that is saved and recovered) on the evaluation set, through the job gate."""
    with queued_job("Repair"), progress_bar("Repairing the kept heads on the calibration set") as report:
        repair = repair_scheme(ctx.lm, ctx.scheme, ctx.sets.calibration, progress=report)
        result = evaluate(repaired_pruned(ctx.lm, repair), ctx.dataset, progress=report)
    return SchemeRepair(repair_key(ctx), repair, result)


def repair_rows(ctx: Context, record: SchemeRepair) -> list[dict]:
    """Accuracy of the full, masked, repaired and recovered models on the evaluation set; the changes against the full model."""
    full, masked = ctx.full(), ctx.current()
    rows = [{"model": "full", "accuracy": f"{full.accuracy:.2%}", "change against the full model": "—"}]
    for name, result in (("masked", masked), *((f"masked + {done}", result) for done, result in record.treated())):
        rows.append(
            {
                "model": name,
                "accuracy": f"{result.accuracy:.2%}",
                "change against the full model": change_text(change_against_full(ctx, result)),
            }
        )
    return rows


def repair_section(ctx: Context) -> None:
    """The Repair button and, once run for this scheme, masked vs repaired (and recovered) accuracy
    with intervals, then the recovery step."""
    st.subheader("Repair", anchor=False)
    st.caption(
        "Refit, layer by layer, the kept heads' attention output projection and the feed-forward output projection "
        "so that every layer's output matches the full model's on the calibration set (least squares, no training); "
        "accuracy is measured on the evaluation set."
    )
    if not ctx.scheme.pruned:
        st.caption("Prune some heads first.")
        return
    if st.button("Repair the current scheme", key="scheme-repair", icon=":material/build:"):
        rerun_after(lambda: store_repair(repaired_record(ctx)))
    record = current_repair(ctx)
    if record is None:
        return
    visualize_table(repair_rows(ctx, record))
    st.text(ctx.provenance(scores=False) + "; repair fitted on the calibration set — " + ctx.sets.calibration_description)
    recovery_section(ctx, record)
