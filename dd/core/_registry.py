"""One registry for every kind of named thing: bases, judges, operators.

A name means one object for the whole session, so registering a second object under a held name
is refused instead of silently replacing the first (a plugin must not swap a built-in behind a
claim's back). Third-party entries come from an entry-point group, read once and only when a
lookup or a listing first needs them, so that importing a package stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Names to objects of one kind; a read-only ``Mapping`` plus ``register``.

    Args:
        kind: what the entries are (``base``, ``judge``, ``operator``), used in error messages.
        entries: (name, object) pairs registered now, each through ``register``.
        entry_point_group: the ``importlib.metadata`` group third parties register under, if any.
    """

    def __init__(self, kind: str, entries: Iterable[tuple[str, T]] = (), *,
                 entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._entry_points_read = False
        for name, obj in entries:
            self.register(name, obj)

    def register(self, name: str, obj: T) -> T:
        """Hold ``obj`` under ``name`` and return it (re-registering the same object is harmless).

        Raises:
            ValueError: when another object already holds ``name``.
        """
        held = self._items.get(name)
        if held is not None and held is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered by {held!r}")
        self._items[name] = obj
        return obj

    def _read_entry_points(self) -> None:
        """Load the group once; a colliding entry point is an error every time, never shadowed."""
        if self._entry_points_read or self.entry_point_group is None:
            return
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in found and found[ep.name].value != ep.value:
                raise ValueError(f"entry points {found[ep.name].value!r} and {ep.value!r} in group "
                                 f"{self.entry_point_group!r} both claim the {self.kind} name {ep.name!r}")
            found[ep.name] = ep
        loaded = {name: ep.load() for name, ep in found.items()}
        for name, obj in loaded.items():
            held = self._items.get(name)
            if held is not None and held is not obj:
                raise ValueError(f"entry point {name!r} = {found[name].value!r} in group "
                                 f"{self.entry_point_group!r}: {self.kind} {name!r} is already registered "
                                 f"by {held!r}")
        self._items.update(loaded)
        self._entry_points_read = True

    def names(self) -> tuple[str, ...]:
        """Every registered name, entry points included, sorted."""
        return tuple(sorted(self))

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            self._read_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"{self.kind} {name!r} is not registered; known: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._read_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        """Names in registration order (built-ins first, then entry points)."""
        self._read_entry_points()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._read_entry_points()
        return len(self._items)

    def __repr__(self) -> str:
        return f"<Registry of {len(self._items)} {self.kind}s>"
