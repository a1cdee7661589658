"""
One admitted call whose outcome is reported later, from anywhere.

A stream, an RPC or a response ends in a callback, another thread or another task
than the one that admitted it. The breaker's ``with`` protocol keeps each admission in
a context variable; giving every call a :class:`contextvars.Context` of its own keeps
interleaved calls on one breaker from taking each other's admission.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cbcontrol._breaker import CircuitBreaker

__all__ = ["Guard"]


class Guard:
    """
    Admit one call now (raises ``CircuitOpenError`` when the breaker rejects it);
    report its outcome once, with :meth:`success` or :meth:`failure`.
    """

    __slots__ = ("_breaker", "_context", "_done")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._context = contextvars.Context()
        self._context.run(breaker.__enter__)
        self._done = False

    def success(self) -> None:
        """The call succeeded, or ended saying nothing against the dependency."""
        if not self._done:
            self._done = True
            self._context.run(self._breaker.__exit__, None, None, None)

    def failure(self, exc: BaseException) -> None:
        """The call failed with ``exc``; the breaker's rules judge it."""
        if not self._done:
            self._done = True
            self._context.run(self._breaker.__exit__, type(exc), exc, exc.__traceback__)
