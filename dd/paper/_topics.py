"""Topic groups of the released step16 prompts, keyed by prompt content.

The step16 prompts come in dishes: up to eight prompts ask about one dish ('Hollandaise too
acidic', 'Hollandaise separated oily', ...). When labels follow the dish and features encode it,
random-fold CV looks better than the property deserves, so Step 1 needs the dish as a group.
No released file holds a prompt's dish next to its text: the step16 judge file holds the prompt
texts (with Gemma 4 E2B's responses), and SmolLM2-1.7B's profile names one topic per prompt
index (`prompt_i`) without the text. The join is checked by content: each topic's dish, accents
and case folded, must be named by the prompt at its index, or the two files do not describe the
same prompts and no group is given.

Groups are then a map from a prompt's content hash to its dish, so any holder of step16 prompts
(the SmolLM2 features, Gemma's released step16 responses, a re-judged copy of them, a subset in
another order) gets the same groups. The fresh set carries no topic: it has no groups.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from dd.paper._artifacts import ArtifactStore
from dd.paper._data import content_hash, load_judged, load_samples

#: The profile whose samples name the step16 prompts' topics.
TOPIC_PROFILE = "smollm2-1.7b"


def _fold(text: str) -> str:
    """Case-folded with accents removed: the profile writes 'Bechamel' for the prompt's 'Béchamel'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def dish_map(prompts: Sequence[str], samples: Sequence[dict]) -> dict[str, str]:
    """Prompt content hash -> dish (the first word of the sample's topic, folded), checked by content.

    Args:
        prompts: the step16 prompt texts, in their released order.
        samples: the profile's samples, one per prompt, each with `prompt_i` and `topic`.

    Raises:
        ValueError: when the samples are not one per prompt in order, or a topic's dish is not
            named by the prompt at its index (the files do not describe the same prompts).
    """
    if [s["prompt_i"] for s in samples] != list(range(len(prompts))):
        raise ValueError(f"the {TOPIC_PROFILE} profile's samples are not the {len(prompts)} step16 prompts in order")
    dishes = [_fold(s["topic"].split()[0]) for s in samples]
    unnamed = [i for i, (p, d) in enumerate(zip(prompts, dishes, strict=True)) if d not in _fold(p)]
    if unnamed:
        i = unnamed[0]
        raise ValueError(
            f"{len(unnamed)} of {len(prompts)} step16 prompts do not name the dish of the {TOPIC_PROFILE} profile's "
            f"topic at their index (first: prompt {i}, topic {samples[i]['topic']!r}, prompt {prompts[i][:80]!r}): "
            "the profile and the prompts are not the same prompts, so they have no groups")
    return {content_hash([p]): d for p, d in zip(prompts, dishes, strict=True)}


def step16_dishes(store: ArtifactStore) -> dict[str, str]:
    """The released step16 prompts' dishes, keyed by prompt content hash (34 dishes of up to 8 prompts)."""
    return dict(_dishes(store))


@lru_cache(maxsize=4)
def _dishes(store: ArtifactStore) -> dict[str, str]:
    """Joined once per store: every Arc 3 source asks for its groups, and the join reads two released files."""
    prompts = load_judged(store, "step16").responses.prompt_set.prompts
    return dish_map(prompts, load_samples(store, TOPIC_PROFILE))


def step16_groups(store: ArtifactStore, prompts: Sequence[str]) -> np.ndarray:
    """Per prompt, its dish: the topic group of a set of step16 prompts, in any order or subset.

    Raises:
        ValueError: when a prompt is not one of the released step16 prompts (matched by content).
            The fresh set carries no topic, so fresh prompts have no groups.
    """
    dishes = _dishes(store)
    hashes = [content_hash([p]) for p in prompts]
    unknown = [i for i, h in enumerate(hashes) if h not in dishes]
    if unknown:
        i = unknown[0]
        raise ValueError(
            f"{len(unknown)} of {len(prompts)} prompts are not released step16 prompts (first: prompt {i}, "
            f"{prompts[i][:80]!r}): topic groups exist only for the step16 prompts, whose topics the "
            f"{TOPIC_PROFILE} profile names; the fresh set carries no topic, so it has no groups")
    return np.array([dishes[h] for h in hashes])
