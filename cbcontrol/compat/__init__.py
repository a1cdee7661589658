"""
Drop-in replacements for other circuit-breaker libraries, backed by cbcontrol.

Change one import line and an existing breaker keeps its behaviour, shows up in
``cbctl list`` and takes its settings from presets, env, the file and etcd:

.. code-block:: python

    from cbcontrol.compat import pybreaker  # was: import pybreaker
    from cbcontrol.compat import circuitbreaker  # was: import circuitbreaker

Each named breaker registers with the process's default control plane
(``cbcontrol.connect()`` with no arguments, connected on first use); the values the
code gives (``fail_max=3``) are its ``code`` layer, which env, file and etcd
override. ``docs/breaker.md`` lists where the shims deliberately differ.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

__all__: list[str] = []
