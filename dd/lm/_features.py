"""Teacher-forced hidden-state features over (prompt, response) pairs.

The probes of the paper read a base's hidden state after it has "said" a response. Each pair is
rendered as one chat (user turn = prompt, assistant turn = response; or ``PLAIN_PAIR`` for a base
without a chat template), run through the model once, and three features are read:

- ``h_last``: the last layer (``hidden_states[-1]``) at the final token of the rendered sequence
  (for chat templates that is the end-of-turn token(s) after the response);
- ``last_n_mean``: ``hidden_states[-N:]`` averaged, at that same token;
- ``response_mean``: the last layer averaged over the response's tokens (``h_last`` when
  truncation by ``max_length`` leaves no response token; ``n_response_tokens`` is then 0).

Batches are left-padded with ``position_ids`` from the mask, so a batched item equals the item
alone; items are bucketed by length to limit padding, whose share is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dd.core import Cache, CacheKey, model_run_key, sha256_json
from dd.lm._generate import PLAIN_PAIR, _batches, _progress, _template_kwargs, left_pad, uses_chat_template

if TYPE_CHECKING:
    from dd.lm._models import LazyBase, LoadedBase


@dataclass(frozen=True)
class FeatureSpec:
    """What to extract; every field but ``batch_size`` is a cache-key part.

    Attributes:
        last_n: number of final layers averaged into ``last_n_mean``.
        max_length: keep only the first ``max_length`` tokens of each rendered pair (None = all).
        batch_size: pairs per forward pass (does not change results beyond float noise).
        chat: render with the chat template when the tokenizer has one.
        enable_thinking: passed to templates that read it (Qwen3); None = template default.
    """

    last_n: int = 4
    max_length: int | None = None
    batch_size: int = 8
    chat: bool = True
    enable_thinking: bool | None = None

    def key_parts(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("batch_size")
        d["positions"] = "last_token,response_mean"
        return {f"feat.{k}": v for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features for n pairs (float32 arrays of shape (n, d); per-item facts of shape (n,))."""

    h_last: np.ndarray
    last_n_mean: np.ndarray
    response_mean: np.ndarray
    positions: np.ndarray
    n_response_tokens: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray
    padding_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.h_last.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an npz file or the cache."""
        return {
            "h_last": self.h_last,
            "last_n_mean": self.last_n_mean,
            "response_mean": self.response_mean,
            "positions": self.positions,
            "n_response_tokens": self.n_response_tokens,
            "n_tokens": self.n_tokens,
            "truncated": self.truncated,
            "padding_share": np.asarray(self.padding_share, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> FeatureSet:
        return cls(
            h_last=d["h_last"],
            last_n_mean=d["last_n_mean"],
            response_mean=d["response_mean"],
            positions=d["positions"],
            n_response_tokens=d["n_response_tokens"],
            n_tokens=d["n_tokens"],
            truncated=d["truncated"].astype(bool),
            padding_share=float(d["padding_share"]),
        )


@dataclass(frozen=True)
class RenderedPair:
    """Token ids of one rendered pair and which of them belong to the response."""

    ids: tuple[int, ...]
    response_start: int  # first response token index
    response_end: int  # one past the last response token index


def render_pair(
    tokenizer: Any,
    prompt: str,
    response: str,
    *,
    chat: bool = True,
    enable_thinking: bool | None = None,
    max_length: int | None = None,
) -> RenderedPair:
    """Render (prompt, response) as one sequence and locate the response tokens.

    Response tokens are found through character offsets, so templates that add text around
    the assistant content (Qwen3's empty think block, end-of-turn markers) are handled.
    """
    if uses_chat_template(tokenizer, chat):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            tokenize=False,
            **_template_kwargs(enable_thinking),
        )
        add_special = False
    else:
        text = PLAIN_PAIR.format(prompt=prompt, response=response)
        add_special = True
    enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    needle = response if response in text else response.strip()
    start_char = text.rfind(needle) if needle else len(text)
    end_char = start_char + len(needle)
    inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end_char and b > start_char]
    r0, r1 = (inside[0], inside[-1] + 1) if inside else (len(ids), len(ids))
    if max_length is not None and len(ids) > max_length:
        ids = ids[:max_length]
        r0, r1 = min(r0, max_length), min(r1, max_length)
    return RenderedPair(tuple(ids), r0, r1)


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
    progress: bool | None = None,
) -> FeatureSet:
    """Teacher-force each pair through the base and read its hidden-state features.

    Args:
        base: a loaded base.
        pairs: (prompt, response) pairs.
        spec: layers, truncation and rendering.
        truncated: per pair, whether the response ended at a length limit (recorded only).
        progress: tqdm bar; default on when more than 8 pairs.
    """
    import torch

    n = len(pairs)
    tok, model = base.tokenizer, base.model
    rendered = [
        render_pair(tok, p, r, chat=spec.chat, enable_thinking=spec.enable_thinking, max_length=spec.max_length)
        for p, r in pairs
    ]
    d = None
    out: dict[str, np.ndarray] = {}
    real = padded = 0
    bar = _progress(n, progress, f"features {base.name}")
    with torch.inference_mode():
        for batch in _batches([len(r.ids) for r in rendered], max(1, spec.batch_size)):
            seqs = [rendered[i].ids for i in batch]
            ids, mask, pos = left_pad(seqs, base.pad_token_id, base.device)
            width = ids.shape[1]
            real += int(mask.sum())
            padded += ids.numel()
            o = model(
                input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True, logits_to_keep=1
            )
            hs = [_hidden(h) for h in o.hidden_states]
            last = hs[-1].float()
            if d is None:
                d = last.shape[-1]
                for k in ("h_last", "last_n_mean", "response_mean"):
                    out[k] = np.zeros((n, d), dtype=np.float32)
            k_n = max(1, min(spec.last_n, len(hs)))
            stack = torch.stack([h[:, -1, :].float() for h in hs[-k_n:]], 0).mean(0)
            for row, i in enumerate(batch):
                r = rendered[i]
                off = width - len(r.ids)
                out["h_last"][i] = last[row, -1].cpu().numpy()
                out["last_n_mean"][i] = stack[row].cpu().numpy()
                if r.response_end > r.response_start:
                    seg = last[row, off + r.response_start : off + r.response_end]
                    out["response_mean"][i] = seg.mean(0).cpu().numpy()
                else:
                    out["response_mean"][i] = out["h_last"][i]
            bar.update(len(batch))
    bar.close()
    if d is None:
        out = {k: np.zeros((0, 0), dtype=np.float32) for k in ("h_last", "last_n_mean", "response_mean")}
    return FeatureSet(
        h_last=out["h_last"],
        last_n_mean=out["last_n_mean"],
        response_mean=out["response_mean"],
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
    progress: bool | None = None,
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
