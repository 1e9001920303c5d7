"""Fresh prompt sets for Step 2: new prompts from an independent generator, deduplicated against the
training split (exact content hashes and character n-gram near duplicates, counted in a split
ledger), with their provenance recorded and, when asked, gold checklists written by a judge.

A set whose generator is the training set's is refused; a given set that holds a training prompt
is refused. Generator and checklist replies go through the judge client and the suite's cache.
"""

from dd.fresh._checklists import Checklist, ChecklistWriter, write_checklists
from dd.fresh._dedup import Duplicate, FreshOverlap, SplitLedger, dedup, fresh_bars, jaccard, require_disjoint, shingles
from dd.fresh._generate import (
    GENERATOR_RUBRIC_VERSION,
    FreshRunFailed,
    GeneratorSpec,
    PromptWriter,
    generate_fresh,
    parse_prompts,
)
from dd.fresh._sets import (
    UNKNOWN,
    FreshSet,
    GeneratorNotIndependent,
    Provenance,
    fresh_from_prompts,
    generators_match,
    independence,
)

__all__ = [
    "GENERATOR_RUBRIC_VERSION",
    "UNKNOWN",
    "Checklist",
    "ChecklistWriter",
    "Duplicate",
    "FreshOverlap",
    "FreshRunFailed",
    "FreshSet",
    "GeneratorNotIndependent",
    "GeneratorSpec",
    "PromptWriter",
    "Provenance",
    "SplitLedger",
    "dedup",
    "fresh_bars",
    "fresh_from_prompts",
    "generate_fresh",
    "generators_match",
    "independence",
    "jaccard",
    "parse_prompts",
    "require_disjoint",
    "shingles",
    "write_checklists",
]
