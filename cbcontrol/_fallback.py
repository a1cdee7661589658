"""
The fallback chain of the article: response cache, static value, alternative call.

When a breaker rejects a call made through ``call``, ``acall`` or a decorator, the
chain may answer it instead of :class:`~cbcontrol.CircuitOpenError`. The ``fallback``
config field says where the chain starts; code supplies the parts:

* ``cache``: the last successful result for the same arguments (or the same
  ``cache_key(*args, **kwargs)``), at most ``cache_ttl`` old; then the static value,
  then the alternative;
* ``static``: the static value (or what its factory makes), then the alternative;
* ``alternative``: the alternative callable, then the static value;
* ``none``: the static value, then the alternative, with no cache.

The cache is filled by successes only while the field is ``cache``, holds at most
``cache_max_entries`` results and evicts the least recently used.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

    from cbcontrol._settings import Settings

__all__ = ["FallbackChain", "ResponseCache", "ResultOrigin", "Source", "result_origin"]

Source = Literal["primary", "cache", "static", "alternative"]
"""Where a result came from."""

NO_VALUE: Final[Any] = object()
"""No static fallback given (``None`` is a valid static value)."""

_MISS: Final = object()


class ResultOrigin:
    """
    Where the result of the calls in a :meth:`CircuitBreaker.result_origin` block came
    from: ``"primary"`` (the protected call), ``"cache"``, ``"static"`` or
    ``"alternative"``.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("source",)

    def __init__(self) -> None:
        self.source: Source = "primary"

    def __repr__(self) -> str:
        return f"<ResultOrigin {self.source}>"


# The blocks being tracked, by breaker id: a fallback marks only its own breaker's.
_TRACKED: contextvars.ContextVar[dict[int, ResultOrigin] | None] = (
    contextvars.ContextVar("cbcontrol.result_origin", default=None)
)


@contextmanager
def result_origin(breaker: object) -> Iterator[ResultOrigin]:
    """Track where ``breaker``'s results come from inside the block."""
    origin = ResultOrigin()
    tracked = _TRACKED.get()
    token = _TRACKED.set({**(tracked or {}), id(breaker): origin})
    try:
        yield origin
    finally:
        _TRACKED.reset(token)


tracking: Final = _TRACKED.get
"""Whether any ``result_origin`` block is open in this context (then :func:`mark`)."""


def mark(breaker: object, source: Source) -> None:
    """Record that a fallback of ``breaker`` served the result."""
    tracked = _TRACKED.get()
    if tracked:
        origin = tracked.get(id(breaker))
        if origin is not None:
            origin.source = source


class ResponseCache:
    """Successful results by key: bounded, least recently used evicted, expiring."""

    __slots__ = ("_data", "max_entries", "ttl")

    def __init__(self, max_entries: int, ttl: float) -> None:
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self.max_entries = max_entries
        self.ttl = ttl

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, now: float) -> Any:
        """The value cached for ``key`` if still fresh, else the miss marker."""
        entry = self._data.pop(key, None)
        if entry is None or now >= entry[0]:
            return _MISS
        self._data[key] = entry  # most recently used last
        return entry[1]

    def put(self, key: Hashable, value: Any, now: float) -> None:
        """Remember ``value`` for ``key`` for ``ttl`` seconds."""
        data = self._data
        data.pop(key, None)
        data[key] = (now + self.ttl, value)
        while len(data) > self.max_entries:
            del data[next(iter(data))]

    def retune(self, max_entries: int, ttl: float) -> None:
        """Apply new bounds, evicting the oldest entries beyond the new size."""
        self.max_entries, self.ttl = max_entries, ttl
        while len(self._data) > max_entries:
            del self._data[next(iter(self._data))]


def default_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable | None:
    """The call's arguments as a cache key; None when they are not hashable."""
    key = (args, tuple(sorted(kwargs.items()))) if kwargs else args
    try:
        hash(key)
    except TypeError:
        return None
    return key


class FallbackChain:
    """
    A breaker's fallback parts and its response cache.

    Args:
        alternative: Called with the call's arguments.
        static: A value, or a zero-argument factory when ``static_factory``.
        cache_key: Maps the call's arguments to a cache key.
    """

    __slots__ = (
        "alternative",
        "cache",
        "cache_key",
        "first",
        "idle",
        "static",
        "static_factory",
    )

    def __init__(
        self,
        alternative: Callable[..., Any] | None,
        static: Any,
        *,
        static_factory: bool,
        cache_key: Callable[..., Hashable] | None,
    ) -> None:
        self.alternative = alternative
        self.static = static
        self.static_factory = static_factory
        self.cache_key = cache_key
        self.cache: ResponseCache | None = None
        # The code-supplied part that answers after the cache, if any: chosen once
        # per config, so that serving a rejected call is a lookup, not a search.
        self.first: Literal["static", "alternative"] | None = None
        self.idle = True  # nothing serves until configure() has seen the settings

    def configure(self, settings: Settings) -> None:
        """Create, retune or drop the cache for the ``fallback`` field's value."""
        if settings.fallback != "cache":
            self.cache = None
        elif self.cache is None:
            self.cache = ResponseCache(settings.cache_max_entries, settings.cache_ttl)
        else:
            self.cache.retune(settings.cache_max_entries, settings.cache_ttl)
        order: tuple[Literal["static", "alternative"], ...] = (
            ("alternative", "static")
            if settings.fallback == "alternative"
            else ("static", "alternative")
        )
        self.first = next((source for source in order if self.has(source)), None)
        self.idle = self.cache is None and self.first is None

    def has(self, source: str) -> bool:
        """Whether code supplied this part."""
        if source == "alternative":
            return self.alternative is not None
        return self.static is not NO_VALUE

    def produce(
        self, source: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run the part ``source`` for a call with these arguments."""
        if source == "alternative":
            assert self.alternative is not None  # noqa: S101 - has() said so
            return self.alternative(*args, **kwargs)
        return self.static() if self.static_factory else self.static


MISS: Final = _MISS
"""What :meth:`ResponseCache.get` returns for a missing or expired key."""

FALLBACK_SOURCES: Final = ("cache", "static", "alternative")
"""The parts of the chain, as counted in snapshots."""

NOT_SERVED: Final[Any] = object()
"""No part of the chain could answer the rejected call."""
