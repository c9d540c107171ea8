"""Scheme & export: what do I ship?

The current scheme (A) on the grid with click-to-toggle, a second scheme (B) side by side with its
metrics and a Pareto view, scheme JSON export/import, and the real-pruning step with a size and
latency report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from app.context import Context, page_bundle, page_context, show_error
from app.keys import Head, all_heads, head_label, heads_key, heads_text, parse_heads
from app.plain import code_span
from app.repair_panel import repair_section
from app.repaired import SchemeRepair, current_repair
from app.resources import known_curves, progress_bar, queued_job
from app.sidebar import rerun_scheme_views
from app.state import B_CUSTOM, B_FULL, B_SOURCES, SCHEME, SCHEME_B, SCHEME_B_SOURCE, SCHEME_B_TEXT, current_rule, set_scheme, set_scheme_b
from app.views.figure import show_figure
from app.views.head_grid import grid_figure, kept_figure, visualize_head_grid
from app.views.pareto import Line, pareto_figure
from app.views.pruning_report import visualize_pruning_report
from app.views.table import visualize_table
from pruning_core import BhpvasError
from pruning_core.analysis import AnalysisBundle
from pruning_core.efficiency import scheme_macs
from pruning_core.outputs import folder_downloads, new_run_folder
from pruning_core.progress import ProgressFn
from pruning_core.proposal import proposed_heads
from pruning_core.recovery import RecoveryParams, recover
from pruning_core.repair import repair_and_prune
from pruning_core.report import pruning_report
from pruning_core.schemes import Scheme

MACS_LENGTH = 128
PRUNE_RESULT = "prune_result"
CURRENT_SECTION = "scheme-section-current"
COMPARE_SECTION = "scheme-section-compare"
REPAIR_SECTION = "scheme-section-repair"
PRUNE_SECTION = "scheme-section-prune"
SECTIONS = (CURRENT_SECTION, COMPARE_SECTION, REPAIR_SECTION, PRUNE_SECTION)


def changed_scheme(heads: set[Head] | Scheme) -> None:
    """Callback: make ``heads`` the current scheme; only the page's sections and the sidebar's panels rerun."""
    set_scheme(heads)
    rerun_scheme_views(*SECTIONS)


def toggle_heads(shape: tuple[int, int], heads: list[Head]) -> None:
    """Click on the scheme grid: flip the clicked head between kept and pruned."""
    if len(heads) == 1:
        changed_scheme(parse_heads(st.session_state[SCHEME], *shape) ^ set(heads))


def swap(shape: tuple[int, int], heads_b: set[Head]) -> None:
    """B becomes the current scheme and the old current scheme becomes a custom B."""
    set_scheme_b(parse_heads(st.session_state[SCHEME], *shape))
    changed_scheme(heads_b)


def scheme_grid(ctx: Context, bundle: AnalysisBundle, pruned: set[Head], colour: str):
    keep = ctx.scheme_of(pruned).keep_mask()
    if colour == "pruned / kept":
        return kept_figure(~keep)
    return grid_figure(bundle.importance.display(), value_name="importance", pruned=~keep)


def scheme_row(ctx: Context, name: str, pruned: set[Head]) -> dict:
    """Metrics of one scheme for the comparison table and the Pareto chart."""
    result = ctx.evaluate(pruned)
    macs, share = scheme_macs(ctx.lm, MACS_LENGTH, pruned)
    return {
        "scheme": name,
        "heads kept": ctx.shape[0] * ctx.shape[1] - len(pruned),
        "accuracy": result.accuracy,
        "loss": result.loss,
        "agreement": result.agreement,
        "flipped": int(len(result.flipped)),
        f"GMACs @{MACS_LENGTH}": macs / 1e9,
        "MACs %": share,
        "_preds": result.preds,
    }


def curve_lines(ctx: Context, x_name: str) -> list[Line]:
    """The pruning-process curves (when computed) as (label, x, accuracy) lines for the Pareto chart,
    with each "+ repair" curve (labelled "<strategy> + repair") when they were computed."""
    from pruning_core.repair_curves import repaired_curves

    curves = known_curves(ctx.lm, ctx.sets)
    if curves is None:
        return []
    total = ctx.shape[0] * ctx.shape[1]
    lines = []
    for curve in [*curves.curves.values(), *repaired_curves(curves).values()]:
        if x_name == "heads kept":
            xs = [float(total - k) for k in curve.ks]
        else:
            xs = [scheme_macs(ctx.lm, MACS_LENGTH, curve.pruned_at(k))[1] for k in curve.ks]
        lines.append((curve.label, xs, [float(v) for v in curve.mean()]))
    return lines


@st.fragment(key=CURRENT_SECTION)
def section_current() -> None:
    ctx = page_context()
    bundle = page_bundle(ctx)
    st.subheader("Current scheme (A)", anchor=False)
    grid_col, side_col = st.columns([3, 2], gap="large")
    with side_col:
        colour = st.segmented_control("Colour", ["pruned / kept", "importance"], default="pruned / kept", key="scheme-colour")
        picked = st.multiselect(
            "Pruned heads",
            all_heads(*ctx.shape),
            default=sorted(ctx.scheme.pruned),
            format_func=head_label,
            key=f"scheme-heads-{ctx.scheme.key()}",
            help="The same scheme as on the grid; type layer.head to add a head by keyboard.",
        )
        if set(picked) != ctx.scheme.pruned:
            set_scheme(picked)
            st.rerun()
        st.download_button(
            "Export scheme JSON",
            data=ctx.scheme_of(ctx.scheme.pruned).to_json(),
            file_name=f"scheme-{len(ctx.scheme.pruned)}-heads.json",
            mime="application/json",
            key="scheme-export",
            icon=":material/download:",
            on_click="ignore",
        )
        import_scheme(ctx)
    with grid_col:
        fig = scheme_grid(ctx, bundle, set(ctx.scheme.pruned), colour or "pruned / kept")
        visualize_head_grid(
            fig, key="scheme-grid", name="scheme-grid", on_heads=lambda heads: toggle_heads(ctx.shape, heads), selection_mode="points"
        )
        st.caption("Click a head to toggle it between kept and pruned; the sidebar metrics follow.")


def import_scheme(ctx: Context) -> None:
    upload = st.file_uploader("Import scheme JSON", type=["json"], key="scheme-import")
    if upload is None:
        return
    try:
        scheme = Scheme.from_json(upload.getvalue())
        scheme.check_fits(*ctx.shape)
    except BhpvasError as exc:
        show_error(exc)
        return
    note = f"{code_span(upload.name)}: {heads_text(len(scheme.pruned))}" + (f", made for {code_span(scheme.model)}" if scheme.model else "")
    if scheme.model and scheme.model != ctx.model_source:
        st.warning(f"{note}; the loaded model is {code_span(ctx.model_source)} (same shape, so it can be applied).")
    else:
        st.caption(note)
    left, right = st.columns(2)
    if left.button("Use as current (A)", key="scheme-import-a", disabled=scheme.pruned == ctx.scheme.pruned):
        set_scheme(scheme)
        st.rerun()
    if right.button("Use as B", key="scheme-import-b"):
        set_scheme_b(scheme.pruned)
        st.rerun()


def scheme_b(ctx: Context, bundle: AnalysisBundle) -> tuple[str, set[Head]]:
    """The second scheme: the sidebar's proposal, the full model, or custom heads."""
    ss = st.session_state
    source = st.segmented_control("Scheme B", B_SOURCES, key=SCHEME_B_SOURCE)
    if source == B_FULL:
        return "full model", set()
    if source == B_CUSTOM:
        if SCHEME_B_TEXT not in ss:
            ss[SCHEME_B_TEXT] = ss.get(SCHEME_B) or "none"
        text = st.text_input("Heads of B (layer.head, comma-separated)", key=SCHEME_B_TEXT)
        try:
            heads = parse_heads(text.strip() or "none", *ctx.shape)
        except BhpvasError as exc:
            show_error(exc)
            heads = parse_heads(ss.get(SCHEME_B) or "none", *ctx.shape)
        ss[SCHEME_B] = heads_key(heads)
        return "B", heads
    heads, _ = proposed_heads(bundle, *current_rule())
    return "proposal", set(heads)


def treated_rows(ctx: Context, record: SchemeRepair | None, row_a: dict) -> list[dict]:
    """Rows "A + repair" and "A + repair + recovery" when this session repaired A: A's size, the treated model's metrics."""
    if record is None:
        return []
    full_preds = ctx.full().preds
    return [
        {
            **row_a,
            "scheme": f"A + {done}",
            "accuracy": result.accuracy,
            "loss": result.loss,
            "agreement": float(np.mean(result.preds == full_preds)),
            "flipped": int((result.preds != full_preds).sum()),
            "_preds": result.preds,
        }
        for done, result in record.treated()
    ]


def comparison_table(ctx: Context, rows: list[dict], heads_b: set[Head], row_b: dict | None) -> None:
    shown = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    visualize_table(
        shown,
        columns={
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "agreement": st.column_config.NumberColumn(format="percent"),
            "loss": st.column_config.NumberColumn(format="%.4f"),
            f"GMACs @{MACS_LENGTH}": st.column_config.NumberColumn(
                format="%.2f", help=f"encoder MACs for one {MACS_LENGTH}-token sequence"
            ),
            "MACs %": st.column_config.NumberColumn(format="%.1f%%"),
        },
    )
    if row_b is not None:
        differ = int((rows[1]["_preds"] != row_b["_preds"]).sum())
        both = len(ctx.scheme.pruned & heads_b)
        st.caption(f"A and B share {heads_text(both)} and disagree on {differ} of {len(rows[1]['_preds'])} predictions.")
    if len(rows) > 2 + (row_b is not None):
        st.caption("A + repair (+ recovery): A's heads physically removed with the kept heads repaired (and fine-tuned); same size as A.")


@st.fragment(key=COMPARE_SECTION)
def section_compare() -> None:
    ctx = page_context()
    bundle = page_bundle(ctx)
    st.subheader("Compare two schemes", anchor=False)
    controls = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    with controls[0]:
        name_b, heads_b = scheme_b(ctx, bundle)
    x_name = controls[1].segmented_control("Pareto x-axis", ["MACs %", "heads kept"], default="MACs %", key="scheme-pareto-x") or "MACs %"
    controls[2].button("Swap A and B", key="scheme-swap", icon=":material/swap_horiz:", on_click=swap, args=(ctx.shape, heads_b))
    controls[3].button(
        "Make B current", key="scheme-adopt-b", disabled=heads_b == ctx.scheme.pruned, on_click=changed_scheme, args=(heads_b,)
    )
    a_col, b_col = st.columns(2, gap="large")
    with a_col:
        st.markdown(f"**A (current)** — {heads_text(len(ctx.scheme.pruned))} pruned")
        visualize_head_grid(scheme_grid(ctx, bundle, set(ctx.scheme.pruned), "pruned / kept"), key="scheme-compare-a")
    with b_col:
        st.markdown(f"**{name_b}** — {heads_text(len(heads_b))} pruned")
        visualize_head_grid(scheme_grid(ctx, bundle, heads_b, "pruned / kept"), key="scheme-compare-b")
    try:
        rows = [scheme_row(ctx, "full model", set()), scheme_row(ctx, "A (current)", set(ctx.scheme.pruned))]
        row_b = scheme_row(ctx, name_b, heads_b) if name_b != "full model" else None
    except BhpvasError as exc:
        show_error(exc)
        return
    rows += [row_b] if row_b is not None else []
    rows += treated_rows(ctx, current_repair(ctx), rows[1])
    table_col, chart_col = st.columns([3, 2], gap="large")
    with table_col:
        comparison_table(ctx, rows, heads_b, row_b)
    with chart_col:
        show_figure(pareto_figure(rows, x_name, curve_lines(ctx, x_name)), key="scheme-pareto", name="pareto")


def prune_options(record: SchemeRepair | None) -> tuple[bool, RecoveryParams | None]:
    """Whether to repair before pruning (on by default when A was repaired in this session), and the
    recovery to carry over (when A was recovered and the repair is on)."""
    repair = st.checkbox(
        "Repair before pruning",
        value=record is not None,
        key=f"scheme-prune-repair-{record is not None}",
        help="Prune the repaired model: each layer's attention and feed-forward output projections refitted on the calibration set (reused when already computed).",
    )
    recovery = record.recovery if record is not None and record.recovery is not None and record.recovery.completed else None
    if recovery is None:
        return repair, None
    steps = recovery.params.steps
    carried = st.checkbox(
        f"Save the recovered weights ({steps} fine-tuning steps)",
        value=True,
        key="scheme-prune-recovered",
        disabled=not repair,
        help="The recovery run of the Repair section, taken from the result cache (rerun, with the same result, when no longer there).",
    )
    return repair, recovery.params if repair and carried else None


def real_pruning(ctx: Context, folder: Path, report: ProgressFn, repair: bool, recovery: RecoveryParams | None) -> dict:
    """The pruning report of A: plain, repaired (:func:`repair_and_prune`), or repaired and recovered."""
    calibration = ctx.sets.calibration
    if not repair:
        return pruning_report(ctx.lm, ctx.dataset, ctx.scheme, folder, repeats=5, progress=report)
    pruned, fitted = repair_and_prune(ctx.lm, ctx.scheme, calibration, progress=report)
    recovered = recover(pruned, ctx.lm, calibration, recovery, progress=report) if recovery is not None else None
    return pruning_report(
        ctx.lm, ctx.dataset, ctx.scheme, folder, repeats=5, progress=report, repair=fitted, recovery=recovered, calibration=calibration
    )


@st.fragment(key=PRUNE_SECTION)
def section_prune() -> None:
    ctx = page_context()
    st.subheader("Prune for real", anchor=False)
    st.caption(
        "Removes the pruned heads of A from a copy of the model (q/k/v rows and output-projection columns), saves it, "
        "checks its predictions against masked inference (fp32), loads the saved checkpoint back and measures its accuracy "
        "in fp32, and times the full and the pruned model in turn (batch 1 and 32, 64 and 128 tokens, median of 5 runs on "
        "random tokens). With repair (and recovery) the repaired (and fine-tuned) model is saved, and the report and the "
        "checkpoint's bhpvas_pruning.json record what was done and on which calibration set."
    )
    key = (ctx.model_source, ctx.data_key, ctx.scheme.key())
    if not ctx.scheme.pruned:
        st.info("The current scheme prunes no head; choose heads first.")
        return
    repair, recovery = prune_options(current_repair(ctx))
    label = f"Prune {heads_text(len(ctx.scheme.pruned))}, check and time it"
    if st.button(label, key="scheme-prune", type="primary", icon=":material/content_cut:"):
        folder = new_run_folder()
        try:
            with queued_job("Pruning report"), progress_bar("Pruning for real") as report:
                result = real_pruning(ctx, folder, report, repair, recovery)
        except BhpvasError as exc:
            show_error(exc)
            return
        st.session_state[PRUNE_RESULT] = (key, result, str(folder), folder_downloads(folder))
    stored = st.session_state.get(PRUNE_RESULT)
    if stored and stored[0] == key:
        visualize_pruning_report(stored[1], Path(stored[2]), stored[3], key="scheme-download", pruned_count=len(ctx.scheme.pruned))


@st.fragment(key=REPAIR_SECTION)
def section_repair() -> None:
    repair_section(page_context())


def render() -> None:
    st.title("Scheme & export", anchor=False)
    st.caption("What do I ship? Build the scheme, compare it with another, export it, and prune the model for real.")
    ctx = page_context()
    page_bundle(ctx)
    st.text(ctx.provenance())
    section_current()
    st.divider()
    section_compare()
    st.divider()
    section_repair()
    st.divider()
    section_prune()
