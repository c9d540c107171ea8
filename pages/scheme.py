"""Scheme & export: what do I ship?

The current scheme (A) on the grid with click-to-toggle, a second scheme (B) side by side with its
metrics and a Pareto view, scheme JSON export/import, and the real-pruning step with a size and
latency report.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.common import (
    Context,
    Head,
    all_heads,
    current_rule,
    evaluation,
    head_label,
    heads_key,
    known_curves,
    lazy_progress,
    page_bundle,
    page_context,
    parse_heads,
    proposed_heads,
    queued_job,
    run_from_app,
    set_scheme,
    set_scheme_b,
    show_error,
)
from pages.views import KEPT_COLORS, draw_chart, figure_download, grid_figure, label_positions
from pruning_core import BhpvasError, LoadedModel, Scheme
from pruning_core.analysis import AnalysisBundle
from pruning_core.cache import default_cache_dir
from pruning_core.efficiency import encoder_macs
from pruning_core.report import pruning_report

run_from_app()

MACS_LENGTH = 128
B_SOURCES = ("BHPVAS proposal", "Full model", "Custom")


def toggle_heads(heads: list[Head]) -> None:
    """Click on the scheme grid: flip the clicked head between kept and pruned."""
    ss = st.session_state
    layers, per_layer = ss["_scheme_shape"]
    current = parse_heads(ss["scheme"], layers, per_layer)
    if len(heads) == 1:
        set_scheme(current ^ set(heads))


def scheme_grid(ctx: Context, bundle: AnalysisBundle, pruned: set[Head], key: str, colour: str, on_heads=None) -> go.Figure:
    keep = np.ones(ctx.shape, dtype=bool)
    for layer, head in pruned:
        keep[layer, head] = False
    if colour == "pruned / kept":
        fig = grid_figure(
            (~keep).astype(float), categories=("kept", "pruned"), category_colors=KEPT_COLORS, value_name="state", pruned=~keep
        )
    else:
        fig = grid_figure(bundle.importance.display(), value_name="importance", pruned=~keep)
    draw_chart(fig, key, on_heads=on_heads, selection_mode="points")
    return fig


def _heads(count: int) -> str:
    return f"{count} head" + ("" if count == 1 else "s")


def heads_per_layer(pruned: set[Head], shape: tuple[int, int]) -> list[int]:
    return [shape[1] - sum(1 for layer, _ in pruned if layer == index) for index in range(shape[0])]


def scheme_row(ctx: Context, name: str, pruned: set[Head]) -> dict:
    """Metrics of one scheme for the comparison table and the Pareto chart."""
    scheme = Scheme(ctx.shape[0], ctx.shape[1], frozenset(pruned), ctx.model_source)
    result = evaluation(ctx.lm, ctx.dataset, scheme)
    full_macs = encoder_macs(ctx.lm, MACS_LENGTH, [ctx.shape[1]] * ctx.shape[0])
    macs = encoder_macs(ctx.lm, MACS_LENGTH, heads_per_layer(pruned, ctx.shape))
    return {
        "scheme": name,
        "heads kept": ctx.shape[0] * ctx.shape[1] - len(pruned),
        "accuracy": result.accuracy,
        "loss": result.loss,
        "agreement": result.agreement,
        "flipped": int(len(result.flipped)),
        f"GMACs @{MACS_LENGTH}": macs / 1e9,
        "MACs %": 100 * macs / full_macs,
        "_preds": result.preds,
    }


def curve_lines(ctx: Context, x_name: str) -> list[tuple[str, list[float], list[float]]]:
    """The pruning-process curves (when computed) as (label, x, accuracy) lines for the Pareto chart."""
    curves = known_curves(ctx.lm, ctx.dataset)
    if curves is None:
        return []
    full_macs = encoder_macs(ctx.lm, MACS_LENGTH, [ctx.shape[1]] * ctx.shape[0])
    lines = []
    for curve in curves.curves.values():
        xs = []
        for k in curve.ks:
            if x_name == "heads kept":
                xs.append(float(ctx.shape[0] * ctx.shape[1] - k))
            else:
                pruned = set(curve.pruned_at(k))
                xs.append(100 * encoder_macs(ctx.lm, MACS_LENGTH, heads_per_layer(pruned, ctx.shape)) / full_macs)
        lines.append((curve.label, xs, [float(v) for v in curve.mean()]))
    return lines


def pareto_figure(rows: list[dict], x_name: str, lines: list[tuple[str, list[float], list[float]]] = ()) -> go.Figure:
    """Accuracy against size: the listed schemes, the frontier of those not beaten on both axes, and strategy curves."""
    xs = np.asarray([r[x_name] for r in rows], dtype=float)
    ys = np.asarray([r["accuracy"] for r in rows], dtype=float)
    frontier = [
        i
        for i in range(len(rows))
        if not any(xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j], ys[j]) != (xs[i], ys[i]) for j in range(len(rows)))
    ]
    frontier.sort(key=lambda i: xs[i])
    fig = go.Figure()
    for label, line_x, line_y in lines:
        fig.add_scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            line={"width": 1, "color": "#9aa4b1"},
            opacity=0.6,
            name=label,
            hovertemplate=f"{label}<br>{x_name}: %{{x:.1f}}<br>accuracy: %{{y:.2%}}<extra></extra>",
        )
    fig.add_scatter(
        x=xs[frontier], y=ys[frontier], mode="lines", line={"dash": "dot", "color": "#999"}, name="Pareto frontier", hoverinfo="skip"
    )
    colours = {"full model": "#333", "A (current)": "#e45756", "B": "#4c78a8", "proposal": "#54a24b"}
    positions = label_positions(xs, ys)
    for row, x, y, position in zip(rows, xs, ys, positions):
        fig.add_scatter(
            x=[x],
            y=[y],
            mode="markers+text",
            text=[row["scheme"]],
            textposition=position,
            marker={"size": 14, "color": colours.get(row["scheme"], "#888")},
            name=row["scheme"],
            hovertemplate=f"{row['scheme']}<br>{x_name}: %{{x:.1f}}<br>accuracy: %{{y:.2%}}<extra></extra>",
        )
    span = max(xs.max() - xs.min(), 1.0)
    low_y = min(ys.min(), min((min(y) for _, _, y in lines), default=ys.min()))
    fig.update_layout(
        height=380,
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        xaxis={
            "title": x_name + (" (of the full model)" if x_name == "MACs %" else ""),
            "range": [xs.min() - 0.15 * span, xs.max() + 0.15 * span],
        },
        yaxis={"title": "accuracy", "tickformat": ".1%", "range": [max(low_y, ys.min() - 0.05) - 0.003, ys.max() + 0.004]},
        showlegend=False,
        title={
            "text": "Accuracy vs size: up-left is better" + (" (grey: strategies)" if lines else ""),
            "font": {"size": 14},
        },
    )
    return fig


def pruned_folder(lm: LoadedModel, scheme_key: str) -> Path:
    digest = hashlib.sha256(f"{lm.fingerprint}:{scheme_key}".encode()).hexdigest()[:16]
    return default_cache_dir() / "pruned" / digest


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()


def section_current(ctx: Context, bundle: AnalysisBundle) -> None:
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
            data=Scheme(ctx.shape[0], ctx.shape[1], ctx.scheme.pruned, ctx.model_source).to_json(),
            file_name=f"scheme-{len(ctx.scheme.pruned)}-heads.json",
            mime="application/json",
            key="scheme-export",
            icon=":material/download:",
            on_click="ignore",
        )
        import_scheme(ctx)
    with grid_col:
        fig = scheme_grid(ctx, bundle, set(ctx.scheme.pruned), "scheme-grid", colour or "pruned / kept", on_heads=toggle_heads)
        st.caption("Click a head to toggle it between kept and pruned; the sidebar metrics follow.")
        figure_download(fig, "scheme-grid", "scheme-grid-html")


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
    note = f"{upload.name}: {len(scheme.pruned)} heads" + (f", made for `{scheme.model}`" if scheme.model else "")
    if scheme.model and scheme.model != ctx.model_source:
        st.warning(f"{note}; the loaded model is `{ctx.model_source}` (same shape, so it can be applied).")
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
    if ss.get("scheme-b-source") is None:
        ss["scheme-b-source"] = ss.get("scheme_b_source") or "BHPVAS proposal"
    source = st.segmented_control("Scheme B", B_SOURCES, key="scheme-b-source")
    ss["scheme_b_source"] = source
    if source == "Full model":
        return "full model", set()
    if source == "Custom":
        if "scheme-b-text" not in ss:
            ss["scheme-b-text"] = ss.get("scheme_b") or "none"
        text = st.text_input("Heads of B (layer.head, comma-separated)", key="scheme-b-text")
        try:
            heads = parse_heads(text.strip() or "none", *ctx.shape)
        except BhpvasError as exc:
            show_error(exc)
            heads = parse_heads(ss.get("scheme_b") or "none", *ctx.shape)
        ss["scheme_b"] = heads_key(heads)
        return "B", heads
    heads, _ = proposed_heads(bundle, *current_rule())
    return "proposal", set(heads)


def swap(a_key: str, heads_b: set[Head]) -> None:
    """B becomes the current scheme and the old current scheme becomes a custom B."""
    set_scheme_b(parse_heads(a_key, *st.session_state["_scheme_shape"]))
    set_scheme(heads_b)


def section_compare(ctx: Context, bundle: AnalysisBundle) -> None:
    st.subheader("Compare two schemes", anchor=False)
    controls = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    with controls[0]:
        name_b, heads_b = scheme_b(ctx, bundle)
    x_name = controls[1].segmented_control("Pareto x-axis", ["MACs %", "heads kept"], default="MACs %", key="scheme-pareto-x") or "MACs %"
    controls[2].button("Swap A and B", key="scheme-swap", icon=":material/swap_horiz:", on_click=swap, args=(ctx.scheme.key(), heads_b))
    controls[3].button("Make B current", key="scheme-adopt-b", disabled=heads_b == ctx.scheme.pruned, on_click=set_scheme, args=(heads_b,))
    a_col, b_col = st.columns(2, gap="large")
    with a_col:
        st.markdown(f"**A (current)** — {_heads(len(ctx.scheme.pruned))} pruned")
        scheme_grid(ctx, bundle, set(ctx.scheme.pruned), "scheme-compare-a", "pruned / kept")
    with b_col:
        st.markdown(f"**{name_b}** — {_heads(len(heads_b))} pruned")
        scheme_grid(ctx, bundle, heads_b, "scheme-compare-b", "pruned / kept")
    try:
        rows = [scheme_row(ctx, "full model", set()), scheme_row(ctx, "A (current)", set(ctx.scheme.pruned))]
        if name_b != "full model":
            rows.append(scheme_row(ctx, name_b, heads_b))
    except BhpvasError as exc:
        show_error(exc)
        return
    table_col, chart_col = st.columns([3, 2], gap="large")
    with table_col:
        shown = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            column_config={
                "accuracy": st.column_config.NumberColumn(format="percent"),
                "agreement": st.column_config.NumberColumn(format="percent"),
                "loss": st.column_config.NumberColumn(format="%.4f"),
                f"GMACs @{MACS_LENGTH}": st.column_config.NumberColumn(
                    format="%.2f", help=f"encoder MACs for one {MACS_LENGTH}-token sequence"
                ),
                "MACs %": st.column_config.NumberColumn(format="%.1f%%"),
            },
        )
        if len(rows) == 3:
            differ = int((rows[1]["_preds"] != rows[2]["_preds"]).sum())
            both = len(ctx.scheme.pruned & heads_b)
            st.caption(f"A and B share {_heads(both)} and disagree on {differ} of {len(rows[1]['_preds'])} predictions.")
    with chart_col:
        fig = pareto_figure(rows, x_name, curve_lines(ctx, x_name))
        st.plotly_chart(fig, key="scheme-pareto", config={"displaylogo": False})
        figure_download(fig, "pareto", "scheme-pareto-html")


def section_prune(ctx: Context) -> None:
    st.subheader("Prune for real", anchor=False)
    st.caption(
        "Removes the pruned heads of A from a copy of the model (q/k/v rows and output-projection columns), saves it, "
        "checks its predictions against masked inference, and times the full and the pruned model in turn "
        "(batch 1 and 32, 64 and 128 tokens, median of 5 runs on random tokens)."
    )
    ss = st.session_state
    key = (ctx.model_source, ctx.data_key, ctx.scheme.key())
    if not ctx.scheme.pruned:
        st.info("The current scheme prunes no head; choose heads first.")
        return
    if st.button(
        f"Prune {_heads(len(ctx.scheme.pruned))}, check and time it", key="scheme-prune", type="primary", icon=":material/content_cut:"
    ):
        folder = pruned_folder(ctx.lm, ctx.scheme.key())
        try:
            with queued_job("Pruning report"):
                report, clear = lazy_progress("Pruning for real")
                try:
                    result = pruning_report(ctx.lm, ctx.dataset, ctx.scheme, folder, repeats=5, progress=report)
                finally:
                    clear()
        except BhpvasError as exc:
            show_error(exc)
            return
        ss["prune_result"] = (key, result, str(folder))
    stored = ss.get("prune_result")
    if not stored or stored[0] != key:
        return
    _, result, folder = stored
    folder = Path(folder)
    cols = st.columns(4)
    cols[0].metric(
        "Parameters",
        f"{result['parameters_pruned'] / 1e6:.2f} M",
        delta=f"{(result['parameters_pruned'] - result['parameters_full']) / 1e6:+.2f} M",
        delta_color="inverse",
    )
    cols[1].metric("Pruned model accuracy", f"{result['accuracy_pruned']:.2%}", help=f"masked inference: {result['accuracy_masked']:.2%}")
    cols[2].metric(
        "Masked = pruned",
        "yes" if result["masked_equals_pruned"] else "no",
        help=f"largest logit difference between masked inference and the pruned model: {result['max_abs_logit_diff_masked_vs_pruned']:.1e}",
    )
    cols[3].metric("Heads per layer", " ".join(str(k) for k in result["kept_per_layer"]))
    st.dataframe(
        result["latency"],
        hide_index=True,
        column_config={
            "batch_size": st.column_config.NumberColumn("batch"),
            "seq_len": st.column_config.NumberColumn("tokens"),
            "full_ms": st.column_config.NumberColumn("full ms", format="%.1f"),
            "pruned_ms": st.column_config.NumberColumn("pruned ms", format="%.1f"),
            "speedup": st.column_config.NumberColumn("measured speed-up", format="%.2f×"),
            "macs_ceiling": st.column_config.NumberColumn("MACs ceiling", format="%.2f×", help="full MACs / pruned MACs"),
        },
    )
    st.caption(
        f"Saved to `{folder / 'model'}`: it loads with `pruning_core.load_model(folder)` or `--model` on the command line. "
        "The MACs ceiling is the speed-up a perfect kernel would reach; measured times depend on this machine."
    )
    with st.container(horizontal=True):
        st.download_button(
            "Pruned model (zip)",
            data=lambda: zip_folder(folder / "model"),
            file_name=f"pruned-{len(ctx.scheme.pruned)}-heads.zip",
            mime="application/zip",
            key="scheme-download-model",
            on_click="ignore",
            icon=":material/download:",
        )
        st.download_button(
            "Report (HTML)",
            data=lambda: (folder / "report.html").read_bytes(),
            file_name="pruning-report.html",
            mime="text/html",
            key="scheme-download-report",
            on_click="ignore",
            icon=":material/description:",
        )
        st.download_button(
            "Report (JSON)",
            data=lambda: (folder / "report.json").read_bytes(),
            file_name="pruning-report.json",
            mime="application/json",
            key="scheme-download-report-json",
            on_click="ignore",
            icon=":material/data_object:",
        )


st.title("Scheme & export", anchor=False)
st.caption("What do I ship? Build the scheme, compare it with another, export it, and prune the model for real.")
context = page_context()
st.session_state["_scheme_shape"] = context.shape
analysis = page_bundle(context)
section_current(context, analysis)
st.divider()
section_compare(context, analysis)
st.divider()
section_prune(context)
