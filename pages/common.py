"""Cached access to pruning_core for the pages: models as resources, results as data keyed by strings."""

from __future__ import annotations

import streamlit as st

from pruning_core import BhpvasError, LoadedModel, load_dataset, load_model
from pruning_core.data import TextDataset
from pruning_core.evaluation import EvalResult, evaluate
from pruning_core.schemes import Scheme

DEFAULT_MODEL = "demo"
DEFAULT_DATA = "sst2"


@st.cache_resource(show_spinner="Loading model…")
def cached_model(source: str) -> LoadedModel:
    """One shared model per source string; pages gate it with hooks and never modify it."""
    return load_model(source)


@st.cache_resource(show_spinner="Loading data…")
def cached_dataset(source: str) -> TextDataset:
    return load_dataset(source)


def streamlit_progress(label: str):
    """A progress callback drawing a Streamlit progress bar, and a function to remove the bar."""
    bar = st.progress(0.0, text=label)

    def report(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {message}")

    return report, bar.empty


def evaluate_scheme(model_source: str, data_source: str, scheme_key: str) -> EvalResult:
    """Masked evaluation of a scheme, from the disk cache when computed before."""
    lm = cached_model(model_source)
    dataset = cached_dataset(data_source)
    scheme = Scheme.from_key(scheme_key, lm.num_layers, lm.num_heads, model_source)
    report, clear = streamlit_progress("Evaluating")
    try:
        return evaluate(lm, dataset, scheme, progress=report)
    finally:
        clear()


def show_error(exc: BhpvasError) -> None:
    st.error(str(exc), icon=":material/error:")
