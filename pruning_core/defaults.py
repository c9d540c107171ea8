"""Defaults shared by the library and the CLI (kept import-free so `--help` stays fast)."""

DEFAULT_STRATEGIES = (
    "importance",
    "fisher",
    "loo",
    "michel",
    "random",
    "top-first",
    "bottom-first",
    "middle-first",
    "avoid-middle",
    "avoid-consecutive",
    "dsp",
    "bhpvas",
)

OFFERED_STRATEGIES = (*DEFAULT_STRATEGIES, "repair-aware")
"""Every strategy the Pruning process page offers (the defaults pre-selected) and the demo ships."""
