"""
What each operator verb does to a spec document: pure functions, dict in, dict out.

A verb without a selector changes the breaker's own (unscoped) fields; with one, the
scope of that selector (found by its canonical text, created at the end of the list
when missing, dropped once it holds nothing). ``reset`` without a selector lifts every
override, scoped ones included, and bumps the unscoped reset marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cbcontrol.config._fields import CONFIG_FIELDS, as_read
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from cbcontrol._labels import Selector

__all__ = [
    "force",
    "promote",
    "reset",
    "set_fields",
    "shadowing",
    "unset_fields",
]

_SCOPE_RUNTIME = frozenset({"selector", "reset_generation"})


def _scopes(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    scopes = doc.get("scopes")
    return [dict(s) for s in scopes] if isinstance(scopes, list) else []


def _canonical(text: object) -> str:
    from cbcontrol._labels import Selector

    try:
        return str(Selector.parse(str(text)))
    except ConfigError:
        return str(text)


def _find(scopes: list[dict[str, Any]], selector: Selector) -> int | None:
    wanted = str(selector)
    return next(
        (i for i, s in enumerate(scopes) if _canonical(s.get("selector")) == wanted),
        None,
    )


def _with_scope(
    doc: dict[str, Any],
    selector: Selector,
    edit: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """``doc`` with the scope of ``selector`` edited (created, dropped when empty)."""
    scopes = _scopes(doc)
    index = _find(scopes, selector)
    scope = {"selector": str(selector)} if index is None else scopes[index]
    scope = edit(scope)
    # A scope holding only a reset marker stays: its instances must see it.
    empty = not (set(scope) - {"selector"})
    if index is None and not empty:
        scopes.append(scope)
    elif index is not None and empty:
        del scopes[index]
    elif index is not None:
        scopes[index] = scope
    new = {k: v for k, v in doc.items() if k != "scopes"}
    if scopes:
        new["scopes"] = scopes
    return new


def set_fields(
    values: Mapping[str, object], preset: str | None, selector: Selector | None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Set config fields (and the preset choice) of a breaker or of one scope."""

    def edit(part: dict[str, Any]) -> dict[str, Any]:
        # A value that means what is stored keeps the stored text: 30s is 30.
        new = dict(part) | {
            k: v for k, v in values.items() if k not in part or not _same(k, part[k], v)
        }
        if preset is not None:
            new["preset"] = preset
        return new

    if selector is None:
        return edit
    return lambda doc: _with_scope(doc, selector, edit)


def _same(key: str, old: object, new: object) -> bool:
    """Whether two stored values of a field mean the same (``30s`` and ``30``)."""
    try:
        return bool(as_read(key, old) == as_read(key, new))
    except (TypeError, ValueError):
        return False


def unset_fields(
    fields: Iterable[str], selector: Selector | None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """
    Remove config fields (or ``preset``) of a breaker or of one scope.

    A scope left with nothing but its run-time marker is dropped: its instances
    follow the unscoped fields again (that is how a canary is rolled back).
    """
    gone = set(fields)

    def edit(part: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in part.items() if k not in gone}

    if selector is None:
        return edit

    def scoped(doc: dict[str, Any]) -> dict[str, Any]:
        new = _with_scope(doc, selector, edit)
        scopes = _scopes(new)
        index = _find(scopes, selector)
        if index is not None and not (set(scopes[index]) - _SCOPE_RUNTIME):
            del scopes[index]  # only a reset marker left: nothing to apply any more
            new = {k: v for k, v in new.items() if k != "scopes"}
            if scopes:
                new["scopes"] = scopes
        return new

    return scoped


def force(
    override: Mapping[str, Any], selector: Selector | None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Put an override on a breaker, or on the instances of one scope."""

    def edit(part: dict[str, Any]) -> dict[str, Any]:
        return {**part, "override": dict(override)}

    if selector is None:
        return edit
    return lambda doc: _with_scope(doc, selector, edit)


def _bump(part: Mapping[str, Any]) -> int:
    previous = part.get("reset_generation")
    return (previous if type(previous) is int else 0) + 1


def reset(selector: Selector | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """
    Lift overrides and make instances reset state and counters once.

    Without a selector: every override (the breaker's and its scopes'), and every
    instance resets. With one: that scope's override, and its instances reset.
    """
    if selector is not None:

        def edit(part: dict[str, Any]) -> dict[str, Any]:
            new = {k: v for k, v in part.items() if k != "override"}
            new["reset_generation"] = _bump(part)
            return new

        return lambda doc: _with_scope(doc, selector, edit)

    def everywhere(doc: dict[str, Any]) -> dict[str, Any]:
        new = {k: v for k, v in doc.items() if k not in ("override", "scopes")}
        new["reset_generation"] = _bump(doc)
        scopes = [{k: v for k, v in s.items() if k != "override"} for s in _scopes(doc)]
        scopes = [s for s in scopes if set(s) - _SCOPE_RUNTIME]
        if scopes:
            new["scopes"] = scopes
        return new

    return everywhere


def promote(selector: Selector) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """
    Make a scope's config fields and preset the breaker's own, and drop the scope.

    Raises (when applied):
        ConfigError: There is no such scope, or it holds an override (lift it first:
            promoting a trip to every instance is a trip, not a promotion).
    """

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        scopes = _scopes(doc)
        index = _find(scopes, selector)
        if index is None:
            known = ", ".join(_canonical(s.get("selector")) for s in scopes) or "none"
            rule = f"names no scope of this breaker; its scopes: {known}"
            raise ConfigError(rule, field="selector", value=str(selector))
        scope = scopes.pop(index)
        if "override" in scope:
            rule = (
                "names a scope with an override; lift it first (reset --selector), "
                "or trip or bypass every instance"
            )
            raise ConfigError(rule, field="selector", value=str(selector))
        new = {k: v for k, v in doc.items() if k != "scopes"}
        for key in (*CONFIG_FIELDS, "preset"):
            if key in scope:
                new[key] = scope[key]
        if scopes:
            new["scopes"] = scopes
        return new

    return change


def shadowing(
    doc: Mapping[str, Any], keys: Iterable[str], selector: Selector | None
) -> list[str]:
    """
    Scopes that set one of ``keys`` above the part a change wrote.

    An unscoped change is hidden, on their instances, by every scope that sets the
    same key; a scoped one by later scopes that do.
    """
    scopes = _scopes(doc)
    start = 0
    if selector is not None:
        index = _find(scopes, selector)
        start = len(scopes) if index is None else index + 1
    wanted = set(keys)
    notes = []
    for scope in scopes[start:]:
        hidden = sorted(wanted & set(scope))
        if hidden:
            notes.append(
                f"scope {_canonical(scope.get('selector'))} sets {', '.join(hidden)}: "
                "it takes precedence on the instances it selects"
            )
    return notes
