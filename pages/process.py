"""Pruning process: how does accuracy fall as heads go?

Every strategy's curve on one chart (random as a mean line with a min-max band), knee markers, and
a step slider showing on small grids which heads each strategy has removed at that step; with the
"+ repair" curves (every point repaired on the calibration set), each strategy's plain curve dashed
beside its repaired one and a table of plain against repaired knees.
"""

from __future__ import annotations

import streamlit as st

from app.context import Context, page_bundle, page_context, rerun_after
from app.keys import Head
from app.resources import knee_tables, known_curves, pruning_curves, repaired_pruning_curves, results_source
from app.state import set_scheme, set_scheme_b
from app.views.curves import METRICS, curves_figure, step_grids
from app.views.figure import show_figure
from app.views.table import visualize_table
from pruning_core.analysis import AnalysisBundle
from pruning_core.curves import Curves, pruning_steps
from pruning_core.defaults import DEFAULT_STRATEGIES, OFFERED_STRATEGIES
from pruning_core.repair_curves import repaired_curves
from pruning_core.stats import ALPHA
from pruning_core.strategies import REGISTRY


def load_point(heads: list[Head], as_b: bool) -> None:
    if as_b:
        set_scheme_b(heads)
    else:
        set_scheme(heads)


def compute_offer(ctx: Context, bundle: AnalysisBundle) -> None:
    """Before any curves exist: what computing them costs, the strategies to compute, and the button."""
    total = ctx.shape[0] * ctx.shape[1]
    st.info(
        f"The curves evaluate the model after every 10% of the {total} heads, for each strategy (random with 5 seeds). "
        "Michel iterative recomputes importance after every step and differentiable subset pruning trains first; "
        "on the demo all of them take several minutes on a CPU the first time, afterwards they are read from the cache."
    )
    chosen = st.multiselect(
        "Strategies to compute",
        list(OFFERED_STRATEGIES),
        default=list(DEFAULT_STRATEGIES),
        format_func=lambda n: REGISTRY[n].label if n in REGISTRY else n,
        key="process-compute-strategies",
    )
    if st.button("Compute the pruning curves", type="primary", key="process-compute", icon=":material/play_arrow:", disabled=not chosen):
        rerun_after(lambda: pruning_curves(ctx.lm, ctx.sets, bundle, chosen))


def load_panel(ctx: Context, curves: Curves, names: list[str], step: int) -> None:
    st.markdown("**Load a point**")
    chosen = st.selectbox("Strategy", names, format_func=lambda n: curves.curves[n].label, key="process-load-strategy")
    heads = curves.curves[chosen].pruned_at(step)
    st.caption(f"{curves.curves[chosen].description} At the step above it prunes {len(heads)} heads.")
    buttons = st.columns(2)
    buttons[0].button(
        "Make it the current scheme",
        key="process-load",
        type="primary",
        on_click=load_point,
        args=(heads, False),
        disabled=set(heads) == ctx.scheme.pruned,
    )
    buttons[1].button("…or scheme B on the Scheme page", key="process-load-b", on_click=load_point, args=(heads, True))


TIES_SHOWN = 3
KNEES = {"1pt": "≤1 pt", "3pt": "≤3 pt", "nosig": "no sig. drop"}


def knee_cell(row: dict, kind: str) -> str:
    """``41 [36–44] best`` or ``38 [33–43] = importance, fisher``: the knee, its 95% interval, and
    whether it is the best or tied with others (the first :data:`TIES_SHOWN` named)."""
    if f"k_{kind}" not in row:
        return "—"
    text = str(row[f"k_{kind}"])
    if f"k_{kind}_interval" in row:
        low, high = row[f"k_{kind}_interval"]
        text += f" [{low}–{high}]"
    if row.get(f"best_{kind}"):
        text += " best"
    tied = row.get(f"tied_{kind}") or []
    if tied:
        shown = ", ".join(tied[:TIES_SHOWN])
        text += " = " + shown + (f" +{len(tied) - TIES_SHOWN} more" if len(tied) > TIES_SHOWN else "")
    return text


def change_cell(row: dict, kind: str) -> str:
    """The accuracy change at a knee, its 95% interval and McNemar p (``tie`` when p ≥ 0.05)."""
    if f"delta_{kind}" not in row:
        return "—"
    low, high = row[f"delta_{kind}"]
    p = row[f"p_{kind}"]
    verdict = "tie" if p >= ALPHA else "significant"
    return f"[{100 * low:+.1f}, {100 * high:+.1f}] pp · p={p:.3f} ({verdict})"


def knee_rows(table: list[dict], names: list[str]) -> list[dict]:
    """The knee table as text cells: per knee, K with its interval and ties, and the change there."""
    rows = []
    for row in table:
        if row["strategy"] not in names:
            continue
        cells = {"strategy": row["label"]}
        for kind, title in KNEES.items():
            cells[title] = knee_cell(row, kind)
            cells[f"Δ acc. {title}"] = change_cell(row, kind)
        rows.append(cells)
    return rows


REPAIR_SECONDS_DEMO = 18


def repair_offer(ctx: Context, curves: Curves, missing: list[str]) -> None:
    """For strategies without a "+ repair" curve: what repairing every point costs, the strategies, and the button."""
    total = curves.num_layers * curves.num_heads
    inner = len(pruning_steps(total, curves.params.step_fraction)) - 2
    st.info(
        "A \"+ repair\" curve repairs every point of a strategy's curve: each layer's attention and feed-forward output projections are refitted by "
        f"least squares on the calibration set ({len(ctx.sets.calibration)} rows, three passes over it), the model is pruned "
        f"for real and evaluated on the evaluation set ({len(ctx.sets.evaluation)} rows). That is {inner} repaired models "
        "per strategy (random: per seed), plus every K around a strategy's 1-point knee and first significant drop; "
        f"on the demo about {REPAIR_SECONDS_DEMO} s each on an idle 2-core CPU (fp32). Afterwards they are read from the cache."
    )
    chosen = st.multiselect(
        "Strategies to repair",
        missing,
        default=missing,
        format_func=lambda n: curves.curves[n].label,
        key="process-repair-strategies",
    )
    points = sum(len(curves.curves[name].orders) for name in chosen) * inner
    label = f"Add the + repair curves ({points} repaired models and the refinement)"
    if st.button(label, key="process-repair", icon=":material/build:", disabled=not chosen):
        rerun_after(lambda: repaired_pruning_curves(ctx.lm, ctx.sets, curves, chosen))


def gain_cell(row: dict, kind: str) -> str:
    """The repaired knee minus the plain one, with its 95% paired-bootstrap interval: ``+5 [+2, +9]``."""
    if f"gain_{kind}" not in row:
        return "—"
    text = f"{row[f'gain_{kind}']:+d}"
    if f"gain_{kind}_interval" in row:
        low, high = row[f"gain_{kind}_interval"]
        text += f" [{low:+d}, {high:+d}]"
    return text


def side(row: dict, which: str) -> dict:
    """The ``_plain`` or ``_repaired`` half of a ``repaired_knee_table`` row, without the suffix."""
    return {key.removesuffix(f"_{which}"): value for key, value in row.items() if key.endswith(f"_{which}")}


def repaired_knee_rows(table: list[dict], names: list[str]) -> list[dict]:
    """Plain against repaired knees as text cells: per knee both K with intervals and ties, the gain, and the repaired change."""
    rows = []
    for row in table:
        if row["strategy"] not in names:
            continue
        plain, repaired = side(row, "plain"), side(row, "repaired")
        cells = {"strategy": row["label"]}
        for kind, title in KNEES.items():
            cells[f"{title} plain"] = knee_cell(plain, kind)
            cells[f"{title} + repair"] = knee_cell(repaired, kind)
            cells[f"gain {title}"] = gain_cell(row, kind)
            cells[f"Δ acc. {title} + repair"] = change_cell(repaired, kind)
        rows.append(cells)
    return rows


def repaired_knee_table_section(curves: Curves, names: list[str]) -> None:
    st.markdown(
        '**Plain vs repaired knees**: the same knees for each strategy\'s plain and "+ repair" curve; *gain*: repaired minus '
        "plain heads, [low, high] its 95% paired-bootstrap interval (an interval above 0: repair lets you prune more at the "
        "same accuracy); ties among the repaired curves name them *strategy+repair*"
    )
    visualize_table(repaired_knee_rows(knee_tables(curves)[1], names), key="process-repaired-knees")


def knee_table(curves: Curves, names: list[str]) -> None:
    st.markdown(
        "**Knees**: most heads prunable within 1 and 3 accuracy points and with no significant drop (McNemar p ≥ 0.05); "
        "[low–high]: the knee's 95% bootstrap interval; *best*: the largest knee or tied with it; *= a, b*: tied "
        "(intervals overlap) with those strategies"
    )
    table = knee_tables(curves)[0]
    visualize_table(knee_rows(table, names))
    for row in table:
        if row["strategy"] in names and row.get("note"):
            st.text(f"{row['label']}: {row['note']}")


def fp32_rows(curves: Curves, names: list[str]) -> list[dict]:
    """Per strategy and knee: K, accuracy in the curves' precision and in fp32, and whether the knee holds in fp32."""
    rows = []
    for name, knees in curves.fp32_knees().items():
        if name not in names:
            continue
        cells = {"strategy": curves.curves[name].label}
        for kind, title in KNEES.items():
            if kind in knees:
                point = knees[kind]
                verdict = "holds" if point["holds"] else "does not hold"
                cells[title] = (
                    f"{point['k']}: {point['accuracy']:.2%} {point['precision']} → {point['accuracy_fp32']:.2%} fp32 "
                    f"({point['changed']} answers differ; {verdict})"
                )
        rows.append(cells)
    return rows


def fp32_table(curves: Curves, names: list[str]) -> None:
    """The knee points re-measured in fp32 (curves measured in bf16 are confirmed automatically)."""
    rows = fp32_rows(curves, names)
    if not rows:
        return
    full = curves.extra["fp32_confirmation"]["full_accuracy_fp32"]
    st.markdown(
        f"**Knees confirmed in fp32**: the curves were measured in {curves.precision}; each knee's scheme re-evaluated "
        f"in fp32 on the same evaluation set (full model {full:.2%} in fp32), and whether its criterion still holds there"
    )
    visualize_table(rows)


def render() -> None:
    st.title("Pruning process", anchor=False)
    st.caption(
        "How does accuracy fall as heads go? Each strategy prunes heads in its own order; "
        "the curves show the metric after each step, the stars the most heads prunable within one accuracy point."
    )
    ctx = page_context()
    bundle = page_bundle(ctx)
    curves = known_curves(ctx.lm, ctx.sets)
    if curves is None:
        compute_offer(ctx, bundle)
        st.stop()
    names_all = list(curves.curves)
    repaired = repaired_curves(curves)
    controls = st.columns([2, 5, 2] if repaired else [2, 5])
    metric = controls[0].segmented_control("Metric", list(METRICS), default="accuracy", key="process-metric") or "accuracy"
    names = controls[1].multiselect(
        "Strategies", names_all, default=names_all, format_func=lambda n: curves.curves[n].label, key="process-strategies"
    )
    show_repaired = bool(repaired) and controls[2].toggle(
        "Show the + repair curves",
        value=True,
        key="process-repaired",
        help="Each strategy's curve with every point repaired (least squares on the calibration set), solid beside the dashed plain one.",
    )
    if not names:
        st.warning("Choose at least one strategy.")
        st.stop()
    steps = sorted({k for name in names for k in curves.curves[name].ks})
    shared = sorted(set.intersection(*(set(curves.curves[name].ks) for name in names)))
    step = st.select_slider(
        "Step: heads pruned so far",
        options=steps,
        value=shared[len(shared) // 2],
        key="process-step",
        help="Steps every 10% of the heads are evaluated for every strategy; the extra steps refine a strategy's knee.",
    )
    figure = curves_figure(curves, names, metric, step, repaired if show_repaired else None)
    show_figure(figure, key="process-curves", name=f"pruning-curves-{metric}")
    st.text(
        f"Orders learned on the calibration set — {curves.calibration or ctx.sets.calibration_description}; "
        f"curves measured on the evaluation set — {curves.evaluation or ctx.sets.evaluation_description}; "
        f"{results_source(ctx.lm, ctx.sets) or curves.precision}. "
        + (
            "Dashed line, open star: plain (heads gated off); solid line, filled star, same colour: + repair (every point's "
            "kept heads refitted by least squares on the calibration set, then pruned for real). Shaded: each repaired "
            "curve's 95% interval (paired bootstrap of the change against the full model); grey: random's min-max over seeds."
            if show_repaired
            else "Shaded: each strategy's 95% interval (paired bootstrap of the change against the full model)."
        )
    )
    missing = [name for name in names_all if name not in repaired]
    if missing:
        title = "Add + repair curves for more strategies" if repaired else "Prune further at the same accuracy: add the + repair curves"
        with st.expander(title, icon=":material/build:"):
            repair_offer(ctx, curves, missing)
    st.subheader(f"Which heads are gone once {step} are pruned", anchor=False)
    show_figure(step_grids(curves, names, step), key="process-grids")
    st.caption("Blue: kept; grey: pruned. Layer 0 at the bottom of each grid. Random shows its first seed.")
    load_panel(ctx, curves, names, step)
    knee_table(curves, names)
    fp32_table(curves, names)
    if show_repaired:
        repaired_knee_table_section(curves, names)
