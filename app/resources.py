"""Resources shared by every session of the server: models, datasets, result stores, the job gate.

Models and datasets are Streamlit resources keyed by their source strings (every source passes the
server's :class:`~pruning_core.policy.SourcePolicy` first). Evaluation results, analysis bundles and
pruning curves are kept in bounded :class:`~pruning_core.lru.LRUCache` stores keyed by model and data
fingerprints (the core's disk cache sits underneath). Heavy work runs through the process-wide job
gate of :mod:`pruning_core.jobs`, with a message while it waits.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import streamlit as st

from app.keys import DataChoice
from pruning_core import LoadedModel, load_dataset, load_model
from pruning_core.analysis import AnalysisBundle, analyze
from pruning_core.batching import mask_key
from pruning_core.cache import single_flight
from pruning_core.calibration import DEFAULT_CALIBRATION_ROWS, DataSets, data_sets
from pruning_core.curves import CurveParams, Curves, compute_curves
from pruning_core.data import TextDataset
from pruning_core.defaults import OFFERED_STRATEGIES
from pruning_core.evaluation import EvalResult, evaluate
from pruning_core.incremental import prefix_store
from pruning_core.jobs import heavy_job, job_gate
from pruning_core.lru import LRUCache, nbytes_of
from pruning_core.policy import SourcePolicy
from pruning_core.progress import throttled
from pruning_core.repair_curves import add_repaired_curves, repaired_knee_table
from pruning_core.results import OpenedResults, shipped_results
from pruning_core.schemes import Scheme
from pruning_core.uploads import check_upload_exists, uploads_root

EVALUATION_BYTES = 512 * 2**20


def cached_model(source: str) -> LoadedModel:
    """The shared model of ``source``, if this server's source policy allows it (else ModelLoadError).

    The policy (``BHPVAS_MODEL_ROOTS``, ``BHPVAS_ALLOW_HUB``) is checked on every call, also for a
    model already in memory, so no session opens what the server does not allow.
    """
    SourcePolicy.from_env().check(source)
    return shared_model(source)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def shared_model(source: str) -> LoadedModel:
    """One shared model per source string; pages gate it with per-call hooks and never modify it."""
    return load_model(source)


def cached_dataset(key: str) -> TextDataset:
    """The shared dataset of a data key (see :class:`DataChoice`), if this server's data policy
    (``BHPVAS_DATA_ROOTS``) allows it; an upload of an ended session is refused."""
    source = DataChoice.parse(key).source
    SourcePolicy.from_env().check_data(source, always_allowed=(uploads_root(),))
    check_upload_exists(source)
    return shared_dataset(key)


@st.cache_resource(show_spinner="Loading data…", max_entries=8)
def shared_dataset(key: str) -> TextDataset:
    """One shared dataset per data key (see :class:`DataChoice`)."""
    choice = DataChoice.parse(key)
    return load_dataset(
        choice.source,
        text_column=choice.text,
        text_pair_column=choice.pair,
        label_column=choice.label,
        max_rows=choice.rows,
        policy=SourcePolicy.from_env(),
        always_allowed=(uploads_root(),),
    )


def cached_data_sets(key: str) -> DataSets:
    """The calibration and evaluation sets of a data key: the bundled ``sst2`` calibrates on
    2,000 seeded train sentences (at most ``rows=`` when the key limits rows) and evaluates on dev;
    any other data calibrates on itself."""
    cached_dataset(key)
    return shared_data_sets(key)


@st.cache_resource(show_spinner="Loading the calibration set…", max_entries=8)
def shared_data_sets(key: str) -> DataSets:
    choice = DataChoice.parse(key)
    rows = min(DEFAULT_CALIBRATION_ROWS, choice.rows) if choice.rows else DEFAULT_CALIBRATION_ROWS
    return data_sets(choice.source, shared_dataset(key), rows=rows)


def check_labels(lm: LoadedModel, dataset: TextDataset) -> None:
    """Raise DataError when the dataset's labels do not fit the model (unknown or mixed labels)."""
    dataset.label_ids(lm.label2id, lm.num_labels)


def result_bytes(value: object) -> int:
    """Size of a result object: the arrays among its attributes."""
    return nbytes_of(list(vars(value).values())) if hasattr(value, "__dict__") else nbytes_of(value)


@st.cache_resource
def evaluation_store() -> LRUCache[EvalResult]:
    return LRUCache(max_entries=256, max_bytes=EVALUATION_BYTES, sizeof=result_bytes)


@st.cache_resource
def bundle_store() -> LRUCache[AnalysisBundle]:
    return LRUCache(max_entries=6)


@st.cache_resource
def curve_store() -> LRUCache[Curves]:
    return LRUCache(max_entries=6)


@st.cache_resource
def knee_table_store() -> LRUCache[tuple[Curves, tuple[list[dict], list[dict]]]]:
    return LRUCache(max_entries=16)


def knee_tables(curves: Curves) -> tuple[list[dict], list[dict]]:
    """``curves``' knee table and plain-against-repaired knee table, computed once per curves object.

    Curves in the store are never changed in place (adding repaired curves makes a new object), so
    the object's identity is the key; the entry holds the object, so its id is not reused meanwhile.
    """
    hit = knee_table_store().get(id(curves))
    if hit is not None and hit[0] is curves:
        return hit[1]
    plain = curves.knee_table()
    tables = (plain, repaired_knee_table(curves, plain))
    knee_table_store().put(id(curves), (curves, tables))
    return tables


def jobs_waiting_text(ahead: int, limit: int) -> str:
    """The message shown while a heavy job waits for its turn."""
    jobs = "job" if ahead == 1 else "jobs"
    at_once = "one heavy job at a time" if limit == 1 else f"at most {limit} heavy jobs at a time"
    return f"Waiting for {ahead} other {jobs} to finish… (this server runs {at_once}; change any setting or reload to cancel)"


def session_owner() -> str:
    """This session's owner token for the job gate: one waiting job per session."""
    if "job_owner" not in st.session_state:
        st.session_state["job_owner"] = secrets.token_hex(8)
    return st.session_state["job_owner"]


@contextmanager
def queued_job(name: str) -> Iterator[None]:
    """A heavy job through the server's job gate (``BHPVAS_MAX_JOBS``), with a message while it waits.

    The message is redrawn on every poll of the gate, so a session that is closed or rerun while
    waiting gives up its place (Streamlit stops the script at its next element).
    """
    slot = st.empty()

    def wait(ahead: int) -> None:
        slot.info(f"{name}: {jobs_waiting_text(ahead, job_gate().limit)}", icon=":material/hourglass_top:")

    try:
        with heavy_job(name, wait=wait, owner=session_owner()):
            slot.empty()
            yield
    finally:
        slot.empty()


PROGRESS_INTERVAL_S = 0.25
"""Least time between two redraws of a progress bar: each redraw is a message the browser renders,
and on a small machine that shares its cores with the browser, redrawing per batch slowed a
one-second evaluation by about a fifth."""


def lazy_progress(label: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """A progress callback that draws a bar once work is reported (then at most every
    :data:`PROGRESS_INTERVAL_S`, and always at the end), and a function removing it."""
    slot = st.empty()

    def draw(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {message}")

    return throttled(draw, PROGRESS_INTERVAL_S), slot.empty


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[float, str], None]]:
    """:func:`lazy_progress` as a context: the bar is removed when the work ends."""
    report, clear = lazy_progress(label)
    try:
        yield report
    finally:
        clear()


def evaluation(lm: LoadedModel, dataset: TextDataset, scheme: Scheme | None) -> EvalResult:
    """Masked evaluation of ``scheme`` (None: the full model), from memory or the disk cache when known.

    Hidden states are remembered (memory-bounded), so toggling one head recomputes only the layers
    from that head's layer up.
    """
    key = (lm.fingerprint, lm.precision, dataset.fingerprint, scheme.key() if scheme is not None else "none")
    hit = evaluation_store().get(key)
    if hit is not None:
        prefix_store(lm).touch(mask_key(hit.keep_mask))
        return hit
    pruned = len(scheme.pruned) if scheme is not None else 0
    label = f"Evaluating the scheme ({pruned} heads pruned)" if pruned else "Evaluating the full model"
    with queued_job("Evaluation"), progress_bar(label) as report:
        result = evaluate(lm, dataset, scheme, progress=report, remember=True)
    evaluation_store().put(key, result)
    return result


@st.cache_resource(show_spinner=False, max_entries=8)
def shipped(model_fingerprint: str, evaluation_fingerprint: str, calibration_fingerprint: str, _lm: LoadedModel, _sets: DataSets):
    """The demo's shipped results for exactly this model and these sets (None for anything else)."""
    return shipped_results(_lm, _sets.evaluation, _sets.calibration)


def adopt_results(lm: LoadedModel, sets: DataSets, opened: OpenedResults) -> None:
    """Put results made elsewhere (shipped with the demo, or opened by the user) into the stores."""
    if opened.bundle is not None:
        bundle_store().put((lm.fingerprint, sets.calibration.fingerprint), opened.bundle)
    if opened.curves is not None:
        curve_store().put(_curve_key(lm, sets), opened.curves)
    result_sources().put(_curve_key(lm, sets), opened.describe())


@st.cache_resource
def result_sources() -> LRUCache[str]:
    """Where the analysis and curves of a (model, sets) came from when not computed here."""
    return LRUCache(max_entries=64)


def results_source(lm: LoadedModel, sets: DataSets) -> str | None:
    """ "analysis and curves from … (bf16, computed …)" when they were shipped or opened, else None."""
    return result_sources().get(_curve_key(lm, sets))


def _with_shipped(lm: LoadedModel, sets: DataSets) -> None:
    opened = shipped(lm.fingerprint, sets.evaluation.fingerprint, sets.calibration.fingerprint, lm, sets)
    if opened is not None and _curve_key(lm, sets) not in result_sources():
        adopt_results(lm, sets, opened)


def known_bundle(lm: LoadedModel, sets: DataSets) -> AnalysisBundle | None:
    """The analysis bundle of the calibration set if this process holds it or the demo ships it (never computes)."""
    hit = bundle_store().get((lm.fingerprint, sets.calibration.fingerprint))
    if hit is None:
        _with_shipped(lm, sets)
        hit = bundle_store().get((lm.fingerprint, sets.calibration.fingerprint))
    return hit


def analysis_bundle(lm: LoadedModel, sets: DataSets) -> AnalysisBundle:
    """The analysis bundle of the calibration set, computed with a progress bar when needed
    (reopened from disk when cached there).

    A second session asking for the same analysis waits for the first. When the bundle was not in
    memory, the app reruns afterwards so the sidebar sees it too.
    """
    bundle = known_bundle(lm, sets)
    if bundle is not None:
        return bundle
    key = (lm.fingerprint, sets.calibration.fingerprint)
    with single_flight(f"app-analysis:{key[0]}:{key[1]}"):
        if known_bundle(lm, sets) is None:
            label = "Analysing every head on the calibration set (once per model and data, then cached)"
            with queued_job("Head analysis"), progress_bar(label) as report:
                bundle = analyze(lm, sets.calibration, progress=report, calibration=sets.calibration_description)
                bundle_store().put(key, bundle)
    st.rerun()
    raise AssertionError("unreachable")


def _curve_key(lm: LoadedModel, sets: DataSets) -> tuple[str, str, str]:
    return lm.fingerprint, sets.calibration.fingerprint, sets.evaluation.fingerprint


def known_curves(lm: LoadedModel, sets: DataSets) -> Curves | None:
    """The pruning curves last computed in this process for this model and these sets, or shipped with the demo."""
    hit = curve_store().get(_curve_key(lm, sets))
    if hit is None:
        _with_shipped(lm, sets)
        hit = curve_store().get(_curve_key(lm, sets))
    return hit


def pruning_curves(lm: LoadedModel, sets: DataSets, bundle: AnalysisBundle, strategies: Iterable[str]) -> Curves:
    """Compute the strategies' curves on the evaluation set, orders learned on the calibration set,
    with a progress bar (evaluations come from the disk cache when known)."""
    wanted = set(strategies)
    with queued_job("Pruning curves"), progress_bar("Pruning with each strategy") as report:
        params = CurveParams(strategies=tuple(s for s in OFFERED_STRATEGIES if s in wanted))
        curves = compute_curves(
            lm, sets.evaluation, bundle, params, progress=report, calibration=sets.calibration, descriptions=sets.describe()
        )
    curve_store().put(_curve_key(lm, sets), curves)
    return curves


def repaired_pruning_curves(lm: LoadedModel, sets: DataSets, curves: Curves, strategies: Iterable[str]) -> Curves:
    """``curves`` with the "+ repair" curves of ``strategies`` added (to a copy), computed through the
    job gate with a progress bar and stored for this model and these sets.

    Each repaired curve is cached on disk by the model's, the calibration set's and the evaluation
    set's fingerprints, the strategy's orders and the repair settings, so it is computed once
    (a second session asking for it waits, then reads it).
    """
    wanted = set(strategies)
    names = tuple(name for name in curves.curves if name in wanted)
    with queued_job("Repaired curves"), progress_bar("Repairing every point of each curve") as report:
        updated = add_repaired_curves(
            lm, sets.evaluation, sets.calibration, dataclasses.replace(curves, extra=dict(curves.extra)), names, progress=report
        )
    curve_store().put(_curve_key(lm, sets), updated)
    return updated
