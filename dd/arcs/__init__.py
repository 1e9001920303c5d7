"""The paper's arcs as runnable experiments: HumanEval and its sandbox, base-vs-operator arms,
tempering sweeps, head attribution, judged disposition.
"""

from __future__ import annotations

from dd.arcs._arms import (
    DispositionProbe,
    Sweep,
    cached_head_inputs,
    cached_sft_adapter,
    compare_budgets,
    load_adapter,
    perplexity,
    run_humaneval_arm,
    tempering_sweep,
)
from dd.arcs._attribution import (
    HeadInputs,
    cohen_d,
    collect_head_inputs,
    directional_attribution,
    directional_stats,
    magnitude_attribution,
)
from dd.arcs._disposition import (
    DispositionComparison,
    JudgingFailed,
    Shift,
    compare_dispositions,
    judge_arm,
    paired_shift,
)
from dd.arcs._humaneval import (
    CodeExecutionNotAllowed,
    Problem,
    ProblemResult,
    evaluate,
    extract_code,
    load_problems,
    pass_at_1,
    render_prompt,
)
from dd.arcs._sandbox import (
    Limits,
    isolation_level,
    run_program,
)
from dd.arcs._tempering_gate import (
    CLEAN,
    DAMAGED,
    LambdaVerdict,
    NOT_MOVED,
    UNDECIDED,
    judge_lambda,
    sweep_verdict,
    sweep_verdicts,
)

__all__ = [
    "CLEAN",
    "CodeExecutionNotAllowed",
    "DAMAGED",
    "DispositionComparison",
    "DispositionProbe",
    "HeadInputs",
    "JudgingFailed",
    "LambdaVerdict",
    "Limits",
    "NOT_MOVED",
    "Problem",
    "ProblemResult",
    "Shift",
    "Sweep",
    "UNDECIDED",
    "cached_head_inputs",
    "cached_sft_adapter",
    "cohen_d",
    "collect_head_inputs",
    "compare_budgets",
    "compare_dispositions",
    "directional_attribution",
    "directional_stats",
    "evaluate",
    "extract_code",
    "isolation_level",
    "judge_arm",
    "judge_lambda",
    "load_adapter",
    "load_problems",
    "magnitude_attribution",
    "paired_shift",
    "pass_at_1",
    "perplexity",
    "render_prompt",
    "run_humaneval_arm",
    "run_program",
    "sweep_verdict",
    "sweep_verdicts",
    "tempering_sweep",
]
