"""Language models: the base registry and loading (GGUF conversion, tiny random-init bases),
batched generation, teacher-forced features, and feature directories brought by the user.
"""

from __future__ import annotations

from dd.lm._feature_dirs import (
    FeatureDirError,
    expected_verdicts,
    load_feature_dir,
)
from dd.lm._features import (
    FeatureSet,
    FeatureSpec,
    cached_features,
    extract_features,
    feature_key,
    render_pair,
)
from dd.lm._generate import (
    Generation,
    GenerationConfig,
    PLAIN_PROMPT,
    cached_generate,
    generate,
    generation_key,
    left_pad,
    render_prompt,
    uses_chat_template,
)
from dd.lm._models import (
    LazyBase,
    LoadedBase,
    REGISTRY,
    ResolvedBase,
    Unavailable,
    load_base,
    resolve_base,
)
from dd.lm._tiny import (
    TINY_NAMES,
    build_tiny_base,
    build_tokenizer,
)

__all__ = [
    "FeatureDirError",
    "FeatureSet",
    "FeatureSpec",
    "Generation",
    "GenerationConfig",
    "LazyBase",
    "LoadedBase",
    "PLAIN_PROMPT",
    "REGISTRY",
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
    "render_pair",
    "render_prompt",
    "resolve_base",
    "uses_chat_template",
]
