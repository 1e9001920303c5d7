"""Where each decoder layer's heads meet its output projection.

The o_proj input of a layer is the heads' outputs concatenated, so head ``h`` is the slice
``[h * head_dim, (h + 1) * head_dim)``. head_dim is read per layer from the projection's width
(Gemma 4's full-attention layers are wider than its sliding ones) and checked against the
attention module. Qwen3.5's Gated DeltaNet layers have no ``self_attn.o_proj``; their
``linear_attn.out_proj`` concatenates ``num_v_heads`` value heads of ``head_v_dim`` and is a site of
kind ``linear_attn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SiteKind = Literal["attention", "linear_attn"]


@dataclass(frozen=True)
class Site:
    """One layer's output projection.

    Attributes:
        layer: decoder layer index.
        kind: ``attention`` (``self_attn.o_proj``) or ``linear_attn`` (``linear_attn.out_proj``).
        module: the projection (an ``nn.Linear`` or an adapter wrapping one).
        n_heads: heads concatenated in its input.
        head_dim: width of each head's slice.
        attn_index: index among the layers of the same kind.
    """

    layer: int
    kind: SiteKind
    module: Any
    n_heads: int
    head_dim: int
    attn_index: int


def text_decoder(model: Any) -> Any:
    """The text decoder stack without the LM head (also under multimodal wrappers and peft)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder() if hasattr(inner, "get_decoder") else inner


def decoder_layers(model: Any) -> Any:
    """The text decoder's layer list."""
    layers = getattr(text_decoder(model), "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no decoder `.layers` found")
    return layers


def _in_features(module: Any) -> int:
    base = getattr(module, "base_layer", module)
    return int(base.in_features)


def _text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def projection_sites(model: Any) -> dict[int, Site]:
    """Every decoder layer's output-projection site, keyed by layer index."""
    config = _text_config(model)
    sites: dict[int, Site] = {}
    counts: dict[SiteKind, int] = {"attention": 0, "linear_attn": 0}
    kind: SiteKind
    for i, layer in enumerate(decoder_layers(model)):
        attn = getattr(layer, "self_attn", None)
        lin = getattr(layer, "linear_attn", None)
        if attn is not None and hasattr(attn, "o_proj"):
            module, kind = attn.o_proj, "attention"
            n_heads = int(getattr(attn, "num_heads", 0) or config.num_attention_heads)
            declared = getattr(attn, "head_dim", None)
        elif lin is not None and hasattr(lin, "out_proj"):
            module, kind = lin.out_proj, "linear_attn"
            n_heads = int(lin.num_v_heads)
            declared = getattr(lin, "head_v_dim", None)
        else:
            continue
        width = _in_features(module)
        if width % n_heads:
            raise ValueError(f"layer {i}: projection input {width} is not divisible by {n_heads} heads")
        head_dim = width // n_heads
        if declared is not None and int(declared) != head_dim:
            raise ValueError(f"layer {i}: head_dim {declared} disagrees with {width} / {n_heads} heads")
        sites[i] = Site(i, kind, module, n_heads, head_dim, counts[kind])
        counts[kind] += 1
    return sites


def model_of(base: Any) -> Any:
    """The model of a ``LoadedBase``, or the argument itself."""
    return getattr(base, "model", base)
