"""The sidebar: model and data, the current scheme's metrics, and the BHPVAS proposal's rule.

The metrics and the proposal's adopt button live in fragments (:data:`SCHEME_PANEL`,
:data:`PROPOSAL_PANEL`), so a page that toggles one head reruns them and its own fragments, not the
whole app (see :func:`rerun_scheme_views`).
"""

from __future__ import annotations

import streamlit as st

from app.context import Context, load_context
from app.plain import code_span
from app.repaired import SchemeRepair, change_against_full, current_repair
from app.resources import progress_bar, queued_job
from app.state import RULE_STABILITY, RULE_USE_SIMILARITY, RULE_USE_STABILITY, current_rule, link_notices, set_scheme
from pruning_core import BhpvasError
from pruning_core.confirm import confirm_scheme
from pruning_core.evaluation import EvalResult
from pruning_core.proposal import proposed_heads
from pruning_core.stats import ALPHA, Change, change_from_predictions

SCHEME_PANEL = "sidebar-scheme"
PROPOSAL_PANEL = "sidebar-proposal"


def render_sidebar() -> None:
    """Model and data summary, the current scheme's metrics, and the BHPVAS rule."""
    with st.sidebar:
        ctx = context_or_none()
        if ctx is None:
            st.warning("The model or dataset could not be opened; the page says why.", icon=":material/error:")
            return
        for notice in link_notices():
            st.warning(notice, icon=":material/warning:")
        facts = ctx.lm.describe()
        st.caption(
            f"**Model** {code_span(shorten(ctx.model_source))} · {facts['architecture']} {facts['layers']}×{facts['heads_per_layer']} heads  \n"
            f"**Data** {code_span(shorten(ctx.data_key))} · {len(ctx.dataset)} rows"
        )
        scheme_panel()
        rule_controls(ctx)
        proposal_panel()


def rerun_scheme_views(*fragments: str) -> None:
    """From a widget callback that changed the scheme: rerun the sidebar's metrics first (the number the user waits for), then the page's ``fragments`` and the proposal panel."""
    st.rerun([SCHEME_PANEL, *fragments, PROPOSAL_PANEL])


def shorten(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def context_or_none() -> Context | None:
    """The page context, or None when the model or dataset does not open (the page says why)."""
    try:
        return load_context()
    except BhpvasError:
        return None


@st.fragment(key=SCHEME_PANEL)
def scheme_panel() -> None:
    """The current scheme's metrics against the full model, and a reset button."""
    if (ctx := context_or_none()) is not None:
        scheme_metrics(ctx)
        fp32_check(ctx)


@st.fragment(key=PROPOSAL_PANEL)
def proposal_panel() -> None:
    """The heads the sidebar's rule proposes, and a button making them the current scheme."""
    if (ctx := context_or_none()) is not None:
        adopt_proposal(ctx)


def scheme_metrics(ctx: Context) -> None:
    st.subheader("Current scheme", anchor=False)
    try:
        full = ctx.full()
        current = ctx.current()
    except BhpvasError as exc:
        st.error(code_span(str(exc)), icon=":material/error:")
        return
    total = ctx.shape[0] * ctx.shape[1]
    pruned = len(ctx.scheme.pruned)
    st.caption(f"{pruned} of {total} heads pruned · {len(current.flipped)} of {current.n} predictions flipped")
    for notice in dict.fromkeys(current.notices + ctx.lm.notices):
        st.warning(notice, icon=":material/info:")
    left, right = st.columns(2)
    left.metric(
        "Accuracy",
        percent(current.accuracy),
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
    if pruned:
        st.text(change_text(change_from_predictions(current.labels, current.full_preds, current.preds)))
    if pruned and (record := current_repair(ctx)) is not None:
        treated_metrics(ctx, record, full)
    st.text(ctx.provenance(scores=False))
    if pruned and st.button("Reset to the full model", key="sidebar-reset", icon=":material/restart_alt:", width="stretch"):
        set_scheme([])
        st.rerun()


FP32_CHECK = "sidebar-fp32-check"


def fp32_check(ctx: Context) -> None:
    """In reduced precision: a button re-measuring the current scheme in fp32, and its result."""
    if ctx.lm.precision == "fp32" or not ctx.scheme.pruned:
        return
    key = (ctx.lm.fingerprint, ctx.dataset.fingerprint, ctx.scheme.key())
    stored = st.session_state.get(FP32_CHECK)
    if stored is None or stored[0] != key:
        if not st.button(
            "Confirm in fp32",
            key="sidebar-fp32",
            icon=":material/verified:",
            width="stretch",
            help=f"The metrics above are measured in {ctx.lm.precision} autocast (fast); this re-evaluates the scheme in fp32.",
        ):
            return
        try:
            current = ctx.current()
            with queued_job("fp32 check"), progress_bar("Evaluating the scheme in fp32"):
                confirmation = confirm_scheme(ctx.lm, ctx.dataset, ctx.scheme, current.preds == current.labels)
        except BhpvasError as exc:
            st.error(code_span(str(exc)), icon=":material/error:")
            return
        stored = st.session_state[FP32_CHECK] = (key, confirmation)
    confirmation = stored[1]
    delta, low, high = confirmation.delta_fp32
    st.text(
        f"fp32: accuracy {confirmation.accuracy_fp32:.2%} ({confirmation.precision}: {confirmation.accuracy:.2%}; "
        f"{confirmation.changed} answers differ); change {100 * delta:+.2f} pp, 95% interval [{100 * low:+.2f}, {100 * high:+.2f}] pp, "
        f"McNemar p = {confirmation.p_fp32:.3g} against the full model in fp32 ({confirmation.full_accuracy_fp32:.2%})"
    )


def percent(value: float) -> str:
    return "100%" if value == 1 else f"{value:.2%}"


def treated_metrics(ctx: Context, record: SchemeRepair, full: EvalResult) -> None:
    """The repaired (and recovered) model's accuracy with its change against the full model, when this
    session repaired the current scheme on the Scheme page."""
    for done, result in record.treated():
        st.metric(
            f"Accuracy after {done}",
            percent(result.accuracy),
            delta=f"{(result.accuracy - full.accuracy) * 100:+.2f} pp",
            help=f"The physically pruned model after {done} (fitted on the calibration set), on the evaluation set; "
            f"the full model has {full.accuracy:.2%}.",
        )
        st.text(change_text(change_against_full(ctx, result)))


def change_text(change: Change) -> str:
    """The accuracy change with its 95% interval and McNemar p, ``no significant change`` when p ≥ 0.05."""
    verdict = "tie: no significant change" if change.p_value >= ALPHA else "significant change"
    return (
        f"Change {100 * change.delta:+.2f} pp, 95% interval [{100 * change.low:+.2f}, {100 * change.high:+.2f}] pp; "
        f"McNemar p = {change.p_value:.3g} ({verdict}; {change.lost} lost, {change.gained} gained)"
    )


def adopt_proposal(ctx: Context) -> None:
    bundle = ctx.known_bundle()
    if bundle is None:
        return
    rule, target = current_rule()
    for note in rule.notes(bundle):
        st.text(note)
    cutoffs = rule.cutoffs(bundle)
    st.text(
        "Cut-offs on this model: importance ≤ "
        + f"{cutoffs['importance']:.3f} (0–1 scale)"
        + "".join(f", {name} ≥ {value:.3f}" for name, value in cutoffs.items() if name != "importance" and value is not None)
    )
    heads, meeting = proposed_heads(bundle, rule, target)
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


PERCENTILE_HELP = (
    "A percentile of this model's own distribution over its heads (0.5 = the median head), so one setting means the same on any model."
)


def optional_threshold(label: str, use_key: str, key: str, help_text: str) -> None:
    """A criterion's "use" checkbox beside its percentile slider (disabled while unused)."""
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    left.checkbox("use", key=use_key, help=f"Use the {label.split()[0].lower()} criterion")
    right.slider(label, 0.0, 1.0, step=0.01, key=key, disabled=not st.session_state[use_key], help=help_text)


def rule_controls(ctx: Context) -> None:
    st.subheader("BHPVAS proposal", anchor=False)
    bundle = ctx.known_bundle()
    st.caption("Thresholds are percentiles of the model's own scores (0 = lowest head, 1 = highest).")
    st.slider(
        "Importance percentile ≤ t_I",
        0.0,
        1.0,
        step=0.01,
        key="rule_importance",
        help=f"Michel et al. importance (per-example gate gradients). A head is proposed only when at most this percentile. {PERCENTILE_HELP}",
    )
    optional_threshold(
        "Stability percentile ≥ t_S",
        RULE_USE_STABILITY,
        RULE_STABILITY,
        f"1 - mean JSD of the head's attention profile from its mean profile: 1 = behaves the same on every input. {PERCENTILE_HELP}",
    )
    optional_threshold(
        "Similarity percentile ≥ t_C",
        RULE_USE_SIMILARITY,
        "rule_similarity",
        "Maximum linear CKA with a head that stays (redundancy relative to the kept heads, so both heads of a "
        f"redundant pair are never proposed on similarity alone): high = redundant. {PERCENTILE_HELP}",
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
                st.error(code_span(str(exc)), icon=":material/error:")
