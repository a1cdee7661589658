"""
Which exceptions count as failures, and when a closed breaker trips.

Exception rules are small callables ``(BaseException) -> bool`` that compose with
``|``, ``&`` and ``~``; a plain callable or an exception type (or tuple of types) is
accepted anywhere a rule is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias, cast, final

if TYPE_CHECKING:
    from collections.abc import Callable

    from cbcontrol._settings import Settings

__all__ = [
    "ExceptionRule",
    "RuleLike",
    "always",
    "as_rule",
    "never",
    "on",
    "rate_breach",
    "trip_reason",
    "when",
]

ExceptionTypes: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]
RuleLike: TypeAlias = "ExceptionRule | ExceptionTypes | Callable[[BaseException], bool]"


class ExceptionRule:
    """
    A predicate over exceptions that composes with ``|``, ``&`` and ``~``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def __call__(self, exc: BaseException) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def __or__(self, other: RuleLike) -> ExceptionRule:
        return _Any((self, as_rule(other)))

    def __ror__(self, other: RuleLike) -> ExceptionRule:
        return _Any((as_rule(other), self))

    def __and__(self, other: RuleLike) -> ExceptionRule:
        return _All((self, as_rule(other)))

    def __rand__(self, other: RuleLike) -> ExceptionRule:
        return _All((as_rule(other), self))

    def __invert__(self) -> ExceptionRule:
        return _Not(self)


@final
class _Types(ExceptionRule):
    __slots__ = ("types",)

    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        self.types = types

    def __call__(self, exc: BaseException) -> bool:
        return isinstance(exc, self.types)

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.types)
        return f"on({names})"


@final
class _Predicate(ExceptionRule):
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[BaseException], bool]) -> None:
        self.fn = fn

    def __call__(self, exc: BaseException) -> bool:
        return bool(self.fn(exc))

    def __repr__(self) -> str:
        return f"when({getattr(self.fn, '__name__', self.fn)!r})"


@final
class _Any(ExceptionRule):
    __slots__ = ("rules",)
    rules: tuple[ExceptionRule, ...]

    def __init__(self, rules: tuple[ExceptionRule, ...]) -> None:
        # Flatten a | (b | c) into one level, so evaluation is a flat loop.
        flat: list[ExceptionRule] = []
        for r in rules:
            flat.extend(r.rules if isinstance(r, _Any) else (r,))
        self.rules = tuple(flat)

    def __call__(self, exc: BaseException) -> bool:
        return any(r(exc) for r in self.rules)

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.rules))


@final
class _All(ExceptionRule):
    __slots__ = ("rules",)
    rules: tuple[ExceptionRule, ...]

    def __init__(self, rules: tuple[ExceptionRule, ...]) -> None:
        flat: list[ExceptionRule] = []
        for r in rules:
            flat.extend(r.rules if isinstance(r, _All) else (r,))
        self.rules = tuple(flat)

    def __call__(self, exc: BaseException) -> bool:
        return all(r(exc) for r in self.rules)

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.rules))


@final
class _Not(ExceptionRule):
    __slots__ = ("rule",)

    def __init__(self, rule: ExceptionRule) -> None:
        self.rule = rule

    def __call__(self, exc: BaseException) -> bool:
        return not self.rule(exc)

    def __repr__(self) -> str:
        return f"~{self.rule!r}"


@final
class _Const(ExceptionRule):
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:  # noqa: FBT001
        self.value = value

    def __call__(self, exc: BaseException) -> bool:  # noqa: ARG002 - constant
        return self.value

    def __repr__(self) -> str:
        return "always" if self.value else "never"


always: ExceptionRule = _Const(True)  # noqa: FBT003
"""A rule that matches every exception."""
never: ExceptionRule = _Const(False)  # noqa: FBT003
"""A rule that matches no exception."""


def on(*types: type[BaseException]) -> ExceptionRule:
    """
    A rule matching instances of any of ``types``.

    .. versionadded:: 0.1.0
    """
    return _Types(types)


def when(fn: Callable[[BaseException], bool]) -> ExceptionRule:
    """
    A rule from a predicate, e.g. ``when(lambda e: e.response.status_code >= 500)``.

    .. versionadded:: 0.1.0
    """
    return _Predicate(fn)


def as_rule(value: RuleLike, *, what: str = "rule") -> ExceptionRule:
    """Turn an exception type, a tuple of types or a callable into a rule."""
    if isinstance(value, ExceptionRule):
        return value
    if isinstance(value, type) and issubclass(value, BaseException):
        return _Types((value,))
    if isinstance(value, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        return _Types(value)
    if callable(value):
        return _Predicate(cast("Callable[[BaseException], bool]", value))
    msg = (
        f"{what} must be an exception type, a tuple of exception types or a callable "
        f"taking the exception, got {value!r}"
    )
    raise TypeError(msg)


def trip_reason(
    config: Settings,
    consecutive: int,
    calls: int,
    failures: int,
    slow: int,
) -> str | None:
    """Which trip condition holds, as a sentence for operators; None if none does."""
    limit = config.max_failures
    if limit is not None and consecutive >= limit:
        return f"{consecutive} consecutive failures (max_failures={limit})"
    if calls < config.minimum_calls or calls == 0:
        return None
    unit = (
        "calls" if config.window_type == "count" else f"calls in {config.window_size}s"
    )
    return rate_breach(config, calls, failures, slow, unit)


def rate_breach(
    config: Settings, calls: int, failures: int, slow: int, unit: str
) -> str | None:
    """Which rate threshold ``failures`` or ``slow`` of ``calls`` reach, if any."""
    threshold = config.failure_rate_threshold
    if threshold is not None and failures * 100.0 >= threshold * calls:
        rate = failures * 100.0 / calls
        return f"failure rate {rate:.1f}% >= {threshold:g}% over {calls} {unit}"
    threshold = config.slow_call_rate_threshold
    if threshold is not None and slow * 100.0 >= threshold * calls:
        rate = slow * 100.0 / calls
        return f"slow-call rate {rate:.1f}% >= {threshold:g}% over {calls} {unit}"
    return None
