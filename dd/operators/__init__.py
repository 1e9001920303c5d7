"""Operators: named, hashable ways of changing what a base says.

Built-ins: ``frozen`` (identity), ``sidecar`` (probe-gated hedge read-out), ``tempering`` (scale
heads' o_proj inputs), ``steering`` (add a contrastive direction to a layer's output), ``lora``
(SFT/DPO adapters), ``system-prompt`` (ask in words). Third-party operators register through the
``dd.operators`` entry-point group. An arm is run by passing the operator object to
``dd.lm.generate`` / ``cached_generate``, which dispatch on its ``kind`` and key the run by its
``key()``. Importing this package does not import torch or scikit-learn.
"""

from typing import Any

from dd.operators._hooks import HookHandle
from dd.operators._protocol import (
    Handle,
    KeyMixin,
    ModelOperator,
    Operator,
    OperatorKind,
    PromptOperator,
    ReadoutOperator,
    spec_key,
)
from dd.operators._registry import (
    ENTRY_POINT_GROUP,
    get_operator,
    operator_factory,
    operator_names,
    register_operator,
)
from dd.operators._sites import Site, decoder_layers, projection_sites
from dd.operators.frozen import Frozen, FrozenSpec
from dd.operators.lora import (
    Lora,
    LoraAdapter,
    LoraSpec,
    LoraTrainConfig,
    train_dpo,
    train_sft,
)
from dd.operators.sidecar import Sidecar, SidecarSpec, pooled
from dd.operators.steering import (
    ContrastivePair,
    Steering,
    SteeringSpec,
    SteeringVector,
    steering_vector,
)
from dd.operators.system_prompt import (
    SystemPrompt,
    SystemPromptSpec,
    supports_system_role,
)
from dd.operators.tempering import Tempering, TemperingSpec

__all__ = [
    "ContrastivePair",
    "ENTRY_POINT_GROUP",
    "Frozen",
    "FrozenSpec",
    "Handle",
    "HookHandle",
    "KeyMixin",
    "Lora",
    "LoraAdapter",
    "LoraSpec",
    "LoraTrainConfig",
    "ModelOperator",
    "Operator",
    "OperatorKind",
    "PromptOperator",
    "ReadoutOperator",
    "Sidecar",
    "SidecarProbe",
    "SidecarSpec",
    "Site",
    "Steering",
    "SteeringSpec",
    "SteeringVector",
    "SystemPrompt",
    "SystemPromptSpec",
    "Tempering",
    "TemperingSpec",
    "decoder_layers",
    "get_operator",
    "operator_factory",
    "operator_names",
    "pooled",
    "projection_sites",
    "register_operator",
    "spec_key",
    "steering_vector",
    "supports_system_role",
    "train_dpo",
    "train_sft",
]


def __getattr__(name: str) -> Any:
    """``SidecarProbe`` is loaded on first use: it imports scikit-learn."""
    if name == "SidecarProbe":
        from dd.operators._probe import SidecarProbe

        return SidecarProbe
    raise AttributeError(f"module 'dd.operators' has no attribute {name!r}")
