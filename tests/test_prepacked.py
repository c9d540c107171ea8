"""Prepacked bf16 products change how fast a number comes, never the number: bit for bit the
plain bf16 path for every architecture, mask, the incremental path and leave-one-out; the plain
path wherever the oneDNN ops are missing or do not reproduce ``F.linear``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pruning_core import load_model
from pruning_core import prepacked as prepacked_module
from pruning_core.ablation import head_off_logits
from pruning_core.batching import encode
from pruning_core.evaluation import forward_logits
from pruning_core.fastpath import compact_model, shared_start
from pruning_core.incremental import run_with_prefix
from pruning_core.prepacked import Product, prepacking_works, use_prepacked
from tiny import ARCHITECTURES

needs_prepacking = pytest.mark.skipif(
    not prepacking_works(), reason="this CPU's torch has no oneDNN packed bf16 linear that reproduces F.linear"
)


def _masks(shape: tuple[int, int]) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    random = rng.random(shape) > 0.5
    random[1, 0] = True
    empty_middle = random.copy()
    empty_middle[1] = False
    return [np.ones(shape, dtype=bool), random, empty_middle]


def _bf16_pair(folder, monkeypatch):
    """The same model twice in bf16: products prepacked, and plain (``$BHPVAS_PREPACK=0``)."""
    monkeypatch.setenv("BHPVAS_PREPACK", "0")
    plain = load_model(folder, precision="bf16")
    assert not shared_start(plain).prepack
    monkeypatch.setenv("BHPVAS_PREPACK", "1")
    packed = load_model(folder, precision="bf16")
    assert shared_start(packed).prepack
    return plain, packed


@needs_prepacking
def test_a_prepacked_product_is_f_linear_under_bf16_autocast_bit_for_bit():
    generator = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(96, 64, generator=generator), torch.randn(96, generator=generator)
    product = Product(weight, bias, prepack=True)
    assert product.packed is not None
    with torch.inference_mode():
        for rows in (1, 5, 300):
            x = torch.randn(rows, 64, generator=generator)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                expected = F.linear(x, weight, bias)
            assert torch.equal(product(x), expected)
            assert torch.equal(product(x.to(torch.bfloat16)), expected)


def test_an_empty_weight_or_no_prepacking_is_plain_f_linear():
    x = torch.randn(4, 8)
    empty = Product(torch.zeros(0, 8), torch.zeros(0), prepack=True)
    assert empty.packed is None and empty(x).shape == (4, 0)
    plain = Product(torch.randn(3, 8), None)
    assert plain.packed is None and torch.equal(plain(x), F.linear(x, plain.weight))


def test_prepacking_only_for_bf16_on_a_cpu_and_can_be_switched_off(monkeypatch):
    cpu = torch.device("cpu")
    assert not use_prepacked("fp32", cpu)
    assert not use_prepacked("bf16", torch.device("cuda"))
    monkeypatch.setenv("BHPVAS_PREPACK", "off")
    assert not use_prepacked("bf16", cpu)
    monkeypatch.setenv("BHPVAS_PREPACK", "1")
    assert use_prepacked("bf16", cpu) == prepacking_works()


def test_without_the_ops_or_with_a_different_result_the_plain_products_stay(monkeypatch, tiny_bert_dir):
    monkeypatch.setattr(prepacked_module, "_mkldnn_ops", lambda: None)
    prepacked_module.prepacking_works.cache_clear()
    try:
        assert not prepacking_works() and not use_prepacked("bf16", torch.device("cpu"))
        assert not shared_start(load_model(tiny_bert_dir, precision="bf16")).prepack
        monkeypatch.undo()
        if _real_ops_exist():
            monkeypatch.setattr(Product, "__call__", lambda self, x: F.linear(x, self.weight, self.bias).float())
            prepacked_module.prepacking_works.cache_clear()
            assert not prepacking_works(), "a product of another dtype is not the same product"
    finally:
        monkeypatch.undo()
        prepacked_module.prepacking_works.cache_clear()


def _real_ops_exist() -> bool:
    return prepacked_module._mkldnn_ops() is not None


@needs_prepacking
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_compact_logits_are_the_plain_bf16_logits_bit_for_bit(arch, tiny_dirs, sst2_small, monkeypatch):
    plain, packed = _bf16_pair(tiny_dirs[arch], monkeypatch)
    encoded = encode(plain, sst2_small)
    for keep in _masks(plain.shape):
        expected = forward_logits(plain, encoded, keep, max_tokens=256)
        assert np.array_equal(forward_logits(packed, encoded, keep, max_tokens=256), expected), keep.astype(int)
    assert compact_model(packed, _masks(plain.shape)[1]).out[0].packed is not None


@needs_prepacking
def test_incremental_runs_and_leave_one_out_are_unchanged_bit_for_bit(tiny_bert_dir, sst2_small, monkeypatch):
    plain, packed = _bf16_pair(tiny_bert_dir, monkeypatch)
    encoded = encode(plain, sst2_small)
    full, toggled = _masks(plain.shape)[0], _masks(plain.shape)[1]
    results = []
    for lm in (plain, packed):
        prefix = run_with_prefix(lm, encoded, full, max_tokens=256)
        results.append((run_with_prefix(lm, encoded, toggled, prefix, max_tokens=256).logits, head_off_logits(lm, encoded, 256)))
    (plain_toggle, plain_loo), (packed_toggle, packed_loo) = results
    assert np.array_equal(plain_toggle, packed_toggle)
    assert plain_loo.keys() == packed_loo.keys()
    for head, logits in plain_loo.items():
        assert np.array_equal(packed_loo[head], logits), head
