"""The paper's released artifacts: the pinned manifest, locating, verifying and fetching them,
loaders that turn them into typed values with provenance, checks of stored summaries, the
paper's quoted numbers (`numbers/arcN.toml`, read through `paper_numbers`), and the step16
prompts' topic groups (`step16_groups`, keyed by prompt content).
"""

from __future__ import annotations

from dd.paper._artifacts import (
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactStore,
    fetch,
    how_to_get,
    load_manifest,
    locate,
)
from dd.paper._consistency import (
    auc_problems,
    sweep_point_problems,
)
from dd.paper._data import (
    AXIS_HIGH_SCORE,
    CORRECT_COVERAGE,
    FRESH,
    PHASE0_SUMMARY,
    STEP16,
    V4_AXES,
    JudgedSet,
    content_hash,
    load_attribution,
    load_fresh_gold,
    load_humaneval_flags,
    load_judged,
    load_mcas_scores,
    load_profile,
    load_samples,
    load_smollm_split,
    load_summary,
    profile_from_judged,
)
from dd.paper._numbers import numbered_arcs, paper_numbers
from dd.paper._topics import TOPIC_PROFILE, step16_dishes, step16_groups

__all__ = [
    "AXIS_HIGH_SCORE",
    "ArtifactCorrupt",
    "ArtifactMissing",
    "ArtifactStore",
    "CORRECT_COVERAGE",
    "FRESH",
    "JudgedSet",
    "PHASE0_SUMMARY",
    "STEP16",
    "TOPIC_PROFILE",
    "V4_AXES",
    "auc_problems",
    "content_hash",
    "fetch",
    "how_to_get",
    "load_attribution",
    "load_fresh_gold",
    "load_humaneval_flags",
    "load_judged",
    "load_manifest",
    "load_mcas_scores",
    "load_profile",
    "load_samples",
    "load_smollm_split",
    "load_summary",
    "locate",
    "numbered_arcs",
    "paper_numbers",
    "profile_from_judged",
    "step16_dishes",
    "step16_groups",
    "sweep_point_problems",
]
