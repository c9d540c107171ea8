"""Session state and the URL: the keys the app keeps per session, and one setter per concept.

``model``, ``data``, ``scheme`` and ``sel`` are mirrored into the URL on every run, so a copied
link reopens the same view; a session's first run adopts the URL. Widget-backed keys that must
survive runs where their widget is not drawn (the sidebar's rule, scheme B) are re-assigned on every
run. The rule's defaults are :class:`~pruning_core.strategies.composite.Thresholds`' defaults.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from app.keys import DEFAULT_DATA, DEFAULT_MODEL, Head, heads_key
from app.uploads import startup_sweep, sweep_ended_uploads
from pruning_core.schemes import Scheme
from pruning_core.strategies.composite import Thresholds

MODEL, DATA, SCHEME, SEL = "model", "data", "scheme", "sel"
URL_KEYS = (MODEL, DATA, SCHEME, SEL)
URL_DEFAULTS = {MODEL: DEFAULT_MODEL, DATA: DEFAULT_DATA, SCHEME: "none", SEL: "none"}
INITIALISED = "_bhpvas_init"
VIEW_VERSION = "view_version"
SCHEME_B, SCHEME_B_SOURCE, SCHEME_B_TEXT = "scheme_b", "scheme_b_source", "scheme_b_text"
B_PROPOSAL, B_FULL, B_CUSTOM = "BHPVAS proposal", "Full model", "Custom"
B_SOURCES = (B_PROPOSAL, B_FULL, B_CUSTOM)
DEPS_HEAD, DEPS_SAMPLE = "deps_head", "deps_sample"
LINK_NOTICES = "_link_notices"

RULE_IMPORTANCE, RULE_USE_STABILITY, RULE_STABILITY = "rule_importance", "rule_use_stability", "rule_stability"
RULE_USE_SIMILARITY, RULE_SIMILARITY, RULE_LOGIC, RULE_TARGET = "rule_use_similarity", "rule_similarity", "rule_logic", "rule_target"


def rule_defaults() -> dict[str, object]:
    """The sidebar rule's widget values for the core's default :class:`Thresholds` (target 0: no cap)."""
    rule = Thresholds()
    return {
        RULE_IMPORTANCE: rule.importance,
        RULE_USE_STABILITY: rule.stability is not None,
        RULE_STABILITY: rule.stability if rule.stability is not None else 1.0,
        RULE_USE_SIMILARITY: rule.similarity is not None,
        RULE_SIMILARITY: rule.similarity if rule.similarity is not None else 1.0,
        RULE_LOGIC: rule.logic,
        RULE_TARGET: 0,
    }


def kept_widget_defaults() -> dict[str, object]:
    return {**rule_defaults(), SCHEME_B_SOURCE: B_PROPOSAL}


def init_state() -> None:
    """Adopt the URL on a session's first run; afterwards mirror the session state into the URL."""
    ss = st.session_state
    sweep_ended_uploads()
    if not ss.get(INITIALISED):
        startup_sweep()
        for name in URL_KEYS:
            ss[name] = st.query_params.get(name, URL_DEFAULTS[name]) or URL_DEFAULTS[name]
        ss[INITIALISED] = True
    for key, default in kept_widget_defaults().items():
        value = ss.get(key, default)
        ss[key] = default if value is None else value
    write_url()


def write_url() -> None:
    """Mirror model, data, scheme and selection into the URL (selection only when not empty)."""
    ss = st.session_state
    wanted = {name: ss[name] for name in (MODEL, DATA, SCHEME)}
    if ss.get(SEL, "none") != "none":
        wanted[SEL] = ss[SEL]
    params = st.query_params
    for name in URL_KEYS:
        if name in wanted and params.get(name) != wanted[name]:
            params[name] = wanted[name]
        elif name not in wanted and name in params:
            del params[name]


def set_sources(model: str, data: str) -> None:
    """Switch model and/or dataset; a new model starts with an empty scheme and selection."""
    ss = st.session_state
    if model != ss[MODEL]:
        ss[SCHEME] = "none"
        ss[SEL] = "none"
        set_scheme_b(None)
    ss[MODEL] = model
    ss[DATA] = data
    bump_views()
    write_url()


def set_scheme(heads: Iterable[Head] | Scheme) -> None:
    """Make ``heads`` (or a scheme's pruned heads) the current scheme."""
    pruned = heads.pruned if isinstance(heads, Scheme) else heads
    st.session_state[SCHEME] = heads_key(pruned)
    st.session_state.pop(LINK_NOTICES, None)
    bump_views()
    write_url()


def set_scheme_b(heads: Iterable[Head] | None) -> None:
    """Make ``heads`` the custom scheme B of the Scheme page (None: back to the sidebar's proposal)."""
    ss = st.session_state
    if heads is None:
        ss[SCHEME_B] = None
        ss[SCHEME_B_SOURCE] = B_PROPOSAL
        ss.pop(SCHEME_B_TEXT, None)
        return
    ss[SCHEME_B] = heads_key(heads)
    ss[SCHEME_B_SOURCE] = B_CUSTOM
    ss[SCHEME_B_TEXT] = ss[SCHEME_B]
    bump_views()


def set_selection(heads: Iterable[Head]) -> None:
    st.session_state[SEL] = heads_key(heads)
    st.session_state.pop(LINK_NOTICES, None)
    bump_views()
    write_url()


def ignore_link_value(key: str, notice: str) -> None:
    """Drop a scheme or selection from the URL that does not fit the model, with a notice that stays
    until the scheme or selection is set again."""
    st.session_state[key] = "none"
    st.session_state[LINK_NOTICES] = [*st.session_state.get(LINK_NOTICES, []), notice]


def link_notices() -> list[str]:
    return list(st.session_state.get(LINK_NOTICES, []))


def bump_views() -> None:
    """Give the linked charts new keys, so they redraw from the state instead of their own last selection."""
    st.session_state[VIEW_VERSION] = st.session_state.get(VIEW_VERSION, 0) + 1


def view_key(prefix: str) -> str:
    return f"{prefix}@{st.session_state.get(VIEW_VERSION, 0)}"


def current_rule() -> tuple[Thresholds, int]:
    """The sidebar's thresholds and target number of heads."""
    ss = st.session_state
    value = {k: ss.get(k, v) for k, v in rule_defaults().items()}
    rule = Thresholds(
        importance=float(value[RULE_IMPORTANCE]),
        stability=float(value[RULE_STABILITY]) if value[RULE_USE_STABILITY] else None,
        similarity=float(value[RULE_SIMILARITY]) if value[RULE_USE_SIMILARITY] else None,
        logic=str(value[RULE_LOGIC] or "or"),
    )
    return rule, int(value[RULE_TARGET])


def hand_over_to_dependencies(head: Head | None = None, sample: int | None = None) -> None:
    """What the Dependencies page should open with (a head, a sample), read once by that page."""
    if head is not None:
        st.session_state[DEPS_HEAD] = head
    if sample is not None:
        st.session_state[DEPS_SAMPLE] = sample


def take_handover(key: str):
    """The value handed over under ``key`` (None when none), removed so it is used once."""
    return st.session_state.pop(key, None)
