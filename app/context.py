"""What a page works on: the loaded model and data, the current scheme and selection.

A page starts with :func:`page_context` (and :func:`page_bundle` when it needs the analysis); a bad
model, dataset or analysis shows its message and stops the page instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from app import links
from app.keys import Head, parse_heads
from app.plain import code_span
from app.resources import analysis_bundle, cached_data_sets, cached_dataset, cached_model, evaluation, known_bundle
from app.state import DATA, INITIALISED, MODEL, SCHEME, SEL, ignore_link_value, init_state, write_url
from pruning_core import BhpvasError, LoadedModel
from pruning_core.analysis import AnalysisBundle
from pruning_core.calibration import DataSets
from pruning_core.data import TextDataset
from pruning_core.evaluation import EvalResult
from pruning_core.schemes import Scheme


@dataclass
class Context:
    """Everything a page needs: the loaded model and data, the current scheme and selection.

    ``dataset`` is the evaluation set (accuracy, curves, samples); ``sets`` also holds the
    calibration set that scores and orders come from.
    """

    model_source: str
    data_key: str
    lm: LoadedModel
    dataset: TextDataset
    scheme: Scheme
    selection: set[Head]
    sets: DataSets

    @property
    def shape(self) -> tuple[int, int]:
        return self.lm.num_layers, self.lm.num_heads

    def scheme_of(self, pruned: set[Head]) -> Scheme:
        return Scheme(self.shape[0], self.shape[1], frozenset(pruned), self.model_source)

    def full(self) -> EvalResult:
        return evaluation(self.lm, self.dataset, None)

    def current(self) -> EvalResult:
        return evaluation(self.lm, self.dataset, self.scheme)

    def evaluate(self, pruned: set[Head]) -> EvalResult:
        return evaluation(self.lm, self.dataset, self.scheme_of(pruned))

    def bundle(self) -> AnalysisBundle:
        return analysis_bundle(self.lm, self.sets)

    def known_bundle(self) -> AnalysisBundle | None:
        return known_bundle(self.lm, self.sets)

    def provenance(self, scores: bool = True, accuracy: bool = True) -> str:
        """Which set each kind of number comes from, e.g. ``scores: calibration set — …; accuracy:
        evaluation set — …; fp32`` (plain text: it quotes data names)."""
        parts = []
        if scores:
            parts.append(f"scores: calibration set — {self.sets.calibration_description}")
        if accuracy:
            parts.append(f"accuracy: evaluation set — {self.sets.evaluation_description}; {self.lm.precision}")
        return "; ".join(parts)

    def label_name(self, class_id: int) -> str:
        return self.lm.id2label.get(int(class_id), str(class_id))


def load_context() -> Context:
    """The current model, dataset, scheme and selection; raises BhpvasError for bad model or data.

    A scheme or selection from the URL that does not fit the model is reported once and dropped.
    """
    ss = st.session_state
    if not ss.get(INITIALISED):
        init_state()
    lm = cached_model(ss[MODEL])
    dataset = cached_dataset(ss[DATA])
    sets = cached_data_sets(ss[DATA])
    layers, heads = lm.num_layers, lm.num_heads
    try:
        scheme = Scheme.from_key(ss[SCHEME], layers, heads, ss[MODEL])
    except BhpvasError as exc:
        ignore_link_value(SCHEME, "Ignoring the scheme from the link: " + code_span(str(exc)))
        scheme = Scheme.empty(layers, heads, ss[MODEL])
    try:
        selection = parse_heads(ss[SEL], layers, heads)
    except BhpvasError as exc:
        ignore_link_value(SEL, "Ignoring the selection from the link: " + code_span(str(exc)))
        selection = set()
    write_url()
    return Context(ss[MODEL], ss[DATA], lm, dataset, scheme, selection, sets)


def page_context(on_overview: bool = False) -> Context:
    """:func:`load_context` for a page: a bad model or dataset shows its message and stops the page
    (with a link to the Overview's pickers, unless this is the Overview)."""
    try:
        return load_context()
    except BhpvasError as exc:
        show_error(exc)
        if on_overview:
            st.info("Choose another model or dataset above.")
        else:
            st.info("Choose another model or dataset on the Overview page.")
            links.page_link("overview", label="Go to Overview", icon=":material/dashboard:")
        st.stop()
        raise


def page_bundle(ctx: Context) -> AnalysisBundle:
    """The analysis bundle for a page; an analysis error shows its message and stops the page."""
    try:
        return ctx.bundle()
    except BhpvasError as exc:
        show_error(exc)
        st.stop()
        raise


def show_error(exc: BhpvasError) -> None:
    """An error message; it may quote user input, so it is shown literally (never as Markdown)."""
    st.error(code_span(str(exc)), icon=":material/error:")


def rerun_after(action: Callable[[], object]) -> None:
    """Run a button's ``action`` and rerun the script to draw its result; if it fails with a
    :class:`BhpvasError`, show the message instead and let the rest of the page draw as it was."""
    try:
        action()
    except BhpvasError as exc:
        show_error(exc)
        return
    st.rerun()


def evidence_page(title: str, question: str) -> tuple[Context, AnalysisBundle]:
    """A page's title and question, its context and analysis bundle, and where the scores come from."""
    st.title(title, anchor=False)
    st.caption(question)
    ctx = page_context()
    bundle = page_bundle(ctx)
    st.text(ctx.provenance(accuracy=False))
    return ctx, bundle
