"""Overview: what did I load and how good is it?"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import (
    DEFAULT_MODEL,
    DataChoice,
    cached_dataset,
    cached_model,
    check_labels,
    head_label,
    page_bundle,
    page_context,
    run_from_app,
    save_upload,
    set_selection,
    set_sources,
    show_error,
)
from pages.views import draw_chart, figure_download, grid_figure
from pruning_core import BhpvasError
from pruning_core.data import file_columns
from pruning_core.demo import DEMO_DIR, demo_available, prepare_demo

MODEL_KINDS = ("Embedded demo", "Local folder", "Hub id")
DATA_KINDS = ("Bundled SST-2", "Upload a file", "File on the server", "Hub dataset")

st.title("bhpvas: attention head pruning")
st.caption(
    "Which attention heads of a fine-tuned BERT-family classifier can go, and why? "
    "Load a model and a labelled dataset, read the per-head evidence, build a scheme, check it, prune for real."
)

run_from_app()
ss = st.session_state


def _apply(model: str, data: str) -> None:
    """Switch to ``model`` and ``data`` if both load and the labels fit; otherwise say why and keep the current ones."""
    try:
        check_labels(cached_model(model), cached_dataset(data))
    except BhpvasError as exc:
        show_error(exc)
        return
    set_sources(model, data)
    st.rerun()


def model_picker() -> None:
    current = ss["model"]
    kind_index = 0 if current == DEFAULT_MODEL else (1 if current.startswith((".", "/", "~")) else 2)
    kind = st.radio("Model", MODEL_KINDS, index=kind_index, horizontal=True, key="pick-model-kind")
    if kind == "Embedded demo":
        source = DEFAULT_MODEL
        st.caption("all-MiniLM-L6-v2 fine-tuned on SST-2 (6 layers × 12 heads), shipped with bhpvas.")
    elif kind == "Local folder":
        source = st.text_input(
            "Folder written by save_pretrained (or by bhpvas prune)",
            value=current if kind_index == 1 else "",
            key="pick-model-folder",
            placeholder="/path/to/model",
        )
    else:
        source = st.text_input("Hugging Face Hub id (needs a network)", value=current if kind_index == 2 else "", key="pick-model-hub")
    if st.button("Load model", key="pick-model-apply", disabled=not source.strip() or source.strip() == current):
        _apply(source.strip(), ss["data"])


def data_picker() -> None:
    kind = st.radio("Dataset", DATA_KINDS, horizontal=True, key="pick-data-kind")
    rows = st.number_input("Use the first N rows (0 = all)", min_value=0, value=0, step=100, key="pick-data-rows")
    limit = int(rows) or None
    if kind == "Bundled SST-2":
        split = st.selectbox("Split", ["sst2:dev", "sst2:train"], key="pick-data-split", help="dev: 872 sentences; train: 67,349 phrases")
        choice = DataChoice("sst2" if split == "sst2:dev" else split, rows=limit)
    elif kind == "Upload a file":
        upload = st.file_uploader("CSV, TSV or JSONL with a header", type=["csv", "tsv", "jsonl", "json"], key="pick-data-upload")
        if upload is None:
            return
        raw = upload.getvalue()
        try:
            columns = file_columns(raw, upload.name)
        except BhpvasError as exc:
            show_error(exc)
            return
        choice = _column_choice(str(save_upload(raw, upload.name)), columns, limit)
    elif kind == "File on the server":
        path = st.text_input("Path to a CSV, TSV or JSONL file", key="pick-data-path", placeholder="/data/reviews.csv")
        if not path.strip():
            return
        try:
            columns = file_columns(Path(path.strip()).expanduser().read_bytes(), Path(path.strip()).name)
        except OSError as exc:
            st.error(f"Cannot read {path.strip()}: {exc.strerror or exc}.", icon=":material/error:")
            return
        except BhpvasError as exc:
            show_error(exc)
            return
        choice = _column_choice(path.strip(), columns, limit)
    else:
        hub = st.text_input("Hub dataset id (needs a network and the datasets package)", key="pick-data-hub")
        if not hub.strip():
            return
        choice = DataChoice(hub.strip(), rows=limit)
    if st.button("Use this dataset", key="pick-data-apply", disabled=choice.key() == ss["data"]):
        _apply(ss["model"], choice.key())


def _column_choice(source: str, columns: list[str], rows: int | None) -> DataChoice:
    """Column pickers for a file: text, optional second text (sentence pairs) and label."""
    lower = [c.lower() for c in columns]
    guess_text = next((i for i, c in enumerate(lower) if c in ("sentence", "text", "sentence1", "question", "premise", "review")), 0)
    guess_label = next((i for i, c in enumerate(lower) if c in ("label", "labels", "target", "class", "y", "sentiment")), len(columns) - 1)
    left, middle, right = st.columns(3)
    text = left.selectbox("Text column", columns, index=guess_text, key="pick-col-text")
    pair = middle.selectbox("Second text (pairs)", ["(none)", *columns], key="pick-col-pair")
    label = right.selectbox("Label column", columns, index=guess_label, key="pick-col-label")
    return DataChoice(source, text=text, pair=None if pair == "(none)" else pair, label=label, rows=rows)


if ss["model"] == DEFAULT_MODEL and not demo_available():
    st.warning(f"The embedded demo model is missing from `{DEMO_DIR}`.")
    if st.button("Build the demo model (about 30 minutes on a laptop CPU)"):
        bar = st.progress(0.0, text="Fine-tuning")
        prepare_demo(progress=lambda f, m: bar.progress(f, text=f"Fine-tuning: {m}"))
        st.rerun()

try:
    cached_model(ss["model"])
    cached_dataset(ss["data"])
    broken = False
except BhpvasError:
    broken = True

with st.expander("Model and dataset", expanded=broken, icon=":material/folder_open:"):
    left, right = st.columns(2, gap="large")
    with left:
        model_picker()
    with right:
        data_picker()

ctx = page_context(on_overview=True)
facts = ctx.lm.describe()
try:
    full = ctx.full()
except BhpvasError as exc:
    show_error(exc)
    st.stop()

left, middle, right, last = st.columns(4)
left.metric("Architecture", facts["architecture"], help=f"model type {facts['model_type']}, hidden size {facts['hidden_size']}")
middle.metric("Heads", f"{facts['layers']} × {facts['heads_per_layer']}", help=f"layers × heads per layer; head size {facts['head_dim']}")
right.metric("Parameters", f"{facts['parameters'] / 1e6:.1f} M")
last.metric(f"Accuracy on {ctx.dataset.name}", f"{full.accuracy:.2%}", help=f"{full.n} samples, mean loss {full.loss:.3f}")
labels = ", ".join(f"{i}: {name}" for i, name in sorted(facts["labels"].items()))
pair = " (sentence pairs)" if ctx.dataset.is_pair else ""
st.caption(
    f"Model `{ctx.model_source}` on {facts['device']} · labels {labels} · "
    f"dataset {ctx.dataset.name}{pair}, {len(ctx.dataset)} rows, text column(s) {', '.join(ctx.dataset.text_columns)}, "
    f"label column {ctx.dataset.label_column}."
)
for notice in full.notices + ctx.lm.notices:
    st.info(notice)

st.subheader("Head analysis", anchor=False)
bundle = ctx.known_bundle()
if bundle is None:
    st.caption("Computing attention statistics, importance, similarity, roles and dependency alignment for every head…")
bundle = page_bundle(ctx)
summary = bundle.summary()
roles = ", ".join(f"{count} {role}" for role, count in summary["role_counts"].items() if count) or "none"
st.caption(
    f"Ready: {bundle.num_layers * bundle.num_heads} heads analysed on {bundle.data} (cached on disk). "
    f"Functional roles: {roles}. Head map by {bundle.map_method.upper()}."
)

grid_col, info_col = st.columns([3, 2], gap="large")
with grid_col:
    fig = grid_figure(
        bundle.importance.display(),
        title="Importance (Michel et al.; min-max scaled) — dark = unimportant",
        value_name="importance",
        colorscale="Viridis",
        pruned=~ctx.scheme.keep_mask(),
        selected=ctx.selection,
    )
    draw_chart(fig, "overview-grid", on_heads=set_selection)
    st.caption(
        "Crossed cells are pruned in the current scheme; outlined cells are selected. Click a head to select it (box select in the chart toolbar picks many)."
    )
    figure_download(fig, "importance-grid", "overview-grid-html")
with info_col:
    st.markdown("**Heads at the ends of each criterion** (layer.head)")
    ranked = summary["ranked"]
    rows = [
        {"criterion": name, "lowest": ", ".join(ranked[name]["bottom"]), "highest": ", ".join(ranked[name]["top"])}
        for name in ("importance", "stability", "similarity")
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    corr = summary["spearman"]
    st.caption("Spearman correlations: " + ", ".join(f"{k.replace('~', ' ~ ')} {v:+.2f}" for k, v in corr.items() if v is not None))
    if ctx.selection:
        st.markdown("**Selected:** " + ", ".join(head_label(h) for h in sorted(ctx.selection)))
    st.page_link("pages/heads.py", label="Inspect heads", icon=":material/grid_view:")
    st.page_link("pages/scheme.py", label="Build and export a scheme", icon=":material/content_cut:")
