"""Analysis bundles: a saved bundle opens again unchanged; a folder that is not one says so."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import BhpvasError
from pruning_core.analysis import load_bundle


def test_saved_bundle_opens_with_the_same_arrays_and_metadata(tiny_bundle, tmp_path):
    _, bundle = tiny_bundle
    again = load_bundle(bundle.save(tmp_path / "bundle"))
    assert again.meta() == bundle.meta()
    saved, loaded = bundle.arrays(), again.arrays()
    assert saved.keys() == loaded.keys()
    for name in saved:
        assert np.array_equal(np.asarray(saved[name]), np.asarray(loaded[name]), equal_nan=True), name
    assert again.scores_table() == bundle.scores_table()


def test_a_folder_that_is_not_a_bundle_is_refused_with_the_command_to_rebuild_it(tmp_path):
    with pytest.raises(BhpvasError, match="not a readable analysis bundle.*pruning_core analyze"):
        load_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{}")
    with pytest.raises(BhpvasError, match="not a readable analysis bundle"):
        load_bundle(tmp_path)


def test_the_similarity_comes_from_the_attention_statistics_pass(tiny_bert, tmp_path, monkeypatch):
    """With nothing cached, the analysis collects the similarity's context vectors during the
    attention statistics' pass (no pass of its own), and they give the CKA its own pass gives."""
    from pruning_core import DiskCache, load_dataset, scores
    from pruning_core.analysis import AnalysisParams, analyze

    data = load_dataset("sst2", max_rows=40)
    params = AnalysisParams(similarity_tokens=300, role_sentences=20, alignment_sentences=20, leave_one_out=False)
    separate = scores.head_similarity(tiny_bert, data, tokens=300, seed=params.seed, cache=DiskCache(enabled=False))

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the similarity ran a forward pass of its own")

    monkeypatch.setattr(scores, "context_vectors", no_second_pass)
    bundle = analyze(tiny_bert, data, params, cache=DiskCache(tmp_path))
    assert bundle.similarity.tokens == separate.tokens == 300
    assert np.allclose(bundle.similarity.cka, separate.cka, atol=1e-5, equal_nan=True)
    assert np.array_equal(bundle.similarity.partner, separate.partner)


def test_a_sampler_for_other_data_is_not_filled_and_not_used(tiny_bert):
    from pruning_core import DiskCache, load_dataset
    from pruning_core.attention import attention_statistics
    from pruning_core.scores import ContextSampler, head_similarity

    data, other = load_dataset("sst2", max_rows=30), load_dataset("sst2", max_rows=31)
    sampler = ContextSampler(tiny_bert, other, tiny_bert.present_mask(), 100, 0)
    attention_statistics(tiny_bert, data, cache=DiskCache(enabled=False), sampler=sampler)
    assert not sampler.filled
    own = head_similarity(tiny_bert, data, tokens=100, cache=DiskCache(enabled=False))
    assert np.array_equal(
        head_similarity(tiny_bert, data, tokens=100, cache=DiskCache(enabled=False), sampler=sampler).cka, own.cka, equal_nan=True
    )


def test_reopening_an_analysis_samples_no_context_tokens(tiny_bert, tmp_path, monkeypatch):
    """The sampler is only laid out when a pass fills it: an analysis reopened from the cache skips it."""
    from pruning_core import DiskCache, load_dataset, scores
    from pruning_core.analysis import AnalysisParams, analyze

    data = load_dataset("sst2", max_rows=24)
    params = AnalysisParams(similarity_tokens=100, role_sentences=10, alignment_sentences=10, leave_one_out=False)
    first = analyze(tiny_bert, data, params, cache=DiskCache(tmp_path))

    def no_sampling(*args, **kwargs):
        raise AssertionError("context tokens sampled on a reopen")

    monkeypatch.setattr(scores, "sample_token_positions", no_sampling)
    again = analyze(tiny_bert, data, params, cache=DiskCache(tmp_path))
    assert np.array_equal(again.similarity.cka, first.similarity.cka, equal_nan=True)
