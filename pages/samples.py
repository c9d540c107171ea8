"""Samples: which inputs does my scheme break? Every evaluation sample under the full model and
under the current scheme, flips first, and one sample in detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import links
from app.context import Context, page_context, show_error
from app.state import hand_over_to_dependencies
from app.views.figure import show_figure
from app.views.probabilities import probability_figure
from app.views.table import visualize_table
from pruning_core import BhpvasError
from pruning_core.sample_changes import sample_changes

SHOWN_ROWS = "_samples_shown"
SAMPLE = "sample"


def sample_table(ctx: Context) -> pd.DataFrame:
    """One row per evaluation sample: texts, label, full-model and scheme predictions; flips first."""
    full, current = ctx.full(), ctx.current()
    changes = sample_changes(full, current)
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
            "flipped": changes.flipped,
            "correct": changes.correct,
            "Δ p(label)": changes.delta_label,
        }
    )
    if ctx.dataset.is_pair:
        table.insert(2, "second text", list(ctx.dataset.text_pairs))
    return table.iloc[changes.order].reset_index(drop=True)


def filtered(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    """The filter controls and the rows they keep."""
    filters = st.columns([1, 1, 2, 3])
    flipped_only = filters[0].toggle("Flipped only", value=bool(ctx.scheme.pruned) and bool(table["flipped"].any()), key="samples-flipped")
    wrong_only = filters[1].toggle("Wrong only", key="samples-wrong", help="Wrong under the current scheme")
    labels = filters[2].multiselect("Label", sorted(table["label"].unique()), key="samples-labels", placeholder="all labels")
    search = filters[3].text_input("Text contains", key="samples-search", placeholder="search the texts").strip()
    shown = table
    if flipped_only:
        shown = shown[shown["flipped"]]
    if wrong_only:
        shown = shown[~shown["correct"]]
    if labels:
        shown = shown[shown["label"].isin(labels)]
    if search:
        mask = shown["text"].str.contains(search, case=False, regex=False)
        if "second text" in shown:
            mask |= shown["second text"].str.contains(search, case=False, regex=False)
        shown = shown[mask]
    return shown


def pick_row() -> None:
    """Drill into the row the user selected in the table."""
    rows = st.session_state["samples-table"].selection.rows
    if rows:
        st.session_state[SAMPLE] = st.session_state[SHOWN_ROWS][rows[0]]


def sample_table_view(shown: pd.DataFrame) -> None:
    st.session_state[SHOWN_ROWS] = [int(i) for i in shown["#"]]
    visualize_table(
        shown,
        key="samples-table",
        height=360,
        on_select=pick_row,
        selection_mode="single-row",
        columns={
            "#": st.column_config.NumberColumn(width="small"),
            "text": st.column_config.TextColumn(width="large"),
            "full conf.": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f", width="small"),
            "scheme conf.": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f", width="small"),
            "Δ p(label)": st.column_config.NumberColumn(format="%+.3f", help="change of the true label's probability"),
        },
    )


def one_sample(ctx: Context, index: int) -> None:
    """The sample's texts (as plain text), label, both predictions and their probabilities."""
    full, current = ctx.full(), ctx.current()
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.text(ctx.dataset.texts[index])
        if ctx.dataset.is_pair:
            st.text(ctx.dataset.text_pairs[index])
        cols = st.columns(3)
        cols[0].metric("Label", ctx.label_name(current.labels[index]))
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
            hand_over_to_dependencies(sample=index)
            links.switch_to("dependencies")
    with right:
        names = [ctx.label_name(i) for i in range(ctx.lm.num_labels)]
        show_figure(
            probability_figure(names, full.probs[index], current.probs[index]), key="samples-probs", name=f"sample-{index}-probabilities"
        )


def render() -> None:
    st.title("Samples", anchor=False)
    st.caption("Which inputs does my scheme break? Every evaluation sample under the full model and under the current scheme; flips first.")
    ctx = page_context()
    st.text(ctx.provenance(scores=False))
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
    shown = filtered(ctx, table)
    st.caption(f"{len(shown)} of {len(table)} samples shown. Select a row to drill into it.")
    sample_table_view(shown)
    if st.session_state.get(SAMPLE) is None or not 0 <= st.session_state[SAMPLE] < current.n:
        st.session_state[SAMPLE] = int(shown.iloc[0]["#"]) if len(shown) else 0
    st.subheader("One sample", anchor=False)
    index = int(
        st.number_input("Sample #", min_value=0, max_value=current.n - 1, key=SAMPLE, help="Row number in the dataset (the # column).")
    )
    one_sample(ctx, index)
