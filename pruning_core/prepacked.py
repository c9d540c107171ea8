"""Prepacked bf16 products on a CPU: the compact evaluation's weights laid out once for oneDNN.

Under CPU bf16 autocast every ``F.linear`` converts its weight to bf16 and oneDNN reorders it into
its blocked layout before multiplying, again for every batch and layer. A :class:`Product` does
that once per weight (``torch.ops.mkldnn._reorder_linear_weight``) and multiplies with oneDNN's
packed linear (``_linear_pointwise``). The products are the same, bit for bit: this module
checks that once per process (:func:`prepacking_works`) on the shapes the encoder uses, and
where the check fails, or the ops are missing, every product stays a plain ``F.linear``. So
prepacking changes how fast a number comes, never the number.

Used for bf16 on a CPU only (:func:`use_prepacked`; ``$BHPVAS_PREPACK=0`` turns it off), in
inference (the packed op has no gradient): fp32 products already run near the matmul peak, and
CUDA has its own kernels.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .settings import env_switch

BF16 = torch.bfloat16
# (rows, inputs, outputs) of the self-check: a layer's q/k/v, output projection and feed-forward
# of the demo's size, a last layer's first tokens, and tiny shapes.
CHECK_SHAPES = ((300, 384, 1152), (300, 384, 384), (300, 384, 1536), (300, 1536, 384), (7, 384, 384), (1, 32, 48), (64, 48, 32))


def _mkldnn_ops():
    ops = getattr(torch.ops, "mkldnn", None)
    if ops is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        return ops._reorder_linear_weight, ops._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


@functools.lru_cache(maxsize=1)
def prepacking_works() -> bool:
    """Whether this torch has oneDNN's packed linear and it reproduces ``F.linear`` under CPU bf16
    autocast bit for bit (checked once per process, on random weights of the encoder's shapes)."""
    if _mkldnn_ops() is None:
        return False
    generator = torch.Generator().manual_seed(0)
    try:
        with torch.inference_mode():
            for rows, inputs, outputs in CHECK_SHAPES:
                weight = torch.randn(outputs, inputs, generator=generator) / inputs**0.5
                bias = torch.randn(outputs, generator=generator)
                x = torch.randn(rows, inputs, generator=generator)
                with torch.autocast("cpu", dtype=BF16):
                    expected = F.linear(x, weight, bias)
                got = Product(weight, bias, prepack=True)(x)
                if got.dtype != expected.dtype or not torch.equal(got, expected):
                    return False
    except RuntimeError:
        return False
    return True


def use_prepacked(precision: str, device: torch.device) -> bool:
    """Whether products of a model evaluated in ``precision`` on ``device`` are prepacked."""
    if precision != "bf16" or device.type != "cpu":
        return False
    return env_switch("BHPVAS_PREPACK") and prepacking_works()


class Product:
    """``x Wᵀ + b`` as ``F.linear`` computes it; with ``prepack`` (bf16 on a CPU, inference only)
    the weight is converted to bf16 and reordered for oneDNN once, here, instead of on every call.

    An empty weight (a layer without heads) always takes ``F.linear``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, prepack: bool = False):
        self.weight = weight.detach()
        self.bias = None if bias is None else bias.detach()
        self.packed: torch.Tensor | None = None
        self.packed_bias: torch.Tensor | None = None
        if prepack and self.weight.numel():
            ops = _mkldnn_ops()
            if ops is not None:
                self.packed = ops[0](self.weight.to(BF16))
                self.packed_bias = None if self.bias is None else self.bias.to(BF16)

    @classmethod
    def of(cls, linear: torch.nn.Linear, prepack: bool = False) -> Product:
        return cls(linear.weight, linear.bias, prepack)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x.to(BF16).contiguous(), self.packed, self.packed_bias, "none", [], "")
