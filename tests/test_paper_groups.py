"""The step16 prompts' dish groups: joined to the prompts by content, refused when the files disagree."""

from __future__ import annotations

import numpy as np
import pytest

from dd.paper import content_hash, load_judged, step16_dishes, step16_groups
from dd.paper._topics import dish_map

PROMPTS = ("My Béchamel has lumps; how do I fix it?", "Why did my Hollandaise split?",
           "My BÉCHAMEL tastes of raw flour.")
SAMPLES = [{"prompt_i": 0, "topic": "Bechamel lumpy fix"}, {"prompt_i": 1, "topic": "Hollandaise split"},
           {"prompt_i": 2, "topic": "Bechamel raw flour"}]


def test_a_dish_is_the_topic_s_first_word_accents_and_case_folded_keyed_by_prompt_content():
    dishes = dish_map(PROMPTS, SAMPLES)
    assert dishes == {content_hash([PROMPTS[0]]): "bechamel", content_hash([PROMPTS[1]]): "hollandaise",
                      content_hash([PROMPTS[2]]): "bechamel"}


def test_topics_that_do_not_name_their_prompt_s_dish_are_not_the_same_prompts():
    swapped = [{**SAMPLES[0], "topic": SAMPLES[1]["topic"]}, {**SAMPLES[1], "topic": SAMPLES[0]["topic"]}, SAMPLES[2]]
    with pytest.raises(ValueError, match=r"2 of 3 step16 prompts do not name the dish.*not the same prompts"):
        dish_map(PROMPTS, swapped)
    with pytest.raises(ValueError, match="not the 3 step16 prompts in order"):
        dish_map(PROMPTS, SAMPLES[::-1])


def test_the_released_step16_prompts_fall_into_34_dishes_of_up_to_8(store):
    prompts = load_judged(store, "step16").responses.prompt_set.prompts
    groups = step16_groups(store, prompts)
    names, sizes = np.unique(groups, return_counts=True)
    assert len(groups) == 100 and len(names) == 34 and sizes.max() == 8
    assert dict(zip(names, sizes, strict=True))["hollandaise"] == 8
    assert len(step16_dishes(store)) == 100


def test_groups_follow_the_prompts_content_in_any_order_or_subset(store):
    prompts = load_judged(store, "step16").responses.prompt_set.prompts
    groups = step16_groups(store, prompts)
    order = np.random.default_rng(0).permutation(len(prompts))[:40]
    assert step16_groups(store, [prompts[i] for i in order]).tolist() == groups[order].tolist()


def test_the_fresh_set_carries_no_topic_so_it_has_no_groups(store):
    fresh = load_judged(store, "fresh").responses.prompt_set.prompts
    with pytest.raises(ValueError, match=r"193 of 193 prompts are not released step16 prompts.*fresh set carries no"):
        step16_groups(store, fresh)
