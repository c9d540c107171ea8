"""Pruning schemes: masks, JSON and URL keys round-trip; malformed input gets a clear SchemeError."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import Scheme, SchemeError


def test_mask_json_and_key_round_trip(tmp_path):
    scheme = Scheme(3, 4, frozenset({(0, 3), (2, 1)}), model="m", name="two")
    keep = scheme.keep_mask()
    assert keep.sum() == 10 and not keep[0, 3] and not keep[2, 1]
    assert Scheme.from_mask(keep, model="m", name="two") == scheme
    assert Scheme.from_json(scheme.to_json()) == scheme
    path = tmp_path / "scheme.json"
    path.write_text(scheme.to_json())
    assert Scheme.from_file(path) == scheme
    assert scheme.key() == "0.3,2.1"
    assert Scheme.from_key(scheme.key(), 3, 4, "m").pruned == scheme.pruned
    assert Scheme.from_key("none", 3, 4) == Scheme.empty(3, 4)


def test_toggled_flips_one_head():
    scheme = Scheme(2, 2, frozenset({(0, 0)}))
    assert scheme.toggled(1, 1).pruned == {(0, 0), (1, 1)}
    assert scheme.toggled(0, 0).pruned == frozenset()


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"num_layers": 2, "num_heads": 2}', "lacks the field"),
        ('{"num_layers": "x", "num_heads": 2, "pruned": []}', "must be a whole number"),
        ('{"num_layers": 0, "num_heads": 2, "pruned": []}', "must be positive"),
        ('{"num_layers": 2, "num_heads": 2, "pruned": [[0]]}', "list of \\[layer, head\\]"),
        ('{"num_layers": 2, "num_heads": 2, "pruned": [[5, 0]]}', "outside a model with 2 layers"),
    ],
)
def test_malformed_schemes_are_refused_with_a_clear_message(text, phrase):
    with pytest.raises(SchemeError, match=phrase):
        Scheme.from_json(text)


def test_fit_check_and_bad_keys():
    with pytest.raises(SchemeError, match="3 layers x 4 heads"):
        Scheme(3, 4).check_fits(6, 12)
    for key in ("0-3", "1.2.3"):
        with pytest.raises(SchemeError, match="Cannot read the scheme"):
            Scheme.from_key(key, 3, 4)
    with pytest.raises(SchemeError, match="does not exist"):
        Scheme.from_file("/nonexistent/scheme.json")
    assert np.array_equal(Scheme.empty(2, 3).keep_mask(), np.ones((2, 3), dtype=bool))
