"""Judges for the suite: the v4 rubric, verbal delivery, the gold checklist, MCAS and SVR (LLM judges), and the
`lexical` marker count that needs no endpoint and measures wording, not disposition.

A judge takes (prompt, response) items, never generates responses, and returns one label or one
explicit `JudgeError` per item. Runs go through the official `openai` client against any
OpenAI-compatible endpoint, with our own retries, replies kept in the suite's one cache
(`dd.core.Cache`, kind `judges`, keyed by `judge_key`'s named parts), and an offline mode in which
a cache miss is an error (`dd.core.CacheMiss`). `dd.judges.replay` serves recorded replies
(the paper's released labels) on 127.0.0.1 so the whole path is testable without a model.
"""

from dd.judges._client import (
    JudgeConfig,
    JudgeLabelSet,
    JudgeRun,
    JudgeRunStopped,
    RunStats,
    arun_judge,
    judge_key,
    judge_label_set,
    run_judge,
)
from dd.judges._comparability import IncomparableArms, judging_identity, require_same_judging
from dd.judges._drift import DriftReport, Flip, compare_judge_runs, compare_runs, fields_by_hash, label_fields
from dd.judges._lexical import (
    ASSERTION_MARKERS,
    HEDGE_MARKERS,
    LEXICAL_AXIS,
    LEXICAL_CAVEAT,
    LEXICAL_CONFIG,
    LexicalJudge,
    LexicalLabel,
    count_markers,
    lexical_scores,
)
from dd.judges._mcas import (
    JudgedComparison,
    McasJudge,
    McasLabel,
    SvrJudge,
    SvrLabel,
    compare_judged,
    judged_score,
)
from dd.judges._protocol import (
    AXIS_HIGH_SCORE,
    CERT_CLASSES,
    V4_AXES,
    VERBAL_CLASSES,
    Ask,
    ChecklistLabel,
    FillImpact,
    Judge,
    JudgeError,
    JudgeFailure,
    JudgeItem,
    Label,
    Outcome,
    ParseError,
    V4Label,
    VerbalLabel,
    default_fill_impact,
    item_hash,
    messages_hash,
)
from dd.judges._rubrics import ChecklistJudge, V4Judge, VerbalJudge, get_judge, judge_names, register_judge

__all__ = [
    "JudgedComparison",
    "McasJudge",
    "McasLabel",
    "SvrJudge",
    "SvrLabel",
    "compare_judged",
    "judged_score",
    "AXIS_HIGH_SCORE",
    "CERT_CLASSES",
    "V4_AXES",
    "VERBAL_CLASSES",
    "Ask",
    "ChecklistJudge",
    "ChecklistLabel",
    "DriftReport",
    "FillImpact",
    "IncomparableArms",
    "Flip",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "JudgeFailure",
    "JudgeItem",
    "JudgeLabelSet",
    "JudgeRun",
    "JudgeRunStopped",
    "Label",
    "Outcome",
    "ParseError",
    "RunStats",
    "V4Judge",
    "V4Label",
    "VerbalJudge",
    "VerbalLabel",
    "arun_judge",
    "compare_judge_runs",
    "compare_runs",
    "default_fill_impact",
    "fields_by_hash",
    "get_judge",
    "item_hash",
    "judge_key",
    "judge_label_set",
    "judge_names",
    "judging_identity",
    "label_fields",
    "messages_hash",
    "register_judge",
    "require_same_judging",
    "run_judge",
    "ASSERTION_MARKERS",
    "HEDGE_MARKERS",
    "LEXICAL_AXIS",
    "LEXICAL_CAVEAT",
    "LEXICAL_CONFIG",
    "LexicalJudge",
    "LexicalLabel",
    "count_markers",
    "lexical_scores",
]
