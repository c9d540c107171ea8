"""Four threads on one shared model mixing every kind of work the app does at once (issue 13,
acceptance): evaluations of different schemes on the incremental path, attention maps, attention
statistics and a full head analysis. Every result equals the serial one and nothing raises.

A race between callers' hooks (attention capture, the prefix recorder, gating) shows up here as a
wrong array or a shape mismatch; the real core runs on a tiny random-init BERT.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from pruning_core import DiskCache, evaluate, load_dataset
from pruning_core.analysis import AnalysisBundle, AnalysisParams, analyze
from pruning_core.attention import attention_maps, attention_statistics
from pruning_core.schemes import Scheme

SMALL = AnalysisParams(similarity_tokens=300, role_sentences=12, alignment_sentences=20)


def _bundle_arrays(bundle: AnalysisBundle) -> dict[str, np.ndarray]:
    return {**bundle.criteria(), "profiles": bundle.attention.profiles, "cka": bundle.similarity.cka}


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, atol=1e-6, equal_nan=True)


def test_four_threads_mixing_evaluations_attention_and_analysis_match_serial(tiny_bert):
    lm = tiny_bert
    data = load_dataset("sst2", max_rows=40)
    analysis_data = [data.subset(range(0, 24)), data.subset(range(16, 40))]
    schemes = [
        Scheme(3, 4, frozenset({(0, 1), (2, 3)})),
        Scheme(3, 4, frozenset({(1, 0), (1, 1), (1, 2)})),
        Scheme(3, 4, frozenset({(0, 0), (0, 2), (2, 0), (2, 1), (2, 2)})),
        Scheme(3, 4, frozenset({(2, 3)})),
    ]
    rng = np.random.default_rng(7)
    masks = [rng.random(lm.shape) > 0.3 for _ in range(4)]
    texts = [" ".join(["film"] * (2 + 3 * i)) + " was fine ." for i in range(4)]
    no_cache = DiskCache(enabled=False)

    def evaluation(i: int) -> dict[str, np.ndarray]:
        result = evaluate(lm, data, schemes[i], cache=no_cache, incremental=True)
        return {"probs": result.probs, "preds": result.preds}

    def attention_map(i: int) -> np.ndarray:
        return attention_maps(lm, [texts[i]], scheme=masks[i])[0].attention

    def statistics(i: int) -> np.ndarray:
        return attention_statistics(lm, data.subset(range(6 * i, 6 * i + 8)), masks[i], cache=no_cache, max_tokens=64).profiles

    def analysis(i: int) -> dict[str, np.ndarray]:
        return _bundle_arrays(analyze(lm, analysis_data[i % 2], SMALL, cache=DiskCache(enabled=False)))

    operations: tuple[Callable[[int], object], ...] = (analysis, evaluation, attention_map, statistics)
    serial = {(op.__name__, i): op(i) for op in operations for i in range(4)}
    rounds = 4
    results: list[tuple[str, int, object]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4, timeout=60)

    def worker(i: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                op = operations[(i + round_) % len(operations)]
                results.append((op.__name__, i, op(i)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, errors
    assert len(results) == 4 * rounds
    assert {name for name, _, _ in results} == {op.__name__ for op in operations}, "every kind of work ran concurrently"
    wrong = [(name, i) for name, i, out in results if not _same(out, serial[name, i])]
    assert not wrong, wrong
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in lm.eager_model().modules()) == 0, "no hook left behind"
