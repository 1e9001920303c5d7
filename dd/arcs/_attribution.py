"""Which heads differ between wrong and correct responses (Arc 2's attribution).

Both statistics read each head's slice of its layer's o_proj input over the last N response
tokens of teacher-forced (prompt, response) pairs:

- magnitude: the per-token L2 norm of the slice, averaged over those tokens; cohort means for
  wrong (cw) and correct (cr), ``overconf_score = mean_cw - mean_cr``, Cohen's d with the pooled
  SD, heads ranked by signed d (the fields of the released ``path_b_attribution_*.json``);
- directional: the slice averaged over those tokens, a difference-of-means direction per head,
  Cohen's d of the projections onto it and ``cos(mu_cr, mu_cw)``. A direction fitted to the very
  items it is scored on separates any labels in enough dimensions, so d is also measured on a
  held-out half (direction fit on one half, d on the other, both ways, averaged): only the
  held-out d is evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from dd.operators._sites import SiteKind, projection_sites, text_decoder

if TYPE_CHECKING:
    from dd.lm import ForcedBatch, InputHook, LoadedBase


@dataclass(frozen=True)
class HeadSite:
    """A layer's projection, without the module: layer, kind, heads, head_dim, attention index."""

    layer: int
    kind: SiteKind
    n_heads: int
    head_dim: int
    attn_index: int


@dataclass(frozen=True, eq=False)
class HeadInputs:
    """Per item and head: mean L2 norm and mean vector of the o_proj-input slice.

    Attributes:
        sites: the layers read, in order.
        norms: per site, an (n, n_heads) array.
        means: per site, an (n, n_heads, head_dim) array (head_dim may differ per site).
        n_tokens: per item, how many response tokens were averaged.
        last_n_tokens: the N asked for.
    """

    sites: tuple[HeadSite, ...]
    norms: tuple[np.ndarray, ...]
    means: tuple[np.ndarray, ...]
    n_tokens: np.ndarray
    last_n_tokens: int

    def __len__(self) -> int:
        return int(self.n_tokens.shape[0])

    def take(self, idx: Sequence[int] | np.ndarray) -> Self:
        """A subset of items."""
        idx = np.asarray(idx)
        return type(self)(self.sites, tuple(a[idx] for a in self.norms), tuple(a[idx] for a in self.means),
                          self.n_tokens[idx], self.last_n_tokens)

    @classmethod
    def concat(cls, parts: Sequence[HeadInputs]) -> HeadInputs:
        """Items of several collections over the same sites, in order."""
        first = parts[0]
        if any(p.sites != first.sites or p.last_n_tokens != first.last_n_tokens for p in parts):
            raise ValueError("HeadInputs over different sites or token windows cannot be joined")
        return cls(first.sites,
                   tuple(np.concatenate([p.norms[s] for p in parts]) for s in range(len(first.sites))),
                   tuple(np.concatenate([p.means[s] for p in parts]) for s in range(len(first.sites))),
                   np.concatenate([p.n_tokens for p in parts]), first.last_n_tokens)


def collect_head_inputs(
    base: LoadedBase,
    pairs: Sequence[tuple[str, str]],
    *,
    last_n_tokens: int = 32,
    batch_size: int = 8,
    kinds: tuple[SiteKind, ...] = ("attention",),
    chat: bool = True,
    enable_thinking: bool | None = None,
) -> HeadInputs:
    """Teacher-force each pair and read every head's o_proj input over its last response tokens.

    Pre-hooks on the projections reduce inside the forward, so memory does not grow with the
    sequence length. Hooks already on a projection (a tempering operator) act first. The decoder
    runs without the LM head; ``logits_to_keep`` is not used because Gemma 4 then computes its
    KV-shared layers for the kept positions only.

    Args:
        kinds: which sites to read; the paper read attention layers only (``attention``).

    Raises:
        ValueError: for a pair whose response renders to no tokens.
    """
    from dd.lm import render_pair, teacher_force

    sites = [s for s in projection_sites(base.model).values() if s.kind in kinds]
    rendered = [render_pair(base.tokenizer, p, r, chat=chat, enable_thinking=enable_thinking) for p, r in pairs]
    empty = [i for i, r in enumerate(rendered) if r.response_end <= r.response_start]
    if empty:
        raise ValueError(f"pairs {empty[:5]} have no response tokens to attribute")
    n = len(pairs)
    norms = [np.zeros((n, s.n_heads), dtype=np.float32) for s in sites]
    means = [np.zeros((n, s.n_heads, s.head_dim), dtype=np.float32) for s in sites]

    def read(k: int) -> InputHook:
        site = sites[k]

        def hook(batch: ForcedBatch, x: Any) -> None:
            for row, (item, (start, b)) in enumerate(zip(batch.items, batch.spans, strict=True)):
                a = max(start, b - last_n_tokens)
                seg = x[row, a:b].float().reshape(b - a, site.n_heads, site.head_dim)
                norms[k][item] = seg.norm(dim=-1).mean(0).cpu().numpy()
                means[k][item] = seg.mean(0).cpu().numpy()

        return hook

    hooks = [(s.module, read(k)) for k, s in enumerate(sites)]
    for _ in teacher_force(base, rendered, batch_size=batch_size, module=text_decoder(base.model), hooks=hooks,
                           use_cache=False):
        pass  # the hooks read everything during the forward; the outputs are not needed
    used = np.asarray([min(last_n_tokens, r.response_end - r.response_start) for r in rendered], dtype=np.int64)
    hs = tuple(HeadSite(s.layer, s.kind, s.n_heads, s.head_dim, s.attn_index) for s in sites)
    return HeadInputs(hs, tuple(norms), tuple(means), used, last_n_tokens)


def cohen_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean a - mean b) / pooled SD (ddof 1); 0 when both are constant and equal."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Cohen's d needs at least two items per cohort")
    diff = a.mean() - b.mean()
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    if pooled == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / pooled)


def _cohorts(wrong: Any, n: int) -> np.ndarray:
    w = np.asarray(wrong).astype(bool)
    if w.shape != (n,):
        raise ValueError(f"wrong has shape {w.shape}; expected ({n},)")
    return w


@dataclass(frozen=True)
class MagnitudeRow:
    """One head's magnitude statistics (the released JSON's row fields, plus attn_layer_idx)."""

    layer: int
    head: int
    attn_layer_idx: int
    mean_cw: float
    mean_cr: float
    overconf_score: float
    cohen_d: float


@dataclass(frozen=True)
class Attribution:
    """Heads ranked by signed d, with the cohorts and token window that produced them."""

    cohorts: dict[str, int]
    last_n_tokens: int
    rows: tuple[Any, ...]

    def top(self, k: int = 5) -> list[tuple[int, int]]:
        """The first ``k`` (layer, head) pairs."""
        return [(r.layer, r.head) for r in self.rows[:k]]

    def to_json(self) -> dict[str, Any]:
        """The released file's layout: cohorts, last_n_tokens, top 20, bottom 5, all rows."""
        rows = [asdict(r) for r in self.rows]
        return {"cohorts": dict(self.cohorts), "last_n_tokens": self.last_n_tokens,
                "top20_overconf_heads": rows[:20], "bottom5_overconf_heads": rows[-5:],
                "all_heads_ranked_by_cohen_d": rows}


def magnitude_attribution(inputs: HeadInputs, wrong: Any) -> Attribution:
    """Rank heads by Cohen's d of their mean o_proj-input norm, wrong minus correct.

    Args:
        inputs: from ``collect_head_inputs``.
        wrong: per item, True for the wrong (cw) cohort, False for the correct (cr) one.
    """
    w = _cohorts(wrong, len(inputs))
    rows = []
    for site, norms in zip(inputs.sites, inputs.norms, strict=True):
        for h in range(site.n_heads):
            cw, cr = norms[w, h], norms[~w, h]
            rows.append(MagnitudeRow(site.layer, h, site.attn_index, float(cw.mean()), float(cr.mean()),
                                     float(cw.mean() - cr.mean()), cohen_d(cw, cr)))
    rows.sort(key=lambda r: -r.cohen_d)
    return Attribution({"cw": int(w.sum()), "cr": int((~w).sum())}, inputs.last_n_tokens, tuple(rows))


@dataclass(frozen=True)
class DirectionalRow:
    """One head's directional statistics.

    Attributes:
        cohen_d: d of projections onto the direction fitted on all items (in-sample).
        cohen_d_heldout: d on each half of projections onto the other half's direction, averaged.
        cos_cr_cw: cosine between the two cohort mean vectors.
    """

    layer: int
    head: int
    attn_layer_idx: int
    cohen_d: float
    cohen_d_heldout: float
    cos_cr_cw: float


def _split_halves(w: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves with each cohort split evenly."""
    rng = np.random.default_rng(random_state)
    a: list[int] = []
    b: list[int] = []
    for cohort in (True, False):
        idx = rng.permutation(np.flatnonzero(w == cohort))
        if len(idx) < 4:
            raise ValueError("held-out directional d needs at least 4 items per cohort")
        a += idx[: len(idx) // 2].tolist()
        b += idx[len(idx) // 2 :].tolist()
    return np.sort(a), np.sort(b)


def _direction_d(fit_x: np.ndarray, fit_w: np.ndarray, eval_x: np.ndarray, eval_w: np.ndarray) -> float:
    direction = fit_x[fit_w].mean(0) - fit_x[~fit_w].mean(0)
    norm = np.linalg.norm(direction)
    if norm == 0:
        return 0.0
    proj = eval_x @ (direction / norm)
    return cohen_d(proj[eval_w], proj[~eval_w])


def directional_stats(x: np.ndarray, wrong: Any, *, random_state: int = 0) -> tuple[float, float, float]:
    """(in-sample d, held-out d, cos(mu_cr, mu_cw)) for item vectors ``x`` of shape (n, dim)."""
    x = np.asarray(x, dtype=np.float64)
    w = _cohorts(wrong, len(x))
    a, b = _split_halves(w, random_state)
    d_in = _direction_d(x, w, x, w)
    d_out = (_direction_d(x[a], w[a], x[b], w[b]) + _direction_d(x[b], w[b], x[a], w[a])) / 2
    mu_cw, mu_cr = x[w].mean(0), x[~w].mean(0)
    denom = np.linalg.norm(mu_cw) * np.linalg.norm(mu_cr)
    cos = float(mu_cw @ mu_cr / denom) if denom else 0.0
    return d_in, float(d_out), cos


def directional_attribution(inputs: HeadInputs, wrong: Any, *, random_state: int = 0) -> Attribution:
    """Per head: difference-of-means direction, in-sample and held-out d, cos(mu_cr, mu_cw).

    Rows are ranked by in-sample d, as the paper ranked them; read ``cohen_d_heldout`` beside it.
    """
    w = _cohorts(wrong, len(inputs))
    rows = []
    for site, means in zip(inputs.sites, inputs.means, strict=True):
        for h in range(site.n_heads):
            d_in, d_out, cos = directional_stats(means[:, h], w, random_state=random_state)
            rows.append(DirectionalRow(site.layer, h, site.attn_index, d_in, d_out, cos))
    rows.sort(key=lambda r: -r.cohen_d)
    return Attribution({"cw": int(w.sum()), "cr": int((~w).sum())}, inputs.last_n_tokens, tuple(rows))
