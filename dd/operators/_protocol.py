"""The ``Operator`` protocol: one named, hashable way of changing what a base says.

An operator changes a base in one of four ways, its ``kind``, and generation dispatches on it
(``dd.lm.generate(..., operator=op)``): a hook or an adapter on the loaded model is applied for
the run (``apply`` returns a handle with ``.remove()`` that is also a context manager) and removed
after it; a prompt transform's ``messages`` are what the base is sent; a read-out over features
(``estimator`` / ``fit`` / ``hedge``) generates nothing, and asking it to is an error. ``identity``
(``frozen``) is the untouched base. Every operator has a frozen-dataclass ``spec`` whose canonical
string enters cache keys, taken from the operator that runs, so two runs with the same string are
interchangeable and a changed parameter is a cache miss that explains itself.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable

from dd.core import canonical_json

if TYPE_CHECKING:
    from dd.lm import LoadedBase

OperatorKind = Literal["identity", "hook", "adapter", "prompt", "readout"]


@runtime_checkable
class Handle(Protocol):
    """An applied model edit: undone by ``remove()`` or by leaving its ``with`` block."""

    def remove(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Operator(Protocol):
    """A registered operator.

    Attributes:
        name: the registry name (``tempering``, ``lora``, ...).
        kind: how it changes the base.
        spec: a frozen dataclass of every parameter that changes results.
    """

    name: str
    kind: OperatorKind
    spec: Any

    def key(self) -> str:
        """Canonical string for cache keys: ``name`` + the spec's canonical JSON."""
        ...


@runtime_checkable
class ModelOperator(Operator, Protocol):
    """An operator that edits a loaded model (hooks, adapters)."""

    def apply(self, base: LoadedBase | Any) -> Handle:
        """Edit ``base`` (a ``LoadedBase`` or its model) now; the handle undoes it."""
        ...


@runtime_checkable
class PromptOperator(Operator, Protocol):
    """An operator that rewrites the conversation sent to the base."""

    def messages(self, prompt: str, tokenizer: Any | None) -> list[dict[str, str]]:
        """The conversation for ``prompt``, for ``tokenizer``'s chat template.

        ``tokenizer`` None asks for the plain format (a base without a chat template), which
        holds exactly one user turn.
        """
        ...


@runtime_checkable
class ReadoutOperator(Operator, Protocol):
    """An operator that reads features after the fact: a probe the five-step protocol can gate.

    `estimator()` gives an unfitted sklearn classifier with `predict_proba`. An operator may
    also declare `claims`, the verdict it claims per protocol step ('cv', 'fresh', ...; default
    'pass'), which `claims/pipeline` holds it to.
    """

    def estimator(self) -> Any: ...


def spec_key(name: str, spec: Any) -> str:
    """``name`` + canonical JSON of a frozen dataclass spec; just ``name`` for an empty spec.

    An empty spec keys as the bare name so that ``frozen`` keys exactly like no operator at all
    (``"frozen"``, the value every cache entry of the untouched base carries).
    """
    if not is_dataclass(spec) or isinstance(spec, type):
        raise TypeError(f"operator {name!r}: spec must be a dataclass instance, got {type(spec).__name__}")
    # @dataclass sets __dataclass_params__ on every dataclass; typeshed's DataclassInstance declares
    # only __dataclass_fields__, so the attribute is unknown to mypy.
    if not type(spec).__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"operator {name!r}: spec {type(spec).__name__} must be frozen (hashable)")
    fields = asdict(spec)
    return f"{name}:{canonical_json(fields)}" if fields else name


class KeyMixin:
    """``key()`` and a readable ``repr`` for operators that store ``name`` and ``spec``."""

    name: str
    spec: Any

    def key(self) -> str:
        return spec_key(self.name, self.spec)

    def __repr__(self) -> str:
        return f"<operator {self.key()}>"
