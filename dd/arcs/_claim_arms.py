"""The cached stages of a claim run: steering vectors, reference perplexity, judged arms.

Every stage that needs a model or a judge goes through the suite's one cache, so a warm re-run
loads no model and asks no judge: generations through `arm_generations` in chunks (an interrupted
run keeps each finished chunk), judge replies in the judge client's cache (one entry per reply),
and here the steering vector (kind ``steering``, keyed by the base, the layer and the contrastive
pairs) and the perplexity of the reference answers under an arm (kind ``perplexity``). A judged
arm becomes the `dd.protocol.Arm` the effect protocol compares; a judge that gave no label for an
item stops the run naming it (a missing label is never read as a score), and since every accepted
reply is cached, the re-run asks only for what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dd.arcs._arms import perplexity
from dd.arcs._disposition import JudgingFailed
from dd.core import Cache, model_run_key, sha256_json
from dd.judges import (
    V4_AXES,
    ChecklistLabel,
    JudgeConfig,
    JudgeItem,
    JudgeRun,
    V4Label,
    VerbalLabel,
    get_judge,
    judging_identity,
    lexical_scores,
    run_judge,
)
from dd.lm import Generation, GenerationConfig
from dd.operators import ContrastivePair, SteeringVector, steering_vector
from dd.paper import content_hash
from dd.protocol import Arm

if TYPE_CHECKING:
    from dd.lm import LazyBase, LoadedBase


def cached_vector(base: LazyBase | LoadedBase, pairs: Sequence[ContrastivePair], layer: int,
                  cache: Cache) -> SteeringVector:
    """`steering_vector` through the cache: a re-run reads the vector and loads no model."""
    key = model_run_key("steering", base.identity(), {"steer.layer": layer, "steer.method": "diff-of-means"},
                        {"pairs_sha256": sha256_json([[p.prompt, p.positive, p.negative] for p in pairs])},
                        n_items=len(pairs), operator="frozen")

    def build() -> dict[str, Any]:
        v = steering_vector(base.load(), pairs, layer)
        return {"values": v.values, "source": np.array(v.source), "train_hashes": np.array(v.train_hashes)}

    z = cache.get_or_build(key, build, fmt="npz")
    return SteeringVector(layer, z["values"], str(z["source"]), tuple(str(h) for h in z["train_hashes"]))


def cached_perplexity(base: LazyBase | LoadedBase, pairs: Sequence[tuple[str, str]], cache: Cache,
                      operator: Any | None = None) -> float:
    """`perplexity` of fixed reference pairs under ``operator`` (a hook, applied for the pass), cached."""
    key = model_run_key("perplexity", base.identity(), {"ppl.max_length": 1024},
                        {"pairs_sha256": sha256_json([list(p) for p in pairs])}, n_items=len(pairs),
                        operator="frozen" if operator is None else operator.key())

    def build() -> dict[str, Any]:
        loaded = base.load()
        if operator is None:
            return {"perplexity": perplexity(loaded, pairs)}
        with operator.apply(loaded):
            return {"perplexity": perplexity(loaded, pairs)}

    return float(cache.get_or_build(key, build, fmt="json")["perplexity"])


def axis_scores(run: JudgeRun) -> dict[str, np.ndarray]:
    """Per-item scores of a run with no error: the lexical score, each v4 axis binarized at the
    paper's bar (a share, as content bars are), verbal HEDGE as 1, checklist coverage."""
    if run.judge == "lexical":
        return dict(lexical_scores(run))
    outs: Sequence[object] = run.outcomes
    if run.judge == "v4":
        v4 = [o for o in outs if isinstance(o, V4Label)]
        return {axis: np.array([o.binary(axis) for o in v4], dtype=float) for axis in V4_AXES}
    if run.judge == "verbal":
        return {"verbal_hedge": np.array([0.0 if o.asserted else 1.0 for o in outs if isinstance(o, VerbalLabel)])}
    if run.judge == "checklist":
        return {"coverage": np.array([o.coverage for o in outs if isinstance(o, ChecklistLabel)])}
    raise ValueError(f"judge {run.judge!r} gives no axis a claim file can name")


def effect_arm(name: str, generations: Sequence[Generation], judges: Mapping[str, JudgeConfig], cache: Cache,
              decoding: Mapping[str, Any]) -> Arm:
    """One arm's generations judged by every judge, as a protocol `Arm`.

    Raises:
        JudgingFailed: a judge gave no label for some items, naming them; their answers and every
            other label are cached, so the re-run judges only these.
    """
    items = [JudgeItem(g.prompt, g.text) for g in generations]
    scores: dict[str, np.ndarray] = {}
    judging: dict[str, Any] = {}
    for judge, config in judges.items():
        run = run_judge(get_judge(judge), items, config, cache)
        if run.errors:
            shown = "; ".join(f"item {i} ({items[i].prompt[:50]!r}; {e.stage}: {e.kind}: {e.message[:80]})"
                              for i, e in run.errors[:5])
            raise JudgingFailed(f"arm {name!r}: judge {judge!r} gave no label for {len(run.errors)} of {len(items)} "
                                f"items: {shown}. Every answer and accepted label is cached: the re-run judges only "
                                "these")
        scores |= axis_scores(run)
        judging[judge] = judging_identity(run)
    return Arm(name, [content_hash([g.prompt]) for g in generations], scores,
               [g.finish_reason for g in generations], [len(g.token_ids) for g in generations], judging, decoding)


def decoding_of(base_name: str, config: GenerationConfig) -> dict[str, Any]:
    """How an arm was decoded, never the operator: what two comparable arms must share."""
    return {"base": base_name, **config.key_parts()}
