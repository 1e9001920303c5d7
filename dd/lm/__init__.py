"""Language models: the base registry and loading (GGUF conversion, tiny random-init bases),
batched generation and its backends (in-process ``hf``, ``openai`` endpoints, offline ``vllm``),
the one teacher-forcing loop and the features read through it, and feature directories brought
by the user.
"""

from __future__ import annotations

from dd.lm._backends import (
    HF,
    VLLM_INSTALL,
    GenerationBackend,
    GenerationError,
    OpenAIBackend,
    VLLMBackend,
    get_backend,
    visible_gpus,
)
from dd.lm._feature_dirs import (
    FeatureDirError,
    expected_verdicts,
    load_feature_dir,
)
from dd.lm._features import (
    DEFAULT_POSITIONS,
    POSITIONS,
    READOUTS,
    FeatureSet,
    FeatureSpec,
    Layers,
    Position,
    cached_features,
    extract_features,
    feature_key,
)
from dd.lm._forcing import (
    ForcedBatch,
    InputHook,
    RenderedPair,
    render_pair,
    teacher_force,
)
from dd.lm._generate import (
    PLAIN_PROMPT,
    Generation,
    GenerationConfig,
    cached_generate,
    generate,
    generation_key,
    left_pad,
    render_prompt,
    uses_chat_template,
)
from dd.lm._models import (
    REGISTRY,
    LazyBase,
    LoadedBase,
    RandomInitBase,
    ResolvedBase,
    Unavailable,
    load_base,
    random_init_of,
    resolve_base,
)
from dd.lm._tiny import (
    TINY_NAMES,
    build_tiny_base,
    build_tokenizer,
)

__all__ = [
    "HF",
    "GenerationBackend",
    "GenerationError",
    "OpenAIBackend",
    "VLLMBackend",
    "VLLM_INSTALL",
    "get_backend",
    "visible_gpus",
    "DEFAULT_POSITIONS",
    "FeatureDirError",
    "FeatureSet",
    "FeatureSpec",
    "ForcedBatch",
    "Generation",
    "GenerationConfig",
    "InputHook",
    "LazyBase",
    "Layers",
    "LoadedBase",
    "PLAIN_PROMPT",
    "POSITIONS",
    "Position",
    "READOUTS",
    "REGISTRY",
    "RandomInitBase",
    "RenderedPair",
    "ResolvedBase",
    "TINY_NAMES",
    "Unavailable",
    "build_tiny_base",
    "build_tokenizer",
    "cached_features",
    "cached_generate",
    "expected_verdicts",
    "extract_features",
    "feature_key",
    "generate",
    "generation_key",
    "left_pad",
    "load_base",
    "load_feature_dir",
    "random_init_of",
    "render_pair",
    "render_prompt",
    "resolve_base",
    "teacher_force",
    "uses_chat_template",
]
