"""Dependencies: what does this head do in a sentence?

spaCy dependency arcs over the words of a sentence (above) mirrored against one head's word-level
attention arcs (below); the head's per-relation dependency alignment against the best fixed-offset
baseline; and its attention-weight distribution on that sentence.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.context import Context, evidence_page, show_error
from app.keys import Head, all_heads, head_label
from app.plain import code_span
from app.resources import cached_model
from app.state import DEPS_HEAD, DEPS_SAMPLE, set_selection, take_handover
from app.views.dependencies import alignment_figure, arcs_figure, distribution_figure
from app.views.figure import show_figure
from pruning_core import BhpvasError
from pruning_core.analysis import AnalysisBundle
from pruning_core.roles import ROLES
from pruning_core.schemes import Scheme
from pruning_core.sentence import SentenceAttention, row_entropy, sentence_attention
from pruning_core.syntax import parse

MAX_VIEW_CHARS = 1_000


@st.cache_data(max_entries=64, show_spinner="Parsing with spaCy…")
def parsed(text: str) -> dict:
    """The spaCy parse of ``text`` as plain data."""
    p = parse([text])[0]
    return {"words": p.words, "spans": p.spans, "pairs": p.pairs()}


@st.cache_data(max_entries=32, show_spinner="Computing attention…")
def attention_on(model_source: str, text: str, pair: str | None, scheme_key: str, spans: list) -> SentenceAttention:
    """Every head's attention on one input (see :func:`pruning_core.sentence.sentence_attention`)."""
    lm = cached_model(model_source)
    scheme = Scheme.from_key(scheme_key, lm.num_layers, lm.num_heads, model_source)
    return sentence_attention(lm, text, pair, [tuple(s) for s in spans], scheme)


def pick_head(ctx: Context, bundle: AnalysisBundle) -> Head:
    """The head to draw: one handed over by another page, the first selected head, or the best-aligned one."""
    heads = all_heads(*ctx.shape)
    handed = take_handover(DEPS_HEAD)
    if handed is not None:
        default = tuple(handed)
    elif ctx.selection:
        default = sorted(ctx.selection)[0]
    else:
        align = np.nan_to_num(bundle.criteria()["align_all"], nan=-1)
        default = tuple(int(v) for v in np.unravel_index(int(np.argmax(align)), align.shape))
    head = st.selectbox(
        "Head",
        heads,
        index=heads.index(default),
        format_func=lambda h: f"{head_label(h)} (layer {h[0]}, head {h[1]})",
        key=f"deps-head-{head_label(default)}",
        help="Choosing a head here makes it the selection (also on the Heads page and in the URL).",
    )
    if head not in ctx.selection:
        set_selection([head])
    return head


def chosen_input(ctx: Context, sample: int, custom: str) -> tuple[str, str | None]:
    """The text (and second text) to draw, cut to :data:`MAX_VIEW_CHARS` with a notice."""
    text = custom.strip() or ctx.dataset.texts[sample]
    pair = None if custom.strip() or not ctx.dataset.is_pair else ctx.dataset.text_pairs[sample]
    if len(text) > MAX_VIEW_CHARS:
        st.info(
            f"This text has {len(text):,} characters; the view shows its first {MAX_VIEW_CHARS:,} (the model truncates long inputs too)."
        )
        text = text[:MAX_VIEW_CHARS].rsplit(" ", 1)[0] or text[:MAX_VIEW_CHARS]
    return text, pair


def render() -> None:
    ctx, bundle = evidence_page(
        "Dependencies", "What does this head do in a sentence? Dependency arcs above the words, the head's attention arcs mirrored below."
    )
    controls = st.columns([2, 3, 2, 2])
    with controls[0]:
        head = pick_head(ctx, bundle)
    with controls[1]:
        handed = take_handover(DEPS_SAMPLE)
        if handed is not None:
            st.session_state["deps-sample"] = int(handed)
        sample = int(st.number_input("Sample # from the dataset", 0, len(ctx.dataset) - 1, key="deps-sample"))
        custom = st.text_input("…or type a sentence", key="deps-text", placeholder="a gripping , funny film")
    with controls[2]:
        threshold = st.slider("Show attention arcs with weight ≥", 0.05, 1.0, 0.2, step=0.05, key="deps-threshold")
    with controls[3]:
        gated = st.toggle(
            "Under the current scheme",
            key="deps-gated",
            help="Gate off the scheme's heads while computing attention (changes the attention of later layers).",
        )
    text, pair = chosen_input(ctx, sample, custom)
    try:
        sentence = parsed(text)
        if not sentence["words"]:
            st.warning("The sentence has no words to parse.")
            st.stop()
        attention = attention_on(ctx.model_source, text, pair, ctx.scheme.key() if gated else "none", [list(s) for s in sentence["spans"]])
    except BhpvasError as exc:
        show_error(exc)
        st.stop()

    layer, index = head
    roles = [role for k, role in enumerate(ROLES) if bundle.roles.assigned[layer, index, k]]
    state = "pruned" if head in ctx.scheme.pruned else "kept"
    st.caption(
        f"Head {head_label(head)} · roles: {', '.join(roles) or 'none'} · {state} in the current scheme"
        + (f" · second text (not drawn): {code_span(pair)}" if pair else "")
    )
    arcs = arcs_figure(sentence["words"], sentence["pairs"], attention.words[layer, index], threshold, head)
    show_figure(arcs, key="deps-arcs", name=f"dependencies-head-{head_label(head)}")
    left, right = st.columns(2, gap="large")
    with left:
        show_figure(alignment_figure(bundle, head), key="deps-align")
        st.caption(
            "Share of (dependent, governor) pairs over the analysis sentences where the head's strongest attention "
            "from one word (itself and special tokens excluded) lands on the other; bars against the best fixed offset."
        )
    with right:
        token_attention = attention.tokens[layer, index]
        show_figure(distribution_figure(token_attention, head), key="deps-dist")
        entropy, normalised = row_entropy(token_attention)
        cols = st.columns(3)
        cols[0].metric("Row entropy", f"{entropy:.2f} nats", help="mean over query tokens on this input")
        cols[1].metric("Entropy / ln n", f"{normalised:.2f}", help="0 = all on one token, 1 = uniform")
        cols[2].metric(
            "Dataset mean", f"{bundle.attention.mean_entropy[layer, index]:.2f} nats", help="mean row entropy over the whole dataset"
        )
