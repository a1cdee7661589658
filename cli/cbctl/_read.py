"""
The bodies of ``cbctl list`` and ``cbctl get``, free of Typer.

The Typer commands (:mod:`cbctl._cmd_read`) and the Typer-free path
(:mod:`cbctl._quick`) both run these, so the two paths cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cbctl._render import emit, get_renderable, list_table, list_text
from cbctl._session import check_name, open_store, require_known
from cbctl._views import Fleet, breaker_view

if TYPE_CHECKING:
    from cbctl._render import Output
    from cbctl._session import GlobalOptions

__all__ = ["list_breakers", "show_breaker"]


def list_breakers(opts: GlobalOptions, output: Output) -> None:
    """``cbctl list``: every breaker with a spec or on a live instance."""
    with open_store(opts) as store:
        fleet = Fleet(store)
        views = [breaker_view(fleet, name) for name in fleet.names()]
    emit(views, output, lambda: list_table(views), lambda: list_text(views))


def show_breaker(opts: GlobalOptions, name: str, output: Output) -> None:
    """
    ``cbctl get NAME``: the spec, the effective config with sources, the instances.

    Raises:
        NotFoundError: No spec and no live instance has a breaker ``name``.
    """
    check_name(name)
    with open_store(opts) as store:
        fleet = Fleet(store, name)
        if name not in fleet.names():  # read every name only to suggest some
            require_known(name, store.view().names(), fleet.url)
        view = breaker_view(fleet, name)
    emit(view, output, lambda: get_renderable(view))
