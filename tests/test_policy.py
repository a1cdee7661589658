"""Exception rules: composition, flattening, and what is accepted as a rule."""

from __future__ import annotations

import pytest

from cbcontrol import always, never, on, when
from cbcontrol._policy import as_rule


def test_rules_compose_with_or_and_not() -> None:
    """|, & and ~ combine rules, and plain types or callables mix in."""
    transient = on(ConnectionError, TimeoutError)
    server_side = when(lambda e: "5xx" in str(e))

    either = transient | server_side
    both = KeyError & (~transient)
    mixed = (lambda e: isinstance(e, KeyError)) | transient  # type: ignore[operator]

    assert [True, True, False] == [
        either(ConnectionError()),
        either(ValueError("5xx")),
        either(ValueError("4xx")),
    ]
    assert [True, False] == [both(KeyError()), both(ConnectionError())]
    assert mixed(KeyError())


def test_nested_compositions_are_flattened() -> None:
    """a | (b | c) evaluates as one flat any(), a & (b & c) as one all()."""
    a, b, c = on(KeyError), on(ValueError), on(TypeError)

    assert "on(KeyError) | on(ValueError) | on(TypeError)" == repr(a | (b | c))
    assert "on(KeyError) & on(ValueError) & on(TypeError)" == repr(a & (b & c))
    assert "~never" == repr(~never)


def test_constants() -> None:
    """always matches every exception and never matches none."""
    assert (True, False) == (always(ValueError()), never(ValueError()))


@pytest.mark.parametrize(
    "value", [ValueError, (KeyError, OSError), lambda e: True, on(KeyError)]
)
def test_accepted_rule_forms(value: object) -> None:
    """Types, tuples of types, callables and rules are all accepted."""
    rule = as_rule(value)  # type: ignore[arg-type]

    assert callable(rule)


def test_anything_else_is_refused_with_the_accepted_forms() -> None:
    """A non-rule names what is accepted and echoes the value."""
    with pytest.raises(
        TypeError,
        match=(
            r"^failure_on must be an exception type, a tuple of exception types or a "
            r"callable taking the exception, got 42$"
        ),
    ):
        as_rule(42, what="failure_on")  # type: ignore[arg-type]
