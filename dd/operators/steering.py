"""Activation steering: add a direction to one decoder layer's output, times a multiplier.

The vector is a difference of means of the residual stream at a layer's output over contrastive
pairs: one train prompt answered the way the claim wants (``positive``) and the other way
(``negative``), read on the response tokens through the one teacher-forcing loop. Only
train-split prompts may build it, so each pair's prompt hash is recorded for the split ledger to
check against the fresh split. While applied, a forward hook adds ``multiplier * vector`` at
every position, ahead of transformers' own hidden-state recording, so ``output_hidden_states``
shows the steered stream. The baseline a steering claim must beat is a random direction of the
same norm at the same layer (`SteeringVector.random_direction`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dd.operators._hooks import HookHandle
from dd.operators._protocol import KeyMixin
from dd.operators._registry import register_operator
from dd.operators._sites import decoder_layers, model_of
from dd.paper import content_hash

if TYPE_CHECKING:
    from dd.lm import LoadedBase


@dataclass(frozen=True)
class ContrastivePair:
    """One train prompt with the answer the claim wants (``positive``) and its opposite."""

    prompt: str
    positive: str
    negative: str


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """A direction in one layer's residual stream, with what it was built from.

    Attributes:
        layer: the decoder layer whose output it is added to.
        values: (hidden,) float32, read-only.
        source: how it was made (``diff-of-means over 40 pairs on tiny-llama``, ``random ...``).
        train_hashes: content hashes of the prompts that built it (for the split ledger).
    """

    layer: int
    values: np.ndarray
    source: str
    train_hashes: tuple[str, ...]

    def __post_init__(self) -> None:
        values = np.array(self.values, dtype=np.float32).reshape(-1)
        if not np.isfinite(values).all():
            raise ValueError(f"steering vector at layer {self.layer} ({self.source}) has non-finite values")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "train_hashes", tuple(self.train_hashes))

    @property
    def sha256(self) -> str:
        """Hash of the float32 values: what the cache key records of the vector."""
        return hashlib.sha256(self.values.astype("<f4").tobytes()).hexdigest()

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.values.astype(np.float64)))

    def random_direction(self, seed: int) -> SteeringVector:
        """A Gaussian direction of this vector's norm at this layer: the baseline a claim must beat."""
        g = np.random.default_rng(seed).standard_normal(len(self.values))
        return SteeringVector(self.layer, g / np.linalg.norm(g) * self.norm,
                              f"random direction (seed {seed}) of the norm of {self.sha256[:12]}", self.train_hashes)


def _layer(model: Any, layer: int, who: str) -> Any:
    """The decoder layer module, or a clear error naming the layer and the layer count."""
    layers = decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(f"steering layer {layer} is out of range: {who} has {len(layers)} decoder layers "
                         f"(0..{len(layers) - 1})")
    return layers[layer]


def _stream(out: Any) -> Any:
    """A decoder layer's residual-stream output (transformers returns a tensor or a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def steering_vector(base: LoadedBase, pairs: Sequence[ContrastivePair], layer: int, *,
                    batch_size: int = 8) -> SteeringVector:
    """mean(positive) - mean(negative) of ``layer``'s output over each response's tokens.

    Each response is first averaged over its own tokens, so long answers do not outweigh short
    ones; then the pairs are averaged.

    Raises:
        ValueError: for a layer out of range, no pairs, or a response that renders to no token.
    """
    import torch

    from dd.lm import render_pair, teacher_force
    from dd.operators._sites import text_decoder

    module = _layer(base.model, layer, base.name)
    if not pairs:
        raise ValueError("a steering vector needs at least one contrastive pair")
    texts = [(p.prompt, r) for p in pairs for r in (p.positive, p.negative)]
    rendered = [render_pair(base.tokenizer, prompt, response) for prompt, response in texts]
    means: list[Any] = [None] * len(rendered)
    seen: dict[str, Any] = {}
    hook = module.register_forward_hook(lambda _m, _a, out: seen.__setitem__("h", _stream(out)))
    try:
        for batch, _ in teacher_force(base, rendered, batch_size=batch_size, module=text_decoder(base.model)):
            h = seen.pop("h")
            for row, (i, (a, b)) in enumerate(zip(batch.items, batch.spans, strict=True)):
                if b <= a:
                    side = "positive" if i % 2 == 0 else "negative"
                    raise ValueError(f"pair {i // 2}: the {side} response renders to no token")
                means[i] = h[row, a:b].to(torch.float64).mean(0)
    finally:
        hook.remove()
    diff = torch.stack(means[0::2]).mean(0) - torch.stack(means[1::2]).mean(0)
    return SteeringVector(layer, diff.cpu().numpy(), f"diff-of-means over {len(pairs)} pairs on {base.name}",
                          tuple(content_hash([p.prompt]) for p in pairs))


@dataclass(frozen=True)
class SteeringSpec:
    """Attributes: layer; multiplier; vector_sha256: the vector's hash (`SteeringVector.sha256`)."""

    layer: int
    multiplier: float
    vector_sha256: str


@register_operator("steering")
class Steering(KeyMixin):
    """Add ``multiplier * vector`` to the output of the vector's layer at every position while applied."""

    name = "steering"
    kind = "hook"

    def __init__(self, vector: SteeringVector, multiplier: float) -> None:
        self.vector = vector
        self.spec = SteeringSpec(vector.layer, float(multiplier), vector.sha256)

    def apply(self, base: LoadedBase | Any) -> HookHandle:
        """Register the hook now.

        Raises:
            ValueError: the layer is out of range, or the vector's width is not the layer's.
        """
        import torch

        model = model_of(base)
        layer = self.spec.layer
        module = _layer(model, layer, getattr(base, "name", type(model).__name__))
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        if len(self.vector.values) != config.hidden_size:
            raise ValueError(f"steering vector has width {len(self.vector.values)}; layer {layer} of this model "
                             f"has {config.hidden_size}")
        delta = self.spec.multiplier * torch.from_numpy(self.vector.values.copy())
        hooks: list[Any] = []
        handle = HookHandle(hooks)

        def hook(_module: Any, _args: Any, out: Any) -> Any:
            handle.calls[layer] += 1
            h = _stream(out)
            steered = h + delta.to(device=h.device, dtype=h.dtype)
            return (steered, *out[1:]) if isinstance(out, tuple) else steered

        hooks.append(module.register_forward_hook(hook, prepend=True))
        return handle
