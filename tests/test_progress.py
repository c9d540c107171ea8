"""Progress callbacks: a sub-task's 0..1 maps into its slice of the parent's progress."""

from __future__ import annotations

from pruning_core.progress import no_progress, scaled, throttled


def test_scaled_maps_into_the_parent_slice_and_clamps():
    seen = []
    part = scaled(lambda fraction, message: seen.append((round(fraction, 6), message)), 0.5, 0.75)
    for fraction in (-1.0, 0.0, 0.5, 1.0, 2.0):
        part(fraction, "step")
    assert [f for f, _ in seen] == [0.5, 0.5, 0.625, 0.75, 0.75]
    nested = scaled(scaled(lambda f, m: seen.append((round(f, 6), m)), 0.0, 0.5), 0.5, 1.0)
    nested(1.0, "done")
    assert seen[-1] == (0.5, "done")
    scaled(None, 0, 1)(0.5, "nobody listens")
    no_progress(0.5, "ignored")


def test_throttled_passes_the_first_report_then_one_per_interval_and_always_the_end():
    seen, now = [], [0.0]
    report = throttled(lambda fraction, message: seen.append(message), 0.25, clock=lambda: now[0])
    for at, fraction, message in [(0.0, 0.1, "a"), (0.1, 0.2, "b"), (0.2, 0.3, "c"), (0.26, 0.4, "d"), (0.3, 0.5, "e"), (0.31, 1.0, "end")]:
        now[0] = at
        report(fraction, message)
    assert seen == ["a", "d", "end"]
