"""Heads: which heads look prunable?

The head grid, the score scatter and the 2-D head map share one selection (click, box or lasso in
any of them); the detail panel explains one selected head.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.common import Context, all_heads, head_label, page_bundle, page_context, run_from_app, set_scheme, set_selection, view_key
from pages.views import (
    KEPT_COLORS,
    ROLE_COLORS,
    ROLE_NAMES,
    SELECT_COLOR,
    draw_chart,
    figure_download,
    grid_figure,
    points_figure,
    role_categories,
)
from pruning_core.analysis import AnalysisBundle
from pruning_core.attention import ENTROPY_BINS, PROFILE_NAMES
from pruning_core.roles import ROLES

run_from_app()

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


def colour_grid(ctx: Context, bundle: AnalysisBundle, colour: str, key: str) -> go.Figure:
    pruned = ~ctx.scheme.keep_mask()
    if colour == ROLE_VIEW:
        fig = grid_figure(
            role_categories(bundle.roles.assigned),
            categories=ROLE_NAMES,
            category_colors=ROLE_COLORS,
            value_name="role",
            pruned=pruned,
            selected=ctx.selection,
        )
    elif colour == SCHEME_VIEW:
        fig = grid_figure(
            pruned.astype(float),
            categories=("kept", "pruned"),
            category_colors=KEPT_COLORS,
            value_name="state",
            pruned=pruned,
            selected=ctx.selection,
        )
    else:
        fig = grid_figure(criteria_of(bundle)[colour], value_name=CRITERIA[colour], pruned=pruned, selected=ctx.selection)
    draw_chart(fig, key, on_heads=set_selection)
    return fig


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
    partner_label = f"{partner // ctx.shape[1]}.{partner % ctx.shape[1]}" if partner >= 0 else "—"
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
                "β": _fmt(bundle.roles.mean[layer, index, k], 2),
                "p": _fmt(bundle.roles.p[layer, index, k], 4),
                "has it": "yes" if bundle.roles.assigned[layer, index, k] else "no",
            }
            for k, role in enumerate(ROLES)
            if np.isfinite(bundle.roles.mean[layer, index, k])
        ]
        st.markdown(f"**Functional roles** (t-test of mean β > τ = {bundle.roles.tau:g}, p < 0.05)")
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            f"Entropy {criteria['entropy'][layer, index]:.2f} nats · distance {criteria['distance'][layer, index]:.1f} tokens · "
            f"dependency alignment {criteria['align_all'][layer, index]:.2f}"
        )
        if st.button("Keep this head" if pruned else "Prune this head", key="heads-toggle", icon=":material/content_cut:"):
            set_scheme(ctx.scheme.toggled(layer, index))
            st.rerun(scope="app")
        if len(ctx.selection) > 1 and st.button(f"Prune the {len(ctx.selection)} selected heads", key="heads-prune-selection"):
            set_scheme(ctx.scheme.pruned | ctx.selection)
            st.rerun(scope="app")
        if st.button("Show in a sentence", key="heads-to-deps", icon=":material/account_tree:"):
            st.session_state["deps_head"] = head
            st.switch_page("pages/dependencies.py")
    with middle:
        profile = bundle.attention.mean_profile
        fig = go.Figure()
        fig.add_bar(x=list(PROFILE_NAMES), y=profile[layer, index], name=f"head {layer}.{index}", marker_color=SELECT_COLOR)
        fig.add_scatter(
            x=list(PROFILE_NAMES),
            y=np.nanmean(profile.reshape(-1, len(PROFILE_NAMES)), axis=0),
            mode="markers",
            marker={"symbol": "line-ew", "size": 30, "line": {"width": 3, "color": "#333"}},
            name="mean of all heads",
        )
        fig.update_layout(
            title={"text": "Attention profile: where its attention goes", "font": {"size": 14}},
            height=300,
            margin={"l": 40, "r": 10, "t": 40, "b": 30},
            yaxis_title="share of attention",
            legend={"orientation": "h", "y": -0.2},
        )
        st.plotly_chart(fig, key="heads-profile", config={"displaylogo": False})
    with right:
        hist = bundle.attention.entropy_hist[layer, index]
        edges = np.linspace(0, 1, ENTROPY_BINS + 1)
        fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=hist / max(hist.sum(), 1), width=1 / ENTROPY_BINS, marker_color="#4c78a8"))
        fig.update_layout(
            title={"text": "Row entropy / ln n: 0 = one token, 1 = uniform", "font": {"size": 14}},
            height=300,
            margin={"l": 40, "r": 10, "t": 40, "b": 30},
            xaxis={"range": [0, 1], "title": "normalised entropy"},
            yaxis_title="share of rows",
        )
        st.plotly_chart(fig, key="heads-entropy", config={"displaylogo": False})


def _fmt(value: float, digits: int) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


@st.fragment
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
    pruned = ~ctx.scheme.keep_mask()
    num_heads = ctx.shape[1]
    with grid_col:
        st.markdown("**Head grid** (layer × head)")
        grid = colour_grid(ctx, bundle, colour, "heads-grid")
        st.caption("× pruned in the current scheme · outlined: selected")
        figure_download(grid, "head-grid", "heads-grid-html")
    with scatter_col:
        st.markdown("**Score scatter**")
        scatter = points_figure(
            criteria[x_name].ravel(),
            criteria[y_name].ravel(),
            x_title=CRITERIA[x_name],
            y_title=CRITERIA[y_name],
            color=np.repeat(np.arange(ctx.shape[0]), num_heads).astype(float),
            color_title="layer",
            num_heads=num_heads,
            pruned=pruned,
            selected=ctx.selection,
            height=360,
        )
        draw_chart(scatter, "heads-scatter", on_heads=set_selection)
        figure_download(scatter, "score-scatter", "heads-scatter-html")
    with map_col:
        st.markdown("**Head map** (similar heads close together)")
        coords = bundle.head_map
        head_map = points_figure(
            coords[:, 0],
            coords[:, 1],
            x_title=f"{bundle.map_method} 1",
            y_title=f"{bundle.map_method} 2",
            color=criteria[map_colour].ravel(),
            color_title=CRITERIA[map_colour].split(" (")[0],
            num_heads=num_heads,
            pruned=pruned,
            selected=ctx.selection,
            height=360,
        )
        draw_chart(head_map, "heads-map", on_heads=set_selection)
        figure_download(head_map, "head-map", "heads-map-html")
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


st.title("Heads", anchor=False)
st.caption("Which heads look prunable? Low importance, high stability and high similarity (redundancy) point to prunable heads.")
page_bundle(page_context())
linked_views()
