"""What instrumentation reads: the breakers of a control plane, or breakers given."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, TypeAlias

from cbcontrol._breaker import CircuitBreaker

if TYPE_CHECKING:
    from cbcontrol._plane import ControlPlane

__all__ = ["BreakerSource", "Breakers"]

BreakerSource: TypeAlias = "ControlPlane | CircuitBreaker | Iterable[CircuitBreaker]"
"""A control plane (every breaker it has, now and later), one breaker, or several."""


class Breakers:
    """
    Resolves a :data:`BreakerSource` to the breakers alive at each call.

    A plane is asked every time, so breakers it creates later are seen; a collection
    (a list, a dict's ``values()``) is re-read every time; any other iterable is read
    once.
    """

    __slots__ = ("_given", "plane")

    def __init__(self, source: BreakerSource) -> None:
        from cbcontrol._plane import ControlPlane  # pulls in the store layer

        self.plane: ControlPlane | None = None
        self._given: Collection[CircuitBreaker] = ()
        if isinstance(source, ControlPlane):
            self.plane = source
        elif isinstance(source, CircuitBreaker):
            self._given = (source,)
        elif isinstance(source, Iterable) and not isinstance(source, str | bytes):
            self._given = source if isinstance(source, Collection) else tuple(source)
            self()  # check the items now, where the mistake was made
        else:
            msg = (
                "expected a ControlPlane, a CircuitBreaker or an iterable of them, "
                f"got {type(source).__name__}"
            )
            raise TypeError(msg)

    def __call__(self) -> list[CircuitBreaker]:
        """The breakers, one per name, in name order."""
        plane = self.plane
        if plane is not None:
            return [plane.breaker(name) for name in plane.names()]
        found: dict[str, CircuitBreaker] = {}
        for breaker in self._given:
            if not isinstance(breaker, CircuitBreaker):
                msg = f"expected CircuitBreaker items, got {type(breaker).__name__}"
                raise TypeError(msg)
            if found.setdefault(breaker.name, breaker) is not breaker:
                # Two series with one label set would make Prometheus drop the scrape.
                msg = f'two breakers are named "{breaker.name}"; give each its own name'
                raise ValueError(msg)
        return [found[name] for name in sorted(found)]
