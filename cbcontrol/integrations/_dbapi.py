"""A DB-API 2.0 connection whose statements and commits go through a circuit breaker."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Self

from cbcontrol._policy import as_rule

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._policy import ExceptionRule, RuleLike

__all__ = ["BreakerConnection", "BreakerCursor", "caller_errors"]

# PEP 249's errors that the caller caused: the database answered, and is healthy.
_CALLER_ERRORS = (
    "IntegrityError",
    "ProgrammingError",
    "DataError",
    "NotSupportedError",
)


def caller_errors(connection: object) -> tuple[type[BaseException], ...]:
    """
    The driver's exception classes for mistakes of the caller, not the database.

    PEP 249 drivers may expose their exceptions as connection attributes; otherwise
    they are taken from the driver's top-level module.
    """
    module = sys.modules.get(type(connection).__module__.partition(".")[0])
    found: list[type[BaseException]] = []
    for name in _CALLER_ERRORS:
        cls = getattr(connection, name, None) or getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


class _Runner:
    """Runs one database call through the breaker, and judges its exception."""

    __slots__ = ("breaker", "failure_on")

    def __init__(self, breaker: CircuitBreaker, failure_on: ExceptionRule) -> None:
        self.breaker = breaker
        self.failure_on = failure_on

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        # `with`, not call(): a rejected statement must raise. The breaker's
        # fallback chain would answer it instead, and a write never sent would
        # look done (and a cache would keep cursors).
        with self.breaker:
            try:
                return fn(*args)
            except Exception as exc:
                if self.failure_on(exc):
                    raise
                answered = exc  # the database answered: a success, raised after
        raise answered


class BreakerCursor:
    """
    A cursor whose ``execute`` and ``executemany`` go through the breaker; every other
    attribute is the driver's cursor's.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_cursor", "_runner")

    def __init__(self, cursor: Any, runner: _Runner) -> None:
        self._cursor = cursor
        self._runner = runner

    def execute(self, operation: Any, *parameters: Any) -> Self:
        """Run one statement; returns this cursor, as sqlite3 and others do."""
        self._runner.run(self._cursor.execute, operation, *parameters)
        return self

    def executemany(self, operation: Any, seq_of_parameters: Iterable[Any]) -> Self:
        """Run one statement for each set of parameters."""
        self._runner.run(self._cursor.executemany, operation, seq_of_parameters)
        return self

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cursor.close()


class BreakerConnection:
    """
    Wraps a DB-API 2.0 connection: ``execute``, ``executemany`` and ``commit`` (on the
    connection and on its cursors) go through a circuit breaker.

    An error the database raised because of the caller (the driver's
    ``IntegrityError``, ``ProgrammingError``, ``DataError``, ``NotSupportedError``)
    proves the database answered: it is raised as it is and counts as a success. Any
    other error (``OperationalError``, ``InterfaceError``, a dropped connection, a
    timeout) counts as a failure. While the breaker is open, nothing reaches the
    database and :class:`~cbcontrol.CircuitOpenError` is raised, whatever fallbacks
    the breaker has (a fallback's answer would make a write that never happened look
    done). Fetching rows, ``rollback`` and ``close`` are not guarded.

    Args:
        connection: The driver's connection (``sqlite3.connect(...)``, ...).
        breaker: The breaker of this database.
        failure_on: Which exceptions count as failures, instead of the rule above:
            exception types, a predicate, or an :class:`~cbcontrol.ExceptionRule`.

    ::

        db = BreakerConnection(sqlite3.connect("orders.db"), plane.breaker("orders-db"))
        db.execute("INSERT INTO orders VALUES (?)", (order_id,))
        db.commit()

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_connection", "_runner")

    def __init__(
        self,
        connection: Any,
        breaker: CircuitBreaker,
        *,
        failure_on: RuleLike | None = None,
    ) -> None:
        self._connection = connection
        if failure_on is None:
            rule = ~as_rule(caller_errors(connection))
        else:
            rule = as_rule(failure_on, what="failure_on")
        self._runner = _Runner(breaker, rule)

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker every statement goes through."""
        return self._runner.breaker

    def cursor(self, *args: Any, **kwargs: Any) -> BreakerCursor:
        """A guarded cursor."""
        return BreakerCursor(self._connection.cursor(*args, **kwargs), self._runner)

    def execute(self, operation: Any, *parameters: Any) -> BreakerCursor:
        """Run one statement on a new cursor and return it (sqlite3's shortcut)."""
        return self.cursor().execute(operation, *parameters)

    def executemany(
        self, operation: Any, seq_of_parameters: Iterable[Any]
    ) -> BreakerCursor:
        """Run one statement for each set of parameters on a new cursor."""
        return self.cursor().executemany(operation, seq_of_parameters)

    def commit(self) -> None:
        """Commit, through the breaker."""
        self._runner.run(self._connection.commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __enter__(self) -> Self:
        self._connection.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> Any:
        if exc_info[0] is None:  # the driver commits: through the breaker
            return self._runner.run(self._connection.__exit__, *exc_info)
        return self._connection.__exit__(*exc_info)
