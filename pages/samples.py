"""Samples: which inputs does my scheme break?"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.common import Context, page_context, run_from_app, show_error
from pages.views import figure_download
from pruning_core import BhpvasError

run_from_app()


def sample_table(ctx: Context) -> pd.DataFrame:
    """One row per evaluation sample: texts, label, full-model and scheme predictions; flips first."""
    full, current = ctx.full(), ctx.current()
    names = [ctx.label_name(i) for i in range(ctx.lm.num_labels)]
    table = pd.DataFrame(
        {
            "#": np.arange(current.n),
            "text": list(ctx.dataset.texts),
            "label": [names[i] for i in current.labels],
            "full model": [names[i] for i in full.preds],
            "full conf.": full.confidence,
            "scheme": [names[i] for i in current.preds],
            "scheme conf.": current.confidence,
            "flipped": current.preds != full.preds,
            "correct": current.preds == current.labels,
            "Δ p(label)": current.probs[np.arange(current.n), current.labels] - full.probs[np.arange(full.n), full.labels],
        }
    )
    if ctx.dataset.is_pair:
        table.insert(2, "second text", list(ctx.dataset.text_pairs))
    return table.sort_values(["flipped", "Δ p(label)"], ascending=[False, True], kind="stable").reset_index(drop=True)


def probability_figure(ctx: Context, index: int) -> go.Figure:
    full, current = ctx.full(), ctx.current()
    names = [ctx.label_name(i) for i in range(ctx.lm.num_labels)]
    fig = go.Figure()
    fig.add_bar(y=names, x=full.probs[index], name="full model", orientation="h", marker_color="#4c78a8")
    fig.add_bar(y=names, x=current.probs[index], name="current scheme", orientation="h", marker_color="#e45756")
    fig.update_layout(
        barmode="group",
        height=110 + 45 * len(names),
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        xaxis={"range": [0, 1], "title": "probability"},
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


st.title("Samples", anchor=False)
st.caption("Which inputs does my scheme break? Every evaluation sample under the full model and under the current scheme; flips first.")
ctx = page_context()
try:
    table = sample_table(ctx)
except BhpvasError as exc:
    show_error(exc)
    st.stop()

current = ctx.current()
summary = st.columns(4)
summary[0].metric("Samples", f"{current.n}")
summary[1].metric("Flipped by the scheme", f"{int(table['flipped'].sum())}")
summary[2].metric("Wrong under the scheme", f"{int((~table['correct']).sum())}")
summary[3].metric("Heads pruned", f"{len(ctx.scheme.pruned)}")
if not ctx.scheme.pruned:
    st.info("The current scheme prunes no head, so nothing can flip. Build a scheme in the sidebar or on the Scheme page.")

filters = st.columns([1, 1, 2, 3])
flipped_only = filters[0].toggle("Flipped only", value=bool(ctx.scheme.pruned) and bool(table["flipped"].any()), key="samples-flipped")
wrong_only = filters[1].toggle("Wrong only", key="samples-wrong", help="Wrong under the current scheme")
labels = filters[2].multiselect("Label", sorted(table["label"].unique()), key="samples-labels", placeholder="all labels")
search = filters[3].text_input("Text contains", key="samples-search", placeholder="search the texts")
shown = table
if flipped_only:
    shown = shown[shown["flipped"]]
if wrong_only:
    shown = shown[~shown["correct"]]
if labels:
    shown = shown[shown["label"].isin(labels)]
if search.strip():
    mask = shown["text"].str.contains(search.strip(), case=False, regex=False)
    if "second text" in shown:
        mask |= shown["second text"].str.contains(search.strip(), case=False, regex=False)
    shown = shown[mask]
st.caption(f"{len(shown)} of {len(table)} samples shown. Select a row to drill into it.")

st.session_state["_samples_shown"] = [int(i) for i in shown["#"]]


def pick_row() -> None:
    """Drill into the row the user selected in the table."""
    rows = st.session_state["samples-table"].selection.rows
    if rows:
        st.session_state["sample"] = st.session_state["_samples_shown"][rows[0]]


st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    height=360,
    on_select=pick_row,
    selection_mode="single-row",
    key="samples-table",
    column_config={
        "#": st.column_config.NumberColumn(width="small"),
        "text": st.column_config.TextColumn(width="large"),
        "full conf.": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f", width="small"),
        "scheme conf.": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f", width="small"),
        "Δ p(label)": st.column_config.NumberColumn(format="%+.3f", help="change of the true label's probability"),
    },
)
if st.session_state.get("sample") is None or not 0 <= st.session_state["sample"] < current.n:
    st.session_state["sample"] = int(shown.iloc[0]["#"]) if len(shown) else 0

st.subheader("One sample", anchor=False)
index = int(
    st.number_input("Sample #", min_value=0, max_value=current.n - 1, key="sample", help="Row number in the dataset (the # column).")
)
full = ctx.full()
left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(f"> {ctx.dataset.texts[index]}")
    if ctx.dataset.is_pair:
        st.markdown(f"> {ctx.dataset.text_pairs[index]}")
    label = ctx.label_name(current.labels[index])
    cols = st.columns(3)
    cols[0].metric("Label", label)
    cols[1].metric("Full model", ctx.label_name(full.preds[index]), help=f"confidence {full.confidence[index]:.3f}")
    flipped = current.preds[index] != full.preds[index]
    cols[2].metric(
        "Current scheme",
        ctx.label_name(current.preds[index]),
        delta="flipped" if flipped else None,
        delta_color="inverse",
        help=f"confidence {current.confidence[index]:.3f}",
    )
    st.caption(
        f"Loss {full.sample_loss[index]:.3f} → {current.sample_loss[index]:.3f} · "
        f"{'correct' if current.preds[index] == current.labels[index] else 'wrong'} under the scheme"
    )
    if st.button("Look at this sentence's attention", icon=":material/account_tree:", key="samples-to-deps"):
        st.session_state["deps_sample"] = index
        st.switch_page("pages/dependencies.py")
with right:
    fig = probability_figure(ctx, index)
    st.plotly_chart(fig, key="samples-probs", config={"displaylogo": False})
    figure_download(fig, f"sample-{index}-probabilities", "samples-probs-html")
