"""Heads: which heads look prunable?

The head grid, the score scatter and the 2-D head map share one selection (click, box or lasso in
any of them); the detail panel explains one selected head.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import links
from app.context import Context, evidence_page, load_context, page_bundle, page_context
from app.keys import Head, all_heads, head_label
from app.plain import escape_markdown
from app.sidebar import rerun_scheme_views
from app.state import hand_over_to_dependencies, set_scheme, set_selection, view_key
from app.views.evidence import add_pair_lines, importance_errors_figure, spread_figure
from app.views.figure import show_figure
from app.views.head_detail import entropy_figure, profile_figure
from app.views.head_grid import grid_figure, kept_figure, role_categories, visualize_head_grid
from app.views.head_points import points_figure
from app.views.style import ROLE_COLORS, ROLE_NAMES
from app.views.table import visualize_table
from pruning_core.analysis import AnalysisBundle
from pruning_core.attention import PROFILE_NAMES
from pruning_core.roles import ROLES

LINKED_VIEWS = "heads-linked-views"
CRITERIA = {
    "importance_display": "importance (scaled 0–1)",
    "importance": "importance (layer-normalised)",
    "stability": "stability",
    "similarity": "similarity (max CKA)",
    "entropy": "attention entropy (nats)",
    "distance": "attention distance (tokens)",
    "align_all": "dependency alignment",
    "beta_local": "sieve score: local",
    "beta_delimiter": "sieve score: delimiter",
    "beta_syntactic": "sieve score: syntactic",
    "beta_block": "sieve score: block",
}
ROLE_VIEW = "functional role"
SCHEME_VIEW = "current scheme (pruned / kept)"


def criteria_of(bundle: AnalysisBundle) -> dict[str, np.ndarray]:
    """The criteria that have at least one finite value (block is NaN for single sentences)."""
    values = bundle.criteria()
    return {k: values[k] for k in CRITERIA if k in values and np.isfinite(values[k]).any()}


def coloured_grid(ctx: Context, bundle: AnalysisBundle, colour: str) -> go.Figure:
    pruned = ~ctx.scheme.keep_mask()
    if colour == ROLE_VIEW:
        return grid_figure(
            role_categories(bundle.roles.assigned),
            categories=ROLE_NAMES,
            category_colors=ROLE_COLORS,
            value_name="role",
            pruned=pruned,
            selected=ctx.selection,
        )
    if colour == SCHEME_VIEW:
        return kept_figure(pruned, ctx.selection)
    return grid_figure(criteria_of(bundle)[colour], value_name=CRITERIA[colour], pruned=pruned, selected=ctx.selection)


def toggle_head(head: Head) -> None:
    """Button callback: flip one head of the current scheme; only this page's views and the sidebar's panels rerun."""
    set_scheme(load_context().scheme.toggled(*head))
    rerun_scheme_views(LINKED_VIEWS)


def prune_heads(heads: set[Head]) -> None:
    set_scheme(load_context().scheme.pruned | heads)
    rerun_scheme_views(LINKED_VIEWS)


def detail_panel(ctx: Context, bundle: AnalysisBundle) -> None:
    """Scores, roles, most similar head, attention profile and entropy histogram of one head."""
    options = sorted(ctx.selection) or all_heads(*ctx.shape)
    head = st.selectbox(
        "Head in detail",
        options,
        format_func=lambda h: f"layer {h[0]}, head {h[1]}",
        key=view_key("heads-detail-head"),
        help="One of the selected heads (or any head when none is selected).",
    )
    layer, index = head
    criteria = bundle.criteria()
    importance = criteria["importance_display"]
    rank = int((np.nan_to_num(importance, nan=np.inf) < importance[layer, index]).sum()) + 1
    partner = int(bundle.similarity.partner[layer, index])
    partner_label = head_label(divmod(partner, ctx.shape[1])) if partner >= 0 else "—"
    pruned = head in ctx.scheme.pruned
    cols = st.columns(5)
    cols[0].metric("Importance", f"{importance[layer, index]:.3f}", help=f"rank {rank} of {importance.size}, lowest first (scaled 0–1)")
    cols[1].metric("Stability", f"{bundle.stability[layer, index]:.4f}")
    cols[2].metric("Similarity", f"{bundle.similarity.score[layer, index]:.3f}", help=f"max linear CKA, with head {partner_label}")
    cols[3].metric("Most similar head", partner_label)
    cols[4].metric("In the scheme", "pruned" if pruned else "kept")
    left, middle, right = st.columns([2, 3, 3], gap="medium")
    with left:
        rows = [
            {
                "role": role,
                "β": number(bundle.roles.mean[layer, index, k], 2),
                "p": number(bundle.roles.p[layer, index, k], 4),
                "has it": "yes" if bundle.roles.assigned[layer, index, k] else "no",
            }
            for k, role in enumerate(ROLES)
            if np.isfinite(bundle.roles.mean[layer, index, k])
        ]
        st.markdown(f"**Functional roles** (t-test of mean β > τ = {bundle.roles.tau:g}, p < 0.05)")
        visualize_table(rows)
        st.caption(
            f"Entropy {criteria['entropy'][layer, index]:.2f} nats · distance {criteria['distance'][layer, index]:.1f} tokens · "
            f"dependency alignment {criteria['align_all'][layer, index]:.2f}"
        )
        st.button(
            "Keep this head" if pruned else "Prune this head",
            key="heads-toggle",
            icon=":material/content_cut:",
            on_click=toggle_head,
            args=(head,),
        )
        if len(ctx.selection) > 1:
            st.button(
                f"Prune the {len(ctx.selection)} selected heads", key="heads-prune-selection", on_click=prune_heads, args=(ctx.selection,)
            )
        if st.button("Show in a sentence", key="heads-to-deps", icon=":material/account_tree:"):
            hand_over_to_dependencies(head=head)
            links.switch_to("dependencies")
    with middle:
        profile = bundle.attention.mean_profile
        mean = np.nanmean(profile.reshape(-1, len(PROFILE_NAMES)), axis=0)
        show_figure(profile_figure(PROFILE_NAMES, profile[layer, index], mean, head_label(head)), key="heads-profile")
    with right:
        show_figure(entropy_figure(bundle.attention.entropy_hist[layer, index]), key="heads-entropy")


def number(value: float, digits: int) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def criterion_points(
    ctx: Context, x: np.ndarray, y: np.ndarray, x_title: str, y_title: str, color: np.ndarray, color_title: str
) -> go.Figure:
    return points_figure(
        x.ravel(),
        y.ravel(),
        x_title=x_title,
        y_title=y_title,
        color=color,
        color_title=color_title,
        num_heads=ctx.shape[1],
        pruned=~ctx.scheme.keep_mask(),
        selected=ctx.selection,
        height=360,
    )


@st.fragment(key=LINKED_VIEWS)
def linked_views() -> None:
    """The three linked views and the detail panel; a selection reruns only this fragment."""
    ctx = page_context()
    bundle = page_bundle(ctx)
    criteria = criteria_of(bundle)
    names = list(criteria)
    controls = st.columns(4)
    colour = controls[0].selectbox(
        "Colour the grid by",
        [*names, ROLE_VIEW, SCHEME_VIEW],
        format_func=lambda k: CRITERIA.get(k, k),
        key="heads-colour",
    )
    x_name = controls[1].selectbox("Scatter x", names, index=names.index("importance_display"), format_func=CRITERIA.get, key="heads-x")
    y_name = controls[2].selectbox("Scatter y", names, index=names.index("similarity"), format_func=CRITERIA.get, key="heads-y")
    map_colour = colour if colour in criteria else "importance_display"
    controls[3].caption(
        f"Head map: {bundle.map_method.upper()} of 1 − CKA, coloured by {CRITERIA[map_colour]}. "
        "Click a head in any view to select it; box or lasso select (chart toolbar) picks many."
    )
    grid_col, scatter_col, map_col = st.columns([5, 4, 4], gap="small")
    with grid_col:
        st.markdown("**Head grid** (layer × head)")
        visualize_head_grid(coloured_grid(ctx, bundle, colour), key="heads-grid", name="head-grid", on_heads=set_selection)
        st.caption("× pruned in the current scheme · outlined: selected")
    with scatter_col:
        st.markdown("**Score scatter**")
        layer_of = np.repeat(np.arange(ctx.shape[0]), ctx.shape[1]).astype(float)
        scatter = criterion_points(ctx, criteria[x_name], criteria[y_name], CRITERIA[x_name], CRITERIA[y_name], layer_of, "layer")
        show_figure(scatter, key="heads-scatter", name="score-scatter", on_heads=set_selection)
    with map_col:
        st.markdown("**Head map** (similar heads close together)")
        coords, method = bundle.head_map, bundle.map_method
        head_map = criterion_points(
            ctx, coords[:, 0], coords[:, 1], f"{method} 1", f"{method} 2", criteria[map_colour].ravel(), CRITERIA[map_colour].split(" (")[0]
        )
        pairs = bundle.redundant_pairs()
        show_figure(add_pair_lines(head_map, coords, pairs, ctx.shape[1]), key="heads-map", name="head-map", on_heads=set_selection)
        st.caption(f"Lines: {len(pairs)} redundant pairs (most similar head, CKA at or above the 75th percentile); dotted: one-sided.")
    picked = st.multiselect(
        "Selected heads",
        all_heads(*ctx.shape),
        default=sorted(ctx.selection),
        format_func=head_label,
        key=view_key("heads-selection"),
        help="The same selection as in the charts; type layer.head to add heads by keyboard.",
    )
    if set(picked) != ctx.selection:
        set_selection(picked)
        st.rerun(scope="fragment")
    st.divider()
    detail_panel(ctx, bundle)


SPREAD = {
    "importance": "importance",
    "fisher": "Fisher",
    "loo_loss": "leave-one-out Δloss",
    "stability": "stability",
    "similarity": "similarity",
}


def evidence_panel(bundle: AnalysisBundle) -> None:
    """Each criterion's spread over the heads, importance with its standard error, and the signal verdicts."""
    st.subheader("How much the evidence says", anchor=False)
    criteria = bundle.criteria()
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.markdown("**Spread of each criterion** (one point per head)")
        show_figure(spread_figure({k: criteria[k] for k in SPREAD if k in criteria}, SPREAD), key="heads-spread", name="criteria-spread")
    with right:
        st.markdown("**Importance ± standard error** over the calibration examples")
        show_figure(
            importance_errors_figure(bundle.importance.normalized, bundle.importance.stderr, bundle.num_heads),
            key="heads-importance-errors",
            name="importance-errors",
        )
    for name, verdict in bundle.signal.items():
        text = f"{name}: {'signal' if verdict.signal else 'no signal'} — {verdict.reason}"
        if verdict.signal:
            st.text(text)
        else:
            st.warning(escape_markdown(text), icon=":material/info:")


def render() -> None:
    ctx, bundle = evidence_page(
        "Heads", "Which heads look prunable? Low importance, high stability and high similarity (redundancy) point to prunable heads."
    )
    linked_views()
    st.divider()
    evidence_panel(bundle)
