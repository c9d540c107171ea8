"""The Scheme page's recovery step, after repair: distil the repaired, physically pruned model from the
full model on the calibration set (:func:`pruning_core.recovery.recover`), then show the recovered
accuracy (in the repair table) and the kept heads' compensation.

Cancelling: Streamlit hands a running script a rerun request (any click, such as the Stop button)
or a stop request (the tab closed) at the script's next page update, as an exception.
:class:`Interruption` catches it at recovery's progress update, which makes recovery's ``cancel``
true: recovery checkpoints before its next step and returns, and the request is then passed on, so
Streamlit carries it out. Pressing Recover again with the same number of steps resumes from the
checkpoint (the core keeps it in the result cache).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, StopException

from app.context import Context, rerun_after
from app.repaired import Recovered, SchemeRepair
from app.resources import progress_bar, queued_job
from app.views.compensation import visualize_compensation
from pruning_core.evaluation import evaluate
from pruning_core.recovery import RecoveryParams, compensation, recover
from pruning_core.repair import repaired_pruned

DEFAULT_STEPS = 30
STEPS_KEY = "scheme-recover-steps"


class Interruption:
    """A progress callback that turns Streamlit's rerun or stop request into recovery's cancel flag."""

    def __init__(self, report: Callable[[float, str], None]) -> None:
        self._report = report
        self.request: RerunException | StopException | None = None

    def report(self, fraction: float, message: str) -> None:
        """Show progress; a rerun or stop request raised by the page update is kept, not raised."""
        if self.request is not None:
            return
        try:
            self._report(fraction, message)
        except (RerunException, StopException) as request:
            self.request = request

    def cancelled(self) -> bool:
        return self.request is not None

    def pass_on(self) -> None:
        """Raise the kept request, so Streamlit reruns or stops as it was asked to."""
        if self.request is not None:
            raise self.request


def run_recovery(ctx: Context, record: SchemeRepair, params: RecoveryParams) -> None:
    """Recover the repaired model (through the job gate), store the run in ``record``; once finished,
    evaluate the recovered model and compute the compensation."""
    stop = st.empty()
    stop.button("Stop (keeps a checkpoint)", key="scheme-recover-stop", icon=":material/stop_circle:")
    calibration = ctx.sets.calibration
    try:
        with queued_job("Recovery"), progress_bar("Recovery fine-tune on the calibration set") as report:
            watch = Interruption(report)
            student = repaired_pruned(ctx.lm, record.repair)
            outcome = recover(student, ctx.lm, calibration, params, progress=watch.report, cancel=watch.cancelled)
            summary = {**outcome.summary(), "calibration_fingerprint": calibration.fingerprint}
            record.recovery = Recovered(params, summary, outcome.completed)
            watch.pass_on()
            if outcome.completed:
                result = evaluate(outcome.model, ctx.dataset, progress=report)
                report(1.0, "importance of the kept heads before and after recovery")
                record.recovery.compensation = compensation(student, outcome.model, calibration)
                record.recovery.result = result
    finally:
        stop.empty()


def recovery_text(recovered: Recovered) -> str:
    """How the last recovery run went, in one sentence."""
    summary = recovered.summary
    if not recovered.completed:
        return (
            f"Stopped after {summary['steps_done']} of {summary['steps']} steps; the checkpoint is kept: "
            f"Recover with {summary['steps']} steps resumes from it."
        )
    resumed = f", resumed from step {summary['resumed_from']}" if summary["resumed_from"] else ""
    unfinished = "" if recovered.result is not None else " Its evaluation was interrupted: Recover again reuses the recovered weights."
    return (
        f"Recovered: {summary['steps_done']} steps of {summary['batch_size']} sentences, loss {summary['first_loss']} → "
        f"{summary['last_loss']}, {summary['seconds']} s{resumed}; calibration set — {summary['data']}.{unfinished}"
    )


def recovery_section(ctx: Context, record: SchemeRepair) -> None:
    """The steps setting, the Recover button, how the last run went, and the compensation view."""
    st.markdown("**Recover (fine-tune)**")
    st.caption(
        "Distil the repaired, pruned model from the full model on the calibration set (KL divergence of the softened class "
        "probabilities). Any click while it runs (such as Stop) ends it after the current step and keeps a checkpoint; "
        "Recover with the same number of steps resumes from it."
    )
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    steps = left.number_input(
        "Recovery steps",
        min_value=1,
        max_value=10_000,
        value=DEFAULT_STEPS,
        step=10,
        key=STEPS_KEY,
        help=f"Optimiser steps, each on {RecoveryParams().batch_size} calibration sentences.",
    )
    if right.button("Recover (fine-tune)", key="scheme-recover", icon=":material/model_training:"):
        rerun_after(lambda: run_recovery(ctx, record, RecoveryParams(steps=int(steps))))
    if record.recovery is None:
        return
    st.text(recovery_text(record.recovery))
    if record.recovery.compensation is not None:
        st.markdown("**Compensation**: how the kept heads' importance changed during recovery")
        visualize_compensation(record.recovery.compensation, key="scheme-compensation")
