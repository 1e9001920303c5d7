"""Teacher-forced hidden-state features over (prompt, response) pairs.

The probes of the paper read a base's hidden state after it has "said" a response. Each pair is
rendered as one chat (``render_pair``) and run through the model once; the features are
read-outs of that one pass, each a token position (or pool over tokens) and a layer pool:

- positions: ``last_rendered``, the last token of the rendered sequence (with a chat template the
  last of its closing tokens after the response: for SmolLM2 the newline after ``<|im_end|>``);
  ``last_response``, the last response token; ``mean_response``, the mean over the response
  tokens (both fall back to ``last_rendered`` when truncation leaves no response token;
  ``n_response_tokens`` is then 0).
- layer pools: ``last`` (``hidden_states[-1]``) and ``last_n_mean`` (``hidden_states[-N:]``
  averaged); with ``each_of_last=k`` also each of the last k layers on its own, ``layer-2`` ...
  ``layer-k`` (``hidden_states[-2]`` ... ``hidden_states[-k]``; ``layer-1`` is ``last``), at the
  two token positions, for a base deep enough to have them. ``mean_response`` is read at the
  last layer only: a read-out pools over tokens or over layers, not both.

The default reads ``last_rendered`` (both layer pools) and ``mean_response``: what the suite read
before positions were named, so that its cache entries stay valid. The paper's "final non-pad
token of prompt plus response" does not say which of the first two it means: with a chat
template the two differ by the template's closing tokens, so the claims run both.

The pass is the package's one teacher-forcing loop (``teacher_force``): left-padded with
``position_ids`` from the mask, so a batched item equals the item alone, and bucketed by length
to limit padding, whose share is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from dd.core import Cache, CacheKey, model_run_key, sha256_json
from dd.core import progress as progress_bar
from dd.lm._forcing import render_pair, teacher_force

if TYPE_CHECKING:
    from dd.lm._models import LazyBase, LoadedBase

Position = Literal["last_rendered", "last_response", "mean_response"]
#: the layer pools; a read-out's layers is a pool or one layer counted from the end (`single_layer`)
POOLS: tuple[str, ...] = ("last", "last_n_mean")
SINGLE_LAYER_POSITIONS: tuple[Position, ...] = ("last_rendered", "last_response")
POSITIONS: tuple[Position, ...] = ("last_rendered", "last_response", "mean_response")
DEFAULT_POSITIONS: tuple[Position, ...] = ("last_rendered", "mean_response")
#: (position, layer pool) -> the `FeatureSet` field (and cache array) holding it; the first three
#: are the names features had before positions were named.
READOUTS: dict[tuple[Position, str], str] = {
    ("last_rendered", "last"): "h_last",
    ("last_rendered", "last_n_mean"): "last_n_mean",
    ("mean_response", "last"): "response_mean",
    ("last_response", "last"): "last_response",
    ("last_response", "last_n_mean"): "last_response_n_mean",
}


def single_layer(j: int) -> str:
    """The name of the j-th layer from the end (j >= 2; the last layer is the pool ``last``)."""
    return f"layer-{j}"


def single_layer_depth(layers: str) -> int | None:
    """j for ``layer-j`` (None for a pool); a malformed name is an error, not a pool."""
    if layers in POOLS:
        return None
    head, _, tail = layers.partition("-")
    if head != "layer" or not tail.isdigit() or int(tail) < 2:
        raise ValueError(f"unknown layer read-out {layers!r}: a pool {POOLS} or 'layer-<j>' with j >= 2")
    return int(tail)


def readout_name(position: Position, layers: str) -> str:
    """The `FeatureSet` array (and cache array) holding one read-out."""
    if single_layer_depth(layers) is None:
        name = READOUTS.get((position, layers))
        if name is None:
            raise ValueError(f"no read-out {position}/{layers}: {list(READOUTS)} (mean_response is last-layer only)")
        return name
    if position not in SINGLE_LAYER_POSITIONS:
        raise ValueError(f"no read-out {position}/{layers}: single layers are read at {SINGLE_LAYER_POSITIONS}")
    return f"{position}@{layers}"


@dataclass(frozen=True)
class FeatureSpec:
    """What to extract; every field but ``batch_size`` is a cache-key part.

    Attributes:
        last_n: number of final layers averaged into the ``last_n_mean`` read-outs.
        max_length: keep only the first ``max_length`` tokens of each rendered pair (None = all).
        batch_size: pairs per forward pass (does not change results beyond float noise).
        chat: render with the chat template when the tokenizer has one.
        enable_thinking: passed to templates that read it (Qwen3); None = template default.
        positions: the positions read, all from the same forward pass (kept in `POSITIONS` order).
        response_cap: keep at most this many response tokens (None = all); the template's
            closing tokens stay after them.
        each_of_last: also read each of the last k layers on its own (0 = none; else k >= 2).
    """

    last_n: int = 4
    max_length: int | None = None
    batch_size: int = 8
    chat: bool = True
    enable_thinking: bool | None = None
    positions: tuple[Position, ...] = DEFAULT_POSITIONS
    response_cap: int | None = None
    each_of_last: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.positions) - set(POSITIONS)
        if unknown or not self.positions:
            raise ValueError(f"positions must be a non-empty subset of {POSITIONS}, got {self.positions}")
        if self.response_cap is not None and self.response_cap < 1:
            raise ValueError(f"response_cap must be at least 1 (or None), got {self.response_cap}")
        if self.each_of_last == 1 or self.each_of_last < 0:
            raise ValueError(f"each_of_last must be 0 or at least 2 (layer 1 is `last`), got {self.each_of_last}")
        object.__setattr__(self, "positions", tuple(p for p in POSITIONS if p in self.positions))

    @property
    def readouts(self) -> tuple[tuple[Position, str], ...]:
        """The (position, layers) read-outs this spec asks for (a shallow base lacks the deepest single layers)."""
        single = [(p, single_layer(j)) for p in SINGLE_LAYER_POSITIONS if p in self.positions
                  for j in range(2, self.each_of_last + 1)]
        return (*(r for r in READOUTS if r[0] in self.positions), *single)

    def key_parts(self) -> dict[str, Any]:
        """Key parts; the default spec's are exactly those of features cached before positions were named.

        ``feat.positions`` keeps its old value for the default, and ``feat.response_cap`` and
        ``feat.each_of_last`` appear only when set, so every entry cached under the old key is still found.
        """
        d = asdict(self)
        d.pop("batch_size")
        d["positions"] = "last_token,response_mean" if self.positions == DEFAULT_POSITIONS else ",".join(self.positions)
        if self.response_cap is None:
            d.pop("response_cap")
        if not self.each_of_last:
            d.pop("each_of_last")
        return {f"feat.{k}": v for k, v in d.items()}

    def report(self, position: Position, layers: str = "last") -> dict[str, Any]:
        """The metrics a claim records for the read-out it probes: position, layer pool and response cap."""
        return {"position": position, "layers": layers, "last_n": self.last_n, "response_cap": self.response_cap}


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features for n pairs: read-outs as float32 (n, d) arrays (None where not extracted), facts as (n,).

    Attributes:
        positions: per pair, the index of its last rendered token.
        n_response_tokens: per pair, response tokens kept (after ``response_cap`` and ``max_length``).
        n_tokens: per pair, rendered tokens kept.
        truncated: per pair, whether its response ended at a length limit (recorded only).
        single_layers: the single-layer read-outs, by `readout_name`.
    """

    positions: np.ndarray
    n_response_tokens: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray
    h_last: np.ndarray | None = None
    last_n_mean: np.ndarray | None = None
    response_mean: np.ndarray | None = None
    last_response: np.ndarray | None = None
    last_response_n_mean: np.ndarray | None = None
    padding_share: float = 0.0
    single_layers: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.n_tokens.shape[0])

    def view(self, position: Position, layers: str = "last") -> np.ndarray:
        """The (n, d) read-out at ``position`` through ``layers``.

        Raises:
            ValueError: for a read-out that does not exist or was not extracted.
        """
        name = readout_name(position, layers)
        single = single_layer_depth(layers) is not None
        X = self.single_layers.get(name) if single else getattr(self, name)
        if X is None:
            raise ValueError(f"{position}/{layers} was not extracted: add the position to FeatureSpec.positions"
                             + (" and read FeatureSpec.each_of_last layers from a base that deep" if single else ""))
        return X

    def held(self) -> set[tuple[Position, str]]:
        """The (position, layers) read-outs these features hold."""
        pooled = {r for r, name in READOUTS.items() if getattr(self, name) is not None}
        single = {(cast(Position, p), layers) for p, _, layers in (n.partition("@") for n in self.single_layers)}
        return pooled | single

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an npz file or the cache."""
        readouts = {name: getattr(self, name) for name in READOUTS.values() if getattr(self, name) is not None}
        return {
            **readouts,
            **self.single_layers,
            "positions": self.positions,
            "n_response_tokens": self.n_response_tokens,
            "n_tokens": self.n_tokens,
            "truncated": self.truncated,
            "padding_share": np.asarray(self.padding_share, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> FeatureSet:
        readouts: dict[str, Any] = {name: d[name] for name in READOUTS.values() if name in d}
        return cls(
            **readouts,
            single_layers={name: d[name] for name in d if "@layer-" in name},
            positions=d["positions"],
            n_response_tokens=d["n_response_tokens"],
            n_tokens=d["n_tokens"],
            truncated=d["truncated"].astype(bool),
            padding_share=float(d["padding_share"]),
        )


def _hidden(h: Any) -> Any:
    """Gemma 3n-style hidden states carry an extra leading (altup) dim; keep the main stream."""
    while h.dim() > 3:
        h = h[0]
    return h


def extract_features(
    base: LoadedBase,
    pairs: Sequence[tuple[str, str]],
    spec: FeatureSpec = FeatureSpec(),
    *,
    truncated: Sequence[bool] | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Teacher-force each pair through the base once and read every read-out of ``spec`` from that pass.

    Args:
        base: a loaded base.
        pairs: (prompt, response) pairs.
        spec: positions, layers, truncation and rendering.
        truncated: per pair, whether the response ended at a length limit (recorded only).
        progress: allow a bar on the user's terminal (`dd.core.progress` decides whether one shows).
    """
    import torch

    n = len(pairs)
    rendered = [
        render_pair(base.tokenizer, p, r, chat=spec.chat, enable_thinking=spec.enable_thinking,
                    max_length=spec.max_length, response_cap=spec.response_cap)
        for p, r in pairs
    ]
    out: dict[str, np.ndarray] = {}
    real = padded = 0
    bar = progress_bar(n, f"features {base.name}", enabled=progress)
    for batch, o in teacher_force(base, rendered, batch_size=spec.batch_size, output_hidden_states=True,
                                  logits_to_keep=1):
        real += int(batch.attention_mask.sum())
        padded += batch.input_ids.numel()
        hs = [_hidden(h) for h in o.hidden_states]
        last = hs[-1].float()
        deep = hs[-max(1, min(spec.last_n, len(hs))):]
        n_layers = len(hs) - 1  # hidden_states[0] is the embedding output
        rows = torch.arange(len(batch.items), device=last.device)
        end = last.shape[1] - 1
        at = {"last_rendered": torch.full_like(rows, end),
              "last_response": torch.tensor([b - 1 if b > a else end for a, b in batch.spans], device=last.device)}
        for position, layers in spec.readouts:
            depth = single_layer_depth(layers)
            if depth is not None and depth > n_layers:
                continue
            if position == "mean_response":
                values = torch.stack([last[r, a:b].mean(0) if b > a else last[r, end]
                                      for r, (a, b) in enumerate(batch.spans)])
            elif layers == "last":
                values = last[rows, at[position]]
            elif depth is not None:
                values = hs[-depth][rows, at[position]].float()
            else:
                values = torch.stack([h[rows, at[position]].float() for h in deep], 0).mean(0)
            held = out.setdefault(readout_name(position, layers), np.zeros((n, values.shape[-1]), dtype=np.float32))
            held[list(batch.items)] = values.cpu().numpy()
        bar.update(len(batch.items))
    bar.close()
    readouts: dict[str, Any] = {READOUTS[r]: out.get(READOUTS[r], np.zeros((0, 0), dtype=np.float32))
                                for r in spec.readouts if r in READOUTS}
    return FeatureSet(
        **readouts,
        single_layers={name: values for name, values in out.items() if "@layer-" in name},
        positions=np.asarray([len(r.ids) - 1 for r in rendered], dtype=np.int64),
        n_response_tokens=np.asarray([r.response_end - r.response_start for r in rendered], dtype=np.int64),
        n_tokens=np.asarray([len(r.ids) for r in rendered], dtype=np.int64),
        truncated=np.asarray(list(truncated) if truncated is not None else [False] * n, dtype=bool),
        padding_share=(1.0 - real / padded) if padded else 0.0,
    )


def feature_key(
    base: LoadedBase | LazyBase,
    pairs: Sequence[tuple[str, str]],
    spec: FeatureSpec,
    *,
    truncated: Sequence[bool] | None = None,
    operator: str = "frozen",
) -> CacheKey:
    """The cache key of a feature run: base identity, spec, pair-set hash, operator, code version."""
    items = {"pairs_sha256": sha256_json([[p, r] for p, r in pairs]),
             "truncated_sha256": sha256_json(list(map(bool, truncated)) if truncated is not None else None)}
    return model_run_key("features", base.identity(), spec.key_parts(), items, n_items=len(pairs), operator=operator)


def cached_features(
    base: LoadedBase | LazyBase,
    pairs: Sequence[tuple[str, str]],
    spec: FeatureSpec = FeatureSpec(),
    cache: Cache | None = None,
    *,
    truncated: Sequence[bool] | None = None,
    operator: str = "frozen",
    progress: bool = True,
) -> FeatureSet:
    """``extract_features`` through the cache (npz entry of kind "features").

    ``base`` may be a `LazyBase`: the key needs only its identity, so a hit loads no model.
    ``operator`` names an edit the caller has applied to ``base.model``; the key records it.
    """
    cache = cache or Cache()
    key = feature_key(base, pairs, spec, truncated=truncated, operator=operator)
    arrays = cache.get_or_build(
        key, lambda: extract_features(base.load(), pairs, spec, truncated=truncated, progress=progress).to_arrays()
    )
    return FeatureSet.from_arrays(arrays)
