"""The BHPVAS proposal: heads meeting the thresholds, least important first, capped by a target."""

from __future__ import annotations

import numpy as np

from pruning_core.proposal import proposed_heads
from pruning_core.strategies.composite import Thresholds


def test_every_head_meets_an_open_rule_in_importance_order(tiny_bundle):
    _, bundle = tiny_bundle
    heads, meeting = proposed_heads(bundle, Thresholds(importance=1.0, stability=None, similarity=None))
    assert meeting == bundle.num_layers * bundle.num_heads == len(heads)
    importance = bundle.importance.display()
    values = [importance[h] for h in heads]
    assert values == sorted(values)


def test_a_target_keeps_the_least_important_heads(tiny_bundle):
    _, bundle = tiny_bundle
    rule = Thresholds(importance=1.0, stability=None, similarity=None)
    everything, _ = proposed_heads(bundle, rule)
    capped, meeting = proposed_heads(bundle, rule, target=3)
    assert capped == everything[:3] and meeting == len(everything)


def test_the_proposal_is_what_the_thresholds_select(tiny_bundle):
    _, bundle = tiny_bundle
    rule = Thresholds()
    heads, meeting = proposed_heads(bundle, rule)
    assert {tuple(h) for h in np.argwhere(rule.proposed(bundle)).tolist()} == set(heads)
    assert meeting == len(heads)
    nothing, count = proposed_heads(bundle, Thresholds(importance=-1.0))
    assert nothing == [] and count == 0
