"""Head tempering (Arc 2): scale chosen heads' o_proj-input slices by lambda.

A forward pre-hook on each chosen layer's output projection multiplies head ``h``'s slice of the
projection input by ``lam``, which is exactly scaling the matching o_proj weight columns, without
touching the weights (so an adapter or a cached base is never mutated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dd.operators._hooks import HookHandle
from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator
from dd.operators._sites import Site, model_of, projection_sites

if TYPE_CHECKING:
    from dd.lm import LoadedBase


@dataclass(frozen=True)
class TemperingSpec:
    """Which heads, by how much.

    Attributes:
        heads: sorted, unique (layer, head) pairs.
        lam: the scale applied to each chosen head's slice.
        allow_linear_attn: also accept Qwen3.5 DeltaNet layers (heads = value heads of
            ``linear_attn.out_proj``); off by default because the paper tempered attention heads.
    """

    heads: tuple[tuple[int, int], ...]
    lam: float
    allow_linear_attn: bool = False


@register_operator("tempering")
class Tempering(KeyMixin):
    """Scale (layer, head) o_proj-input slices by ``lam`` while applied."""

    name = "tempering"
    kind = "hook"

    def __init__(self, heads: list[tuple[int, int]] | tuple[tuple[int, int], ...], lam: float, *,
                 allow_linear_attn: bool = False) -> None:
        pairs = tuple(sorted({(int(layer), int(head)) for layer, head in heads}))
        if not pairs:
            raise ValueError("tempering needs at least one (layer, head)")
        self.spec = TemperingSpec(pairs, float(lam), allow_linear_attn)

    def _check(self, sites: dict[int, Site]) -> dict[int, list[int]]:
        by_layer: dict[int, list[int]] = {}
        for layer, head in self.spec.heads:
            site = sites.get(layer)
            if site is None:
                raise ValueError(f"layer {layer} has no output projection (layers: {sorted(sites)})")
            if site.kind != "attention" and not self.spec.allow_linear_attn:
                raise ValueError(
                    f"layer {layer} is a {site.kind} (Gated DeltaNet) layer with no self_attn.o_proj; "
                    f"attention layers are {[i for i, s in sites.items() if s.kind == 'attention']} "
                    "(pass allow_linear_attn=True to scale its linear_attn.out_proj value heads)"
                )
            if not 0 <= head < site.n_heads:
                raise ValueError(f"layer {layer} has {site.n_heads} heads; head {head} does not exist")
            by_layer.setdefault(layer, []).append(head)
        return by_layer

    def apply(self, base: LoadedBase | Any) -> HookHandle:
        """Register one pre-hook per chosen layer now.

        Raises:
            ValueError: for a layer without an attention o_proj (unless allowed) or a bad head.
        """
        import torch

        sites = projection_sites(model_of(base))
        hooks: list[Any] = []
        handle = HookHandle(hooks)
        for layer, heads in self._check(sites).items():
            site = sites[layer]
            scale = torch.ones(site.n_heads * site.head_dim)
            for h in heads:
                scale[h * site.head_dim : (h + 1) * site.head_dim] = self.spec.lam

            def hook(module: Any, args: tuple[Any, ...], *, layer: int = layer, scale: Any = scale) -> tuple[Any, ...]:
                handle.calls[layer] += 1
                x = args[0]
                return (x * scale.to(device=x.device, dtype=x.dtype), *args[1:])

            hooks.append(site.module.register_forward_pre_hook(hook))
        return handle
