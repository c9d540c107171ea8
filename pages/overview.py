"""Overview: what did I load and how good is it? Model and dataset pickers, the model's facts and
accuracy, and the head analysis at a glance."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import links
from app.context import Context, page_bundle, page_context, show_error
from app.keys import DEFAULT_MODEL, DataChoice, head_label
from app.plain import code_span, escape_markdown
from app.resources import adopt_results, cached_dataset, cached_model, check_labels
from app.state import DATA, MODEL, set_selection, set_sources
from app.uploads import save_upload
from app.views.head_grid import grid_figure, visualize_head_grid
from app.views.table import visualize_table
from pruning_core import BhpvasError
from pruning_core.data import columns_of_file, file_columns
from pruning_core.demo import DEMO_DIR, demo_available, prepare_demo
from pruning_core.policy import SourcePolicy
from pruning_core.results import open_results, open_results_zip
from pruning_core.uploads import uploads_root

MODEL_KINDS = ("Embedded demo", "Local folder", "Hub id")
DATA_KINDS = ("Bundled SST-2", "Upload a file", "File on the server", "Hub dataset")
TEXT_COLUMN_GUESSES = ("sentence", "text", "sentence1", "question", "premise", "review")
LABEL_COLUMN_GUESSES = ("label", "labels", "target", "class", "y", "sentiment")


def apply_sources(model: str, data: str) -> None:
    """Switch to ``model`` and ``data`` if both load and the labels fit; otherwise say why and keep the current ones."""
    try:
        check_labels(cached_model(model), cached_dataset(data))
    except BhpvasError as exc:
        show_error(exc)
        return
    set_sources(model, data)
    st.rerun()


def model_picker() -> None:
    current = st.session_state[MODEL]
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
        apply_sources(source.strip(), st.session_state[DATA])


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
        choice = column_choice(str(save_upload(raw, upload.name)), columns, limit)
    elif kind == "File on the server":
        path = st.text_input("Path to a CSV, TSV or JSONL file", key="pick-data-path", placeholder="/data/reviews.csv").strip()
        if not path:
            return
        try:
            columns = columns_of_file(path, SourcePolicy.from_env(), always_allowed=(uploads_root(),))
        except BhpvasError as exc:
            show_error(exc)
            return
        choice = column_choice(path, columns, limit)
    else:
        hub = st.text_input("Hub dataset id (needs a network and the datasets package)", key="pick-data-hub")
        if not hub.strip():
            return
        choice = DataChoice(hub.strip(), rows=limit)
    if st.button("Use this dataset", key="pick-data-apply", disabled=choice.key() == st.session_state[DATA]):
        apply_sources(st.session_state[MODEL], choice.key())


def column_choice(source: str, columns: list[str], rows: int | None) -> DataChoice:
    """Column pickers for a file: text, optional second text (sentence pairs) and label."""
    lower = [c.lower() for c in columns]
    guess_text = next((i for i, c in enumerate(lower) if c in TEXT_COLUMN_GUESSES), 0)
    guess_label = next((i for i, c in enumerate(lower) if c in LABEL_COLUMN_GUESSES), len(columns) - 1)
    left, middle, right = st.columns(3)
    text = left.selectbox("Text column", columns, index=guess_text, key="pick-col-text")
    pair = middle.selectbox("Second text (pairs)", ["(none)", *columns], key="pick-col-pair")
    label = right.selectbox("Label column", columns, index=guess_label, key="pick-col-label")
    return DataChoice(source, text=text, pair=None if pair == "(none)" else pair, label=label, rows=rows)


def demo_builder() -> None:
    """When the embedded demo model is missing: offer to build it."""
    st.warning(f"The embedded demo model is missing from {code_span(str(DEMO_DIR))}.")
    if st.button("Build the demo model (about 30 minutes on a laptop CPU)"):
        bar = st.progress(0.0, text="Fine-tuning")
        prepare_demo(progress=lambda f, m: bar.progress(f, text=f"Fine-tuning: {m}"))
        st.rerun()


def sources_open() -> bool:
    """Whether the current model and dataset open (else the pickers start expanded)."""
    try:
        cached_model(st.session_state[MODEL])
        cached_dataset(st.session_state[DATA])
    except BhpvasError:
        return False
    return True


def results_picker(ctx: Context) -> None:
    """Open results written by the command line elsewhere (e.g. on a GPU box) for this model and data."""
    with st.expander("Open results computed elsewhere", icon=":material/upload_file:"):
        st.caption(
            "A folder written by `python -m pruning_core analyze --out DIR` or `curves --out DIR` (for example on a GPU box), "
            "or a zip of it. Results open only for the model and data they were computed for."
        )
        upload = st.file_uploader("Zip of a results folder", type=["zip"], key="pick-results-zip")
        path = st.text_input("Or a results folder on the server", key="pick-results-path").strip()
        if not st.button("Open these results", key="pick-results-open", disabled=upload is None and not path):
            return
        try:
            if upload is not None:
                opened = open_results_zip(upload.getvalue(), upload.name, ctx.lm, ctx.sets.evaluation, ctx.sets.calibration)
            else:
                SourcePolicy.from_env().check_data(path, always_allowed=(uploads_root(),))
                opened = open_results(Path(path).expanduser(), ctx.lm, ctx.sets.evaluation, ctx.sets.calibration)
        except BhpvasError as exc:
            show_error(exc)
            return
        adopt_results(ctx.lm, ctx.sets, opened)
        st.success(f"Opened {code_span(opened.describe())}.", icon=":material/check:")


def render() -> None:
    st.title("bhpvas: attention head pruning")
    st.caption(
        "Which attention heads of a fine-tuned BERT-family classifier can go, and why? "
        "Load a model and a labelled dataset, read the per-head evidence, build a scheme, check it, prune for real."
    )
    if st.session_state[MODEL] == DEFAULT_MODEL and not demo_available():
        demo_builder()
    with st.expander("Model and dataset", expanded=not sources_open(), icon=":material/folder_open:"):
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
    middle.metric(
        "Heads", f"{facts['layers']} × {facts['heads_per_layer']}", help=f"layers × heads per layer; head size {facts['head_dim']}"
    )
    right.metric("Parameters", f"{facts['parameters'] / 1e6:.1f} M")
    last.metric(
        f"Accuracy on {escape_markdown(ctx.dataset.name)}",
        f"{full.accuracy:.2%}",
        help=f"{full.n} samples of the evaluation set, mean loss {full.loss:.3f}, {ctx.lm.precision}",
    )
    labels = ", ".join(f"{i}: {name}" for i, name in sorted(facts["labels"].items()))
    pair = " (sentence pairs)" if ctx.dataset.is_pair else ""
    st.caption(
        f"Model {code_span(ctx.model_source)} on {facts['device']} · labels {code_span(labels)} · "
        f"dataset {code_span(ctx.dataset.name)}{pair}, {len(ctx.dataset)} rows, "
        f"text column(s) {code_span(', '.join(ctx.dataset.text_columns))}, label column {code_span(str(ctx.dataset.label_column))}."
    )
    st.text(ctx.provenance())
    for notice in full.notices + ctx.lm.notices:
        st.info(notice)

    results_picker(ctx)
    st.subheader("Head analysis", anchor=False)
    if ctx.known_bundle() is None:
        st.caption("Computing attention statistics, importance, similarity, roles and dependency alignment for every head…")
    bundle = page_bundle(ctx)
    summary = bundle.summary()
    roles = ", ".join(f"{count} {role}" for role, count in summary["role_counts"].items() if count) or "none"
    st.caption(
        f"Ready: {bundle.num_layers * bundle.num_heads} heads analysed on {escape_markdown(bundle.data)} (cached on disk). "
        f"Functional roles: {roles}. Head map by {bundle.map_method.upper()}."
    )
    grid_col, info_col = st.columns([3, 2], gap="large")
    with grid_col:
        fig = grid_figure(
            bundle.importance.display(),
            title="Importance (Michel et al.; min-max scaled) — dark = unimportant",
            value_name="importance",
            pruned=~ctx.scheme.keep_mask(),
            selected=ctx.selection,
        )
        visualize_head_grid(fig, key="overview-grid", name="importance-grid", on_heads=set_selection)
        st.caption(
            "Crossed cells are pruned in the current scheme; outlined cells are selected. "
            "Click a head to select it (box select in the chart toolbar picks many)."
        )
    with info_col:
        st.markdown("**Heads at the ends of each criterion** (layer.head)")
        ranked = summary["ranked"]
        rows = [
            {"criterion": name, "lowest": ", ".join(ranked[name]["bottom"]), "highest": ", ".join(ranked[name]["top"])}
            for name in ("importance", "stability", "similarity")
        ]
        visualize_table(rows)
        corr = summary["spearman"]
        st.caption("Spearman correlations: " + ", ".join(f"{k.replace('~', ' ~ ')} {v:+.2f}" for k, v in corr.items() if v is not None))
        if ctx.selection:
            st.markdown("**Selected:** " + ", ".join(head_label(h) for h in sorted(ctx.selection)))
        links.page_link("heads", label="Inspect heads", icon=":material/grid_view:")
        links.page_link("scheme", label="Build and export a scheme", icon=":material/content_cut:")
