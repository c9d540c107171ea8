"""Dependencies: what does this head do in a sentence?

spaCy dependency arcs over the words of a sentence (above) mirrored against one head's word-level
attention arcs (below); the head's per-relation dependency alignment against the best fixed-offset
baseline; and its attention-weight distribution on that sentence.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.common import (
    Context,
    Head,
    all_heads,
    cached_model,
    head_label,
    page_bundle,
    page_context,
    run_from_app,
    set_selection,
    show_error,
)
from pages.views import SELECT_COLOR, figure_download
from pruning_core import BhpvasError
from pruning_core.analysis import AnalysisBundle
from pruning_core.attention import attention_maps
from pruning_core.batching import default_max_length
from pruning_core.roles import DIRECTIONS, RELATIONS, ROLES
from pruning_core.schemes import Scheme
from pruning_core.syntax import parse, piece_to_word, word_attention

run_from_app()

MAX_VIEW_CHARS = 1_000

DEP_COLOR = "#6c6c6c"
ATTN_COLOR = "#1f77b4"
MATCH_COLOR = "#2ca02c"


@st.cache_data(max_entries=64, show_spinner="Parsing with spaCy…")
def parsed(text: str) -> dict:
    """The spaCy parse of ``text`` as plain data."""
    p = parse([text])[0]
    return {"words": p.words, "spans": p.spans, "pairs": p.pairs()}


@st.cache_data(max_entries=32, show_spinner="Computing attention…")
def word_attention_maps(
    model_source: str, text: str, pair: str | None, scheme_key: str, spans: list
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word-level (layers, heads, W, W) and token-level attention of every head on one input, and the piece-to-word map."""
    lm = cached_model(model_source)
    scheme = Scheme.from_key(scheme_key, lm.num_layers, lm.num_heads, model_source)
    sample = attention_maps(lm, [text], [pair] if pair is not None else None, scheme=scheme)[0]
    enc = lm.tokenizer(
        text, pair, truncation=True, max_length=default_max_length(lm), return_offsets_mapping=True, return_special_tokens_mask=True
    )
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    first = np.asarray([s == 0 for s in enc.sequence_ids()]) if pair is not None else ~special
    offsets = [tuple(o) if first[j] else (0, 0) for j, o in enumerate(enc["offset_mapping"])]
    pieces = piece_to_word(offsets, list(~first | special), [tuple(s) for s in spans])
    if len(pieces) != sample.attention.shape[-1]:
        raise BhpvasError("The tokenisation of this sentence did not match its attention map; try another sentence.")
    return word_attention(np.nan_to_num(sample.attention.astype(np.float64)), pieces, len(spans)), sample.attention, pieces


def _arc(x0: float, x1: float, up: bool, points: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A half-ellipse from x0 to x1 whose height grows with the distance."""
    t = np.linspace(0, np.pi, points)
    centre, radius = (x0 + x1) / 2, (x1 - x0) / 2
    height = 0.35 + 0.22 * abs(x1 - x0)
    y = np.sin(t) * height * (1 if up else -1)
    return centre - radius * np.cos(t), y


def arcs_figure(words: list[str], dep_pairs: list[tuple[int, int, str]], weights: np.ndarray, threshold: float, head: Head) -> go.Figure:
    """Dependency arcs above the words (arrow at the dependent), attention arcs below (arrow at the attended word)."""
    fig = go.Figure()
    n = len(words)
    linked = {(d, g) for d, g, _ in dep_pairs} | {(g, d) for d, g, _ in dep_pairs}
    top = 0.5
    for dep, gov, rel in dep_pairs:
        xs, ys = _arc(gov, dep, up=True)
        top = max(top, ys.max())
        fig.add_scatter(x=xs, y=ys, mode="lines", line={"color": DEP_COLOR, "width": 1.5}, hoverinfo="skip", showlegend=False)
        fig.add_scatter(
            x=[dep],
            y=[0.12],
            mode="markers",
            marker={"symbol": "triangle-down", "size": 8, "color": DEP_COLOR},
            hovertext=f"{words[gov]} → {words[dep]}: {rel}",
            hoverinfo="text",
            showlegend=False,
        )
        fig.add_annotation(x=(dep + gov) / 2, y=ys.max(), text=rel, showarrow=False, yshift=7, font={"size": 11, "color": "#444"})
    bottom = -0.5
    shown = 0
    buckets: dict[tuple[int, bool], tuple[list, list, list]] = {}
    for source in range(n):
        for target in range(n):
            w = float(weights[source, target])
            if source == target or w < threshold:
                continue
            xs, ys = _arc(source, target, up=False)
            bottom = min(bottom, ys.min())
            key = (min(int(w * 10), 9), (source, target) in linked)
            bx, by, bt = buckets.setdefault(key, ([], [], []))
            bx += [*xs, None]
            by += [*ys, None]
            bt += [f"{words[source]} → {words[target]}: {w:.2f}"] * len(xs) + [""]
            fig.add_scatter(
                x=[target],
                y=[-0.12],
                mode="markers",
                marker={
                    "symbol": "triangle-up",
                    "size": 4 + 8 * w,
                    "color": MATCH_COLOR if key[1] else ATTN_COLOR,
                    "opacity": 0.3 + 0.7 * w,
                },
                hoverinfo="skip",
                showlegend=False,
            )
            shown += 1
    for (level, match), (bx, by, bt) in sorted(buckets.items()):
        w = (level + 0.5) / 10
        fig.add_scatter(
            x=bx,
            y=by,
            mode="lines",
            line={"color": MATCH_COLOR if match else ATTN_COLOR, "width": 1 + 7 * w},
            opacity=0.25 + 0.75 * w,
            hovertext=bt,
            hoverinfo="text",
            showlegend=False,
        )
    for i, word in enumerate(words):
        fig.add_annotation(x=i, y=0, text=f"<b>{word}</b>", showarrow=False, font={"size": 13}, bgcolor="white")
    fig.add_annotation(x=-0.5, y=top + 0.3, text="spaCy dependencies", showarrow=False, xanchor="left", font={"color": DEP_COLOR})
    fig.add_annotation(
        x=-0.5,
        y=bottom - 0.2,
        text=f"attention of head {head_label(head)} ≥ {threshold:.2f}: {shown} arcs, ▲ at the attended word, green = along a dependency",
        showarrow=False,
        xanchor="left",
        font={"color": ATTN_COLOR},
    )
    fig.update_xaxes(visible=False, range=[-0.7, n - 0.3])
    fig.update_yaxes(visible=False, range=[bottom - 0.45, top + 0.55])
    fig.update_layout(
        height=int(260 + 55 * (top - bottom)), margin={"l": 5, "r": 5, "t": 5, "b": 5}, plot_bgcolor="white", hovermode="closest"
    )
    return fig


def alignment_figure(bundle: AnalysisBundle, head: Head) -> go.Figure:
    """Per relation: the head's alignment in both directions against the best fixed-offset baseline."""
    layer, index = head
    acc = bundle.alignment.accuracy[:, :, layer, index]
    base = bundle.alignment.baseline
    pairs = bundle.alignment.pairs
    keep = [i for i, _ in enumerate(RELATIONS) if pairs[i] > 0 and np.isfinite(acc[i]).any()]
    names = [f"{RELATIONS[i]} ({int(pairs[i])})" for i in keep]
    fig = go.Figure()
    colours = ("#4c78a8", "#f58518")
    for d, direction in enumerate(DIRECTIONS):
        fig.add_bar(x=names, y=acc[keep, d], name=f"head {direction}", marker_color=colours[d], offsetgroup=d)
        fig.add_scatter(
            x=names,
            y=base[keep, d],
            mode="markers",
            name=f"best offset {direction}",
            marker={"symbol": "line-ew", "size": 22, "line": {"width": 3, "color": "#222" if d == 0 else "#888"}},
            offsetgroup=d,
        )
    fig.update_layout(
        barmode="group",
        height=340,
        margin={"l": 40, "r": 10, "t": 40, "b": 60},
        yaxis={"range": [0, 1], "title": "share of pairs"},
        title={"text": f"Dependency alignment of head {head_label(head)} (pairs per relation in brackets)", "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def distribution_figure(token_attention: np.ndarray, head: Head) -> tuple[go.Figure, float, float]:
    """Histogram of the head's token attention weights on this sentence, and its mean and normalised row entropy."""
    weights = token_attention[np.isfinite(token_attention)]
    rows = np.clip(token_attention, 1e-12, None)
    entropy = float(-(token_attention * np.log(rows)).sum(-1).mean()) if token_attention.size else float("nan")
    n = token_attention.shape[-1]
    fig = go.Figure(go.Histogram(x=weights, nbinsx=30, marker_color=SELECT_COLOR))
    fig.update_layout(
        height=340,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        title={"text": f"Attention weights of head {head_label(head)} on this input", "font": {"size": 14}},
        xaxis_title="weight (token to token)",
        yaxis_title="count",
    )
    return fig, entropy, entropy / np.log(n) if n > 1 else float("nan")


def pick_head(ctx: Context, bundle: AnalysisBundle) -> Head:
    """The head to draw: the first selected head (or, without a selection, the best-aligned one)."""
    heads = all_heads(*ctx.shape)
    if "deps_head" in st.session_state:
        default = tuple(st.session_state.pop("deps_head"))
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


st.title("Dependencies", anchor=False)
st.caption("What does this head do in a sentence? Dependency arcs above the words, the head's attention arcs mirrored below.")
ctx = page_context()
bundle = page_bundle(ctx)

controls = st.columns([2, 3, 2, 2])
with controls[0]:
    head = pick_head(ctx, bundle)
with controls[1]:
    if "deps_sample" in st.session_state:
        st.session_state["deps-sample"] = int(st.session_state.pop("deps_sample"))
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

text = custom.strip() or ctx.dataset.texts[sample]
pair = None if custom.strip() or not ctx.dataset.is_pair else ctx.dataset.text_pairs[sample]
if len(text) > MAX_VIEW_CHARS:
    st.info(f"This text has {len(text):,} characters; the view shows its first {MAX_VIEW_CHARS:,} (the model truncates long inputs too).")
    text = text[:MAX_VIEW_CHARS].rsplit(" ", 1)[0] or text[:MAX_VIEW_CHARS]
try:
    sentence = parsed(text)
    if not sentence["words"]:
        st.warning("The sentence has no words to parse.")
        st.stop()
    words_attn, token_attn, pieces = word_attention_maps(
        ctx.model_source, text, pair, ctx.scheme.key() if gated else "none", [list(s) for s in sentence["spans"]]
    )
except BhpvasError as exc:
    show_error(exc)
    st.stop()

layer, index = head
roles = [role for k, role in enumerate(ROLES) if bundle.roles.assigned[layer, index, k]]
state = "pruned" if head in ctx.scheme.pruned else "kept"
st.caption(
    f"Head {head_label(head)} · roles: {', '.join(roles) or 'none'} · {state} in the current scheme"
    + (f" · second text (not drawn): {pair}" if pair else "")
)
arcs = arcs_figure(sentence["words"], sentence["pairs"], words_attn[layer, index], threshold, head)
st.plotly_chart(arcs, key="deps-arcs", config={"displaylogo": False})
figure_download(arcs, f"dependencies-head-{head_label(head)}", "deps-arcs-html")

left, right = st.columns(2, gap="large")
with left:
    fig = alignment_figure(bundle, head)
    st.plotly_chart(fig, key="deps-align", config={"displaylogo": False})
    st.caption(
        "Share of (dependent, governor) pairs over the analysis sentences where the head's strongest attention "
        "from one word (itself and special tokens excluded) lands on the other; bars against the best fixed offset."
    )
with right:
    real = token_attn[layer, index]
    fig, entropy, normalised = distribution_figure(real, head)
    st.plotly_chart(fig, key="deps-dist", config={"displaylogo": False})
    cols = st.columns(3)
    cols[0].metric("Row entropy", f"{entropy:.2f} nats", help="mean over query tokens on this input")
    cols[1].metric("Entropy / ln n", f"{normalised:.2f}", help="0 = all on one token, 1 = uniform")
    cols[2].metric(
        "Dataset mean", f"{bundle.attention.mean_entropy[layer, index]:.2f} nats", help="mean row entropy over the whole dataset"
    )
