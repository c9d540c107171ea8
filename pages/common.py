"""Shared app state, cached access to pruning_core, and the sidebar.

State lives in ``st.session_state`` (``model``, ``data``, ``scheme``, ``sel``) and is mirrored into
the URL on every run, so a copied link reopens the same view. A session's first run adopts the URL.
Models and datasets are shared resources keyed by their source strings (every model source passes
the server's :class:`~pruning_core.policy.SourcePolicy` first); evaluation results and analysis
bundles are kept in small in-memory stores keyed by model and data fingerprints and the scheme key
(the core's disk cache sits underneath). Heavy work (analysis, curves, pruning reports) runs through
the process-wide job gate of :mod:`pruning_core.jobs`; uploads live in a per-session folder that is
removed with the session (:mod:`pruning_core.uploads`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from pruning_core import BhpvasError, LoadedModel, load_dataset, load_model
from pruning_core.analysis import AnalysisBundle, analyze
from pruning_core.curves import DEFAULT_STRATEGIES, CurveParams, Curves, compute_curves
from pruning_core.data import TextDataset
from pruning_core.evaluation import EvalResult, evaluate
from pruning_core.jobs import heavy_job, job_gate
from pruning_core.policy import SourcePolicy
from pruning_core.schemes import Scheme
from pruning_core.strategies.composite import Thresholds
from pruning_core.uploads import EndedSessionSweeper, UploadSession, check_upload_exists, sweep_uploads, uploads_root

DEFAULT_MODEL = "demo"
DEFAULT_DATA = "sst2"
URL_KEYS = ("model", "data", "scheme", "sel")
Head = tuple[int, int]


# --- data keys: "source" or "source|text=a|pair=b|label=c|rows=N" -------------------------------


@dataclass(frozen=True)
class DataChoice:
    """A dataset as the user chose it: source plus optional column names and a row limit."""

    source: str
    text: str | None = None
    pair: str | None = None
    label: str | None = None
    rows: int | None = None

    def key(self) -> str:
        parts = [self.source]
        for name in ("text", "pair", "label", "rows"):
            value = getattr(self, name)
            if value not in (None, ""):
                parts.append(f"{name}={value}")
        return "|".join(parts)

    @classmethod
    def parse(cls, key: str) -> DataChoice:
        source, *options = key.split("|")
        values: dict[str, str] = {}
        for option in options:
            name, _, value = option.partition("=")
            if name not in ("text", "pair", "label", "rows") or not value:
                raise BhpvasError(f"Cannot read the dataset option {option!r} in {key!r}; expected text=, pair=, label= or rows=.")
            values[name] = value
        rows = values.pop("rows", None)
        if rows is not None and not rows.isdigit():
            raise BhpvasError(f"rows={rows!r} in the dataset {key!r} must be a positive whole number.")
        return cls(source.strip() or DEFAULT_DATA, rows=int(rows) if rows else None, **values)


def head_label(head: Head) -> str:
    return f"{head[0]}.{head[1]}"


def heads_key(heads: Iterable[Head]) -> str:
    """The URL form of a set of heads (as :meth:`Scheme.key`): ``0.3,5.11`` or ``none``."""
    return ",".join(head_label(h) for h in sorted(set(heads))) or "none"


def parse_heads(key: str, num_layers: int, num_heads: int) -> set[Head]:
    return set(Scheme.from_key(key or "none", num_layers, num_heads).pruned)


def all_heads(num_layers: int, num_heads: int) -> list[Head]:
    return [(layer, head) for layer in range(num_layers) for head in range(num_heads)]


# --- cached resources ------------------------------------------------------------------------------


def cached_model(source: str) -> LoadedModel:
    """The shared model of ``source``, if this server's source policy allows it (else ModelLoadError).

    The policy (``BHPVAS_MODEL_ROOTS``, ``BHPVAS_ALLOW_HUB``) is checked on every call, also for a
    model already in memory, so no session opens what the server does not allow.
    """
    SourcePolicy.from_env().check(source)
    return _shared_model(source)


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def _shared_model(source: str) -> LoadedModel:
    """One shared model per source string; pages gate it with per-call hooks and never modify it."""
    return load_model(source)


def cached_dataset(key: str) -> TextDataset:
    """The shared dataset of a data key (see :class:`DataChoice`), if this server's data policy
    (``BHPVAS_DATA_ROOTS``) allows it; an upload of an ended session is refused."""
    source = DataChoice.parse(key).source
    SourcePolicy.from_env().check_data(source, always_allowed=(uploads_root(),))
    check_upload_exists(source)
    return _shared_dataset(key)


@st.cache_resource(show_spinner="Loading data…", max_entries=8)
def _shared_dataset(key: str) -> TextDataset:
    """One shared dataset per data key (see :class:`DataChoice`)."""
    choice = DataChoice.parse(key)
    return load_dataset(
        choice.source, text_column=choice.text, text_pair_column=choice.pair, label_column=choice.label, max_rows=choice.rows
    )


def check_labels(lm: LoadedModel, dataset: TextDataset) -> None:
    """Raise DataError when the dataset's labels do not fit the model (unknown or mixed labels)."""
    dataset.label_ids(lm.label2id, lm.num_labels)


class _Store:
    """A small thread-safe LRU of results keyed by strings."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[tuple, object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource
def _evaluations() -> _Store:
    return _Store(256)


@st.cache_resource
def _bundles() -> _Store:
    return _Store(6)


@st.cache_resource
def _curves() -> _Store:
    return _Store(6)


@st.cache_resource
def _analysis_locks() -> dict[tuple[str, str], threading.Lock]:
    return {}


_ANALYSIS_LOCKS_GUARD = threading.Lock()


def _analysis_lock(key: tuple[str, str]) -> threading.Lock:
    """One lock per model and dataset: a second request for a running analysis waits for it."""
    with _ANALYSIS_LOCKS_GUARD:
        return _analysis_locks().setdefault(key, threading.Lock())


def jobs_waiting_text(ahead: int, limit: int) -> str:
    """The message shown while a heavy job waits for its turn."""
    jobs = "job" if ahead == 1 else "jobs"
    at_once = "one heavy job at a time" if limit == 1 else f"at most {limit} heavy jobs at a time"
    return f"Waiting for {ahead} other {jobs} to finish… (this server runs {at_once})"


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
        with heavy_job(name, wait=wait):
            slot.empty()
            yield
    finally:
        slot.empty()


def lazy_progress(label: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """A progress callback that draws a bar only once work is reported, and a function removing it."""
    slot = st.empty()

    def report(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {message}")

    return report, slot.empty


def evaluation(lm: LoadedModel, dataset: TextDataset, scheme: Scheme | None) -> EvalResult:
    """Masked evaluation of ``scheme`` (None: the full model), from memory or the disk cache when known.

    Hidden states are remembered (memory-bounded), so toggling one head recomputes only the layers
    from that head's layer up.
    """
    key = (lm.fingerprint, dataset.fingerprint, scheme.key() if scheme is not None else "none")
    hit = _evaluations().get(key)
    if hit is not None:
        return hit
    pruned = len(scheme.pruned) if scheme is not None else 0
    report, clear = lazy_progress(f"Evaluating the scheme ({pruned} heads pruned)" if pruned else "Evaluating the full model")
    try:
        result = evaluate(lm, dataset, scheme, progress=report, remember=True)
    finally:
        clear()
    _evaluations().put(key, result)
    return result


def known_bundle(lm: LoadedModel, dataset: TextDataset) -> AnalysisBundle | None:
    """The analysis bundle if this process already holds it (never computes)."""
    return _bundles().get((lm.fingerprint, dataset.fingerprint))


def analysis_bundle(lm: LoadedModel, dataset: TextDataset) -> AnalysisBundle:
    """The analysis bundle, computed with a progress bar when needed (reopened from disk when cached there).

    When it was not in memory, the app reruns afterwards so the sidebar sees it too.
    """
    bundle = known_bundle(lm, dataset)
    if bundle is not None:
        return bundle
    key = (lm.fingerprint, dataset.fingerprint)
    lock = _analysis_lock(key)
    if not lock.acquire(blocking=False):
        note = st.empty()
        note.info("The same analysis is running for another session; waiting for it…", icon=":material/hourglass_top:")
        lock.acquire()
        note.empty()
    try:
        bundle = known_bundle(lm, dataset)
        if bundle is None:
            with queued_job("Head analysis"):
                report, clear = lazy_progress("Analysing every head (once per model and dataset, then cached)")
                try:
                    bundle = analyze(lm, dataset, progress=report)
                finally:
                    clear()
            _bundles().put(key, bundle)
    finally:
        lock.release()
    st.rerun()
    raise AssertionError("unreachable")


def known_curves(lm: LoadedModel, dataset: TextDataset) -> Curves | None:
    """The pruning curves last computed in this process for this model and dataset, if any."""
    return _curves().get((lm.fingerprint, dataset.fingerprint))


def pruning_curves(lm: LoadedModel, dataset: TextDataset, bundle: AnalysisBundle, strategies: Iterable[str]) -> Curves:
    """Compute the strategies' curves with a progress bar (evaluations come from the disk cache when known)."""
    wanted = set(strategies)
    with queued_job("Pruning curves"):
        report, clear = lazy_progress("Pruning with each strategy")
        try:
            params = CurveParams(strategies=tuple(s for s in DEFAULT_STRATEGIES if s in wanted))
            curves = compute_curves(lm, dataset, bundle, params, progress=report)
        finally:
            clear()
    _curves().put((lm.fingerprint, dataset.fingerprint), curves)
    return curves


# --- session state and the URL -------------------------------------------------------------------


def run_from_app() -> None:
    """First line of every page: make sure the page runs inside ``app.py`` (state, sidebar, navigation).

    Streamlit treats a folder named ``pages/`` next to the entry script as a legacy multipage app
    until ``st.navigation`` runs once in the process, so a process's first request for a page URL
    (and every AppTest run after the first) executes the page file alone. Then this switches that
    mode off, runs ``app.py`` in place (which runs this page again, through the navigation) and
    stops the stray run; widget events of the run are kept, as nothing reruns.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not getattr(PagesManager, "uses_pages_directory", False):
        return
    PagesManager.uses_pages_directory = False
    main = Path(__file__).resolve().parent.parent / "app.py"
    exec(compile(main.read_text(), str(main), "exec"), {"__name__": "__main__", "__file__": str(main)})
    st.stop()


def init_state() -> None:
    """Adopt the URL on a session's first run; afterwards mirror the session state into the URL."""
    ss = st.session_state
    sweep_ended_uploads()
    if not ss.get("_bhpvas_init"):
        _startup_sweep()
        params = st.query_params
        ss["model"] = params.get("model", DEFAULT_MODEL) or DEFAULT_MODEL
        ss["data"] = params.get("data", DEFAULT_DATA) or DEFAULT_DATA
        ss["scheme"] = params.get("scheme", "none") or "none"
        ss["sel"] = params.get("sel", "none") or "none"
        ss["_bhpvas_init"] = True
    write_url()


def write_url() -> None:
    """Mirror model, data, scheme and selection into the URL (selection only when not empty)."""
    ss = st.session_state
    wanted = {"model": ss["model"], "data": ss["data"], "scheme": ss["scheme"]}
    if ss.get("sel", "none") != "none":
        wanted["sel"] = ss["sel"]
    params = st.query_params
    for name in URL_KEYS:
        if name in wanted and params.get(name) != wanted[name]:
            params[name] = wanted[name]
        elif name not in wanted and name in params:
            del params[name]


def set_sources(model: str, data: str) -> None:
    """Switch model and/or dataset; a new model starts with an empty scheme and selection."""
    ss = st.session_state
    if model != ss["model"]:
        ss["scheme"] = "none"
        ss["sel"] = "none"
        set_scheme_b(None)
    ss["model"] = model
    ss["data"] = data
    bump_views()
    write_url()


def set_scheme(heads: Iterable[Head] | Scheme) -> None:
    """Make ``heads`` (or a scheme's pruned heads) the current scheme."""
    pruned = heads.pruned if isinstance(heads, Scheme) else heads
    st.session_state["scheme"] = heads_key(pruned)
    bump_views()
    write_url()


def set_scheme_b(heads: Iterable[Head] | None) -> None:
    """Make ``heads`` the custom scheme B of the Scheme page (None: back to the sidebar's proposal)."""
    ss = st.session_state
    if heads is None:
        ss["scheme_b"] = None
        ss["scheme-b-source"] = ss["scheme_b_source"] = "BHPVAS proposal"
        ss.pop("scheme-b-text", None)
        return
    ss["scheme_b"] = heads_key(heads)
    ss["scheme-b-source"] = ss["scheme_b_source"] = "Custom"
    ss["scheme-b-text"] = ss["scheme_b"]
    bump_views()


def set_selection(heads: Iterable[Head]) -> None:
    st.session_state["sel"] = heads_key(heads)
    bump_views()
    write_url()


def bump_views() -> None:
    """Give the linked charts new keys, so they redraw from the state instead of their own last selection."""
    st.session_state["view_version"] = st.session_state.get("view_version", 0) + 1


def view_key(prefix: str) -> str:
    return f"{prefix}@{st.session_state.get('view_version', 0)}"


@dataclass
class Context:
    """Everything a page needs: the loaded model and data, the current scheme and selection."""

    model_source: str
    data_key: str
    lm: LoadedModel
    dataset: TextDataset
    scheme: Scheme
    selection: set[Head]

    @property
    def shape(self) -> tuple[int, int]:
        return self.lm.num_layers, self.lm.num_heads

    def full(self) -> EvalResult:
        return evaluation(self.lm, self.dataset, None)

    def current(self) -> EvalResult:
        return evaluation(self.lm, self.dataset, self.scheme)

    def bundle(self) -> AnalysisBundle:
        return analysis_bundle(self.lm, self.dataset)

    def known_bundle(self) -> AnalysisBundle | None:
        return known_bundle(self.lm, self.dataset)

    def label_name(self, class_id: int) -> str:
        return self.lm.id2label.get(int(class_id), str(class_id))


def load_context() -> Context:
    """The current model, dataset, scheme and selection; raises BhpvasError for bad model or data.

    A scheme or selection from the URL that does not fit the model is reported once and dropped.
    """
    ss = st.session_state
    if not ss.get("_bhpvas_init"):
        init_state()
    lm = cached_model(ss["model"])
    dataset = cached_dataset(ss["data"])
    layers, heads = lm.num_layers, lm.num_heads
    try:
        scheme = Scheme.from_key(ss["scheme"], layers, heads, ss["model"])
    except BhpvasError as exc:
        st.warning(f"Ignoring the scheme {ss['scheme']!r}: {exc}")
        ss["scheme"] = "none"
        scheme = Scheme.empty(layers, heads, ss["model"])
    try:
        selection = parse_heads(ss["sel"], layers, heads)
    except BhpvasError as exc:
        st.warning(f"Ignoring the selection {ss['sel']!r}: {exc}")
        ss["sel"] = "none"
        selection = set()
    write_url()
    return Context(ss["model"], ss["data"], lm, dataset, scheme, selection)


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
            st.page_link("pages/overview.py", label="Go to Overview", icon=":material/dashboard:")
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
    st.error(str(exc), icon=":material/error:")


@st.cache_resource(show_spinner=False)
def _startup_sweep() -> int:
    """Once per server process: remove upload folders of sessions that ended in a crash (older than the TTL)."""
    try:
        return len(sweep_uploads())
    except BhpvasError:
        return 0


@st.cache_resource(show_spinner=False)
def _upload_sweeper() -> EndedSessionSweeper:
    return EndedSessionSweeper(uploads_root())


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def sweep_ended_uploads() -> None:
    """Remove the upload folders of sessions that ended longer ago than the server keeps a closed
    tab's session for reconnecting (``server.disconnectedSessionTTL``). Runs on every script run."""
    from streamlit import runtime

    if not runtime.exists():
        return
    grace = float(st.get_option("server.disconnectedSessionTTL") or 120)
    _upload_sweeper().sweep(runtime.get_instance().is_active_session, grace)


def upload_session() -> UploadSession:
    """This session's upload folder, removed once the session has ended."""
    ss = st.session_state
    owner = ss.get("_bhpvas_uploads")
    if not isinstance(owner, UploadSession) or not owner.alive:
        owner = UploadSession(uploads_root())
        ss["_bhpvas_uploads"] = owner
    session_id = _session_id()
    if session_id is not None:
        _upload_sweeper().track(owner.token, session_id)
    return owner


def save_upload(raw: bytes, filename: str) -> Path:
    """Keep an uploaded data file in this session's upload folder so its path can go in the URL."""
    return upload_session().save(raw, filename)


# --- the BHPVAS proposal ----------------------------------------------------------------------------


def proposed_heads(bundle: AnalysisBundle, rule: Thresholds, target: int = 0) -> tuple[list[Head], int]:
    """Heads the BHPVAS rule proposes, least important first (at most ``target`` when set), and how many met it."""
    meets = rule.proposed(bundle)
    importance = bundle.importance.display()
    layers, heads = np.nonzero(meets)
    order = np.argsort(importance[layers, heads], kind="stable")
    chosen = [(int(layers[i]), int(heads[i])) for i in order]
    count = len(chosen)
    if target > 0:
        chosen = chosen[:target]
    return chosen, count


RULE_DEFAULTS = {
    "rule_importance": 0.3,
    "rule_use_stability": True,
    "rule_stability": 0.985,
    "rule_use_similarity": True,
    "rule_similarity": 0.8,
    "rule_logic": "or",
    "rule_target": 0,
}


def current_rule() -> tuple[Thresholds, int]:
    """The sidebar's thresholds and target number of heads."""
    ss = st.session_state
    value = {k: ss.get(k, v) for k, v in RULE_DEFAULTS.items()}
    rule = Thresholds(
        importance=float(value["rule_importance"]),
        stability=float(value["rule_stability"]) if value["rule_use_stability"] else None,
        similarity=float(value["rule_similarity"]) if value["rule_use_similarity"] else None,
        logic=str(value["rule_logic"] or "or"),
    )
    return rule, int(value["rule_target"])


# --- the sidebar ---------------------------------------------------------------------------------


def _keep_widget_state() -> None:
    """Widgets drawn on some runs only lose their state; re-assigning keeps it (and sets defaults)."""
    ss = st.session_state
    for key, default in RULE_DEFAULTS.items():
        value = ss.get(key, default)
        ss[key] = default if value is None else value


def render_sidebar() -> None:
    """Model and data summary, the BHPVAS rule, and the current scheme's metrics."""
    _keep_widget_state()
    with st.sidebar:
        try:
            ctx = load_context()
        except BhpvasError:
            st.warning("The model or dataset could not be opened; the page says why.", icon=":material/error:")
            return
        facts = ctx.lm.describe()
        st.caption(
            f"**Model** `{_short(ctx.model_source)}` · {facts['architecture']} {facts['layers']}×{facts['heads_per_layer']} heads  \n"
            f"**Data** `{_short(ctx.data_key)}` · {len(ctx.dataset)} rows"
        )
        _scheme_metrics(ctx)
        _rule_controls(ctx)


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _scheme_metrics(ctx: Context) -> None:
    st.subheader("Current scheme", anchor=False)
    try:
        full = ctx.full()
        current = ctx.current()
    except BhpvasError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    total = ctx.shape[0] * ctx.shape[1]
    pruned = len(ctx.scheme.pruned)
    st.caption(f"{pruned} of {total} heads pruned · {len(current.flipped)} of {current.n} predictions flipped")
    for notice in dict.fromkeys(current.notices + ctx.lm.notices):
        st.warning(notice, icon=":material/info:")
    left, right = st.columns(2)
    left.metric(
        "Accuracy",
        "100%" if current.accuracy == 1 else f"{current.accuracy:.2%}",
        delta=f"{(current.accuracy - full.accuracy) * 100:+.2f} pp" if pruned else None,
        help=f"Masked accuracy with the scheme's heads gated off; the full model has {full.accuracy:.2%}.",
    )
    right.metric(
        "Agreement",
        f"{current.agreement:.1%}",
        delta=f"{(current.agreement - 1) * 100:+.2f} pp" if pruned else None,
        help="Share of samples whose prediction equals the full model's.",
    )
    st.metric(
        "Loss",
        f"{current.loss:.4f}",
        delta=f"{current.loss - full.loss:+.4f}" if pruned else None,
        delta_color="inverse",
        help=f"Mean cross-entropy; the full model has {full.loss:.4f}.",
    )
    if pruned and st.button("Reset to the full model", key="sidebar-reset", icon=":material/restart_alt:", width="stretch"):
        set_scheme([])
        st.rerun()


def _rule_controls(ctx: Context) -> None:
    st.subheader("BHPVAS proposal", anchor=False)
    bundle = ctx.known_bundle()
    low = 0.0
    if bundle is not None and np.isfinite(bundle.stability).any():
        low = min(0.9, float(np.floor(np.nanmin(bundle.stability) * 100) / 100))
    st.session_state["rule_stability"] = min(max(float(st.session_state["rule_stability"]), low), 1.0)
    st.slider(
        "Importance ≤ t_I",
        0.0,
        1.0,
        step=0.01,
        key="rule_importance",
        help="Michel et al. importance, min-max scaled to [0, 1]. A head is proposed only when it is at most this important.",
    )
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    left.checkbox("use", key="rule_use_stability", help="Use the stability criterion")
    right.slider(
        "Stability ≥ t_S",
        low,
        1.0,
        step=0.001,
        format="%.3f",
        key="rule_stability",
        disabled=not st.session_state["rule_use_stability"],
        help="1 - mean JSD of the head's attention profile from its mean profile: 1 = behaves the same on every input.",
    )
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    left.checkbox("use", key="rule_use_similarity", help="Use the similarity criterion")
    right.slider(
        "Similarity ≥ t_C",
        0.0,
        1.0,
        step=0.01,
        key="rule_similarity",
        disabled=not st.session_state["rule_use_similarity"],
        help="Maximum linear CKA with any other head: high = redundant.",
    )
    st.segmented_control(
        "Combine stability and similarity with",
        ["or", "and"],
        key="rule_logic",
        help="importance ≤ t_I and (stability ≥ t_S OR/AND similarity ≥ t_C)",
    )
    st.number_input(
        "Target number of heads to prune (0 = all that meet the rule)",
        min_value=0,
        max_value=ctx.shape[0] * ctx.shape[1],
        step=1,
        key="rule_target",
        help="Keep only the least important heads that meet the rule, up to this many.",
    )
    if bundle is None:
        st.caption("The proposal needs the head analysis (computed once per model and dataset, then cached on disk).")
        if st.button("Load the head analysis", key="sidebar-analyse", icon=":material/insights:", width="stretch"):
            try:
                ctx.bundle()
            except BhpvasError as exc:
                st.error(str(exc), icon=":material/error:")
        return
    heads, meeting = proposed_heads(bundle, *current_rule())
    note = f"{meeting} heads meet the rule" + (f"; the {len(heads)} least important are proposed." if len(heads) < meeting else ".")
    st.caption(note)
    same = set(heads) == ctx.scheme.pruned
    if st.button(
        f"Adopt the proposal ({len(heads)} heads)",
        key="sidebar-adopt",
        type="primary",
        disabled=same,
        icon=":material/content_cut:",
        width="stretch",
        help="Replace the current scheme with the heads the rule proposes.",
    ):
        set_scheme(heads)
        st.rerun()
    if same and heads:
        st.caption("The current scheme is the proposal.")
