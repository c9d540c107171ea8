"""Layer strategies: whole layers in a fixed order, heads within a layer by ascending importance.

With L layers (0 = bottom):
- top-first: layers L-1, L-2, ..., 0;
- bottom-first: layers 0, 1, ..., L-1;
- middle-first: layers by distance |l - (L-1)/2| ascending (ties: lower layer first);
- avoid-middle: the reverse of middle-first (outer layers first, the middle ones last);
- avoid-consecutive: every other layer from the top (L-1, L-3, ...), then the rest from the top
  (L-2, L-4, ...), so that no two adjacent layers are emptied before half the layers are.
"""

from __future__ import annotations

from .base import Head, Strategy, StrategyContext, by_importance, register


def layer_order(kind: str, num_layers: int) -> list[int]:
    layers = list(range(num_layers))
    middle = (num_layers - 1) / 2
    if kind == "top-first":
        return layers[::-1]
    if kind == "bottom-first":
        return layers
    if kind == "middle-first":
        return sorted(layers, key=lambda l_: (abs(l_ - middle), l_))
    if kind == "avoid-middle":
        return sorted(layers, key=lambda l_: (abs(l_ - middle), l_))[::-1]
    if kind == "avoid-consecutive":
        top_down = layers[::-1]
        return top_down[0::2] + top_down[1::2]
    raise ValueError(f"unknown layer order {kind!r}")


class _LayerStrategy(Strategy):
    kind: str

    def order(self, ctx: StrategyContext) -> list[Head]:
        layers, heads = ctx.shape
        importance = ctx.bundle.importance.normalized
        result: list[Head] = []
        for layer in layer_order(self.kind, layers):
            result.extend(by_importance(importance, [(layer, h) for h in range(heads)]))
        return result


@register
class TopFirst(_LayerStrategy):
    name = kind = "top-first"
    label = "Layers: top first"
    description = "Whole layers from the top down; within a layer, least important heads first."


@register
class BottomFirst(_LayerStrategy):
    name = kind = "bottom-first"
    label = "Layers: bottom first"
    description = "Whole layers from the bottom up; within a layer, least important heads first."


@register
class MiddleFirst(_LayerStrategy):
    name = kind = "middle-first"
    label = "Layers: middle first"
    description = "Layers closest to the middle first; within a layer, least important heads first."


@register
class AvoidMiddle(_LayerStrategy):
    name = kind = "avoid-middle"
    label = "Layers: avoid middle"
    description = "Outer layers first, middle layers last; within a layer, least important heads first."


@register
class AvoidConsecutive(_LayerStrategy):
    name = kind = "avoid-consecutive"
    label = "Layers: avoid consecutive"
    description = "Every other layer from the top, then the rest from the top; within a layer, least important heads first."
