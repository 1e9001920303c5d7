"""Operator registry: built-ins register with a decorator, third parties with an entry point.

A package can ship an operator without touching this project by declaring, in its
``pyproject.toml``::

    [project.entry-points."dd.operators"]
    my-steer = "my_pkg.steer:MySteer"

The entry point's object is a factory (usually the class) called with the operator's parameters.
Entry points are loaded lazily, on the first lookup that needs them; one that takes a built-in's
name is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dd.core import Registry
from dd.operators._protocol import Operator

ENTRY_POINT_GROUP = "dd.operators"

F = TypeVar("F", bound=Callable[..., Any])

OPERATORS: Registry[Callable[..., Operator]] = Registry("operator", entry_point_group=ENTRY_POINT_GROUP)


def register_operator(name: str) -> Callable[[F], F]:
    """Register a factory (usually the operator class) under ``name``.

    Raises:
        ValueError: when another factory already holds ``name``.
    """

    def decorate(factory: F) -> F:
        OPERATORS.register(name, factory)
        return factory

    return decorate


def operator_names() -> tuple[str, ...]:
    """All registered names, built-in and from entry points, sorted."""
    return OPERATORS.names()


def operator_factory(name: str) -> Callable[..., Operator]:
    """The factory registered as ``name`` (its class attributes, e.g. ``kind``, without building it).

    Raises:
        KeyError: naming the known operators when ``name`` is not registered.
    """
    return OPERATORS[name]


def get_operator(name: str, **params: Any) -> Operator:
    """Build the operator registered as ``name`` with ``params``."""
    return operator_factory(name)(**params)
