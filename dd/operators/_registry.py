"""Operator registry: built-ins register with a decorator, third parties with an entry point.

A package can ship an operator without touching this project by declaring, in its
``pyproject.toml``::

    [project.entry-points."dd.operators"]
    my-steer = "my_pkg.steer:MySteer"

The entry point's object is a factory (usually the class) called with the operator's parameters.
Entry points are loaded lazily, on the first lookup that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from dd.operators._protocol import Operator

ENTRY_POINT_GROUP = "dd.operators"

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., Operator]] = {}
_loaded_entry_points = False


def register_operator(name: str) -> Callable[[F], F]:
    """Register a factory (usually the operator class) under ``name``.

    Raises:
        ValueError: when another factory already holds ``name``.
    """

    def decorate(factory: F) -> F:
        held = _REGISTRY.get(name)
        if held is not None and held is not factory:
            raise ValueError(f"operator {name!r} is already registered by {held!r}")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = ep.load()


def operator_names() -> tuple[str, ...]:
    """All registered names, built-in and from entry points, sorted."""
    _load_entry_points()
    return tuple(sorted(_REGISTRY))


def operator_factory(name: str) -> Callable[..., Operator]:
    """The factory registered as ``name`` (its class attributes, e.g. ``kind``, without building it).

    Raises:
        KeyError: naming the known operators when ``name`` is not registered.
    """
    if name not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operator {name!r}; known: {', '.join(operator_names())}") from None


def get_operator(name: str, **params: Any) -> Operator:
    """Build the operator registered as ``name`` with ``params``."""
    return operator_factory(name)(**params)
