"""
cbctl, the operator CLI of cbcontrol.

It lists, trips, resets and retunes circuit breakers on every running instance at once,
through the public API of :mod:`cbcontrol` only. Run ``cbctl --help`` for the commands.
"""
