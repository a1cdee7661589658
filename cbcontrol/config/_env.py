"""
The environment layer: ``<SERVICE>_CB_<FIELD>`` and ``CB_<FIELD>``.

``PAYMENT_CB_MAX_FAILURES=3`` sets ``max_failures`` for the breaker ``payment``;
``CB_RESET_TIMEOUT=45s`` sets ``reset_timeout`` for every breaker of the process; the
service-specific variable wins. The service name is upper-cased with ``-`` -> ``_``
(``user-profile`` -> ``USER_PROFILE_CB_...``). ``<SERVICE>_CB_PRESET`` chooses a preset.

Environment variables are deploy-time: there is no "last good" version of them. A bad
value is therefore reported (named variable, value, rule) and skipped, so the layer
below shows through; it never stops the application. A value longer than
:data:`~cbcontrol._limits.MAX_TEXT_CHARS` is refused before it is parsed, and quoted
in part.

The environment is a :class:`~cbcontrol.config._merge.Layer` like any other: the
one resolver merges it with the store's layer by precedence.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Final

from pydantic import ValidationError

from cbcontrol._limits import MAX_TEXT_CHARS
from cbcontrol.config._fields import CONFIG_FIELDS
from cbcontrol.config._merge import Layer, config_errors, nullable_fields
from cbcontrol.config._models import BreakerSpec
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["EnvSource", "env_prefix"]

_SHOWN: Final = 60  # characters of a bad value quoted back
_NULL_WORDS: Final = frozenset({"", "none", "null", "off"})
_FIELDS: Final = {name.upper(): name for name in (*CONFIG_FIELDS, "preset")}


def env_prefix(breaker: str) -> str:
    """The variable prefix of a breaker: ``user-profile`` -> ``USER_PROFILE_CB_``."""
    return breaker.upper().replace("-", "_").replace(".", "_") + "_CB_"


class EnvSource:
    """
    Reads breaker settings from environment variables.

    Args:
        environ: The variables to read; ``None`` reads :data:`os.environ` (once per
            :meth:`layer` call, through :meth:`_load_env`, which tests may override).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _load_env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def layer(
        self, breaker: str, *, prefix: str | None = None
    ) -> tuple[Layer, list[ConfigError]]:
        """
        The env layer for ``breaker`` and the errors of variables that were skipped.

        Args:
            breaker: The breaker's name.
            prefix: The service prefix, e.g. ``"PAYMENT_CB"`` (default: derived from
                the name). ``CB_`` variables apply as well, under it.
        """
        env = self._load_env()
        service = env_prefix(breaker) if prefix is None else prefix.rstrip("_") + "_"
        raw: dict[str, tuple[str, str]] = {}  # field -> (value, variable)
        errors: list[ConfigError] = []
        for scope in ("CB_", service):  # the service-specific scope wins
            for var, value in env.items():
                if not var.startswith(scope):
                    continue
                name = _FIELDS.get(var.removeprefix(scope))
                if name is not None:
                    raw[name] = (value, var)
                elif scope == service:
                    errors.append(_unknown(breaker, var, value))
        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        preset = preset_source = None
        for name, (value, var) in raw.items():
            source = f"env:{var}"
            if len(value) > MAX_TEXT_CHARS:
                errors.append(
                    ConfigError(
                        f"is {len(value)} characters, over the limit of "
                        f"{MAX_TEXT_CHARS}",
                        breaker=breaker,
                        field=name,
                        value=_shown(value),
                        source=source,
                    )
                )
                continue
            if name == "preset":
                preset, preset_source = value.strip(), source
                continue
            parsed = self._parse(breaker, name, value, source)
            if isinstance(parsed, ConfigError):
                errors.append(parsed)
            else:
                values[name] = parsed
                sources[name] = source
        return Layer("env", values, sources, preset, preset_source), errors

    @staticmethod
    def _parse(breaker: str, name: str, value: str, source: str) -> object:
        text = value.strip()
        data: object = None if text.lower() in _NULL_WORDS else text
        try:
            # Lax mode: env values are text, "3" must become 3.
            spec = BreakerSpec.model_validate({name: data}, strict=False)
        except ValidationError as exc:
            error = config_errors(exc, breaker=breaker, source=lambda _: source)[0]
            return ConfigError(
                error.rule, breaker=breaker, field=name, value=value, source=source
            )
        parsed = getattr(spec, name)
        if parsed is None and name not in nullable_fields():
            return ConfigError(
                "must not be empty",
                breaker=breaker,
                field=name,
                value=value,
                source=source,
            )
        return parsed


def _unknown(breaker: str, var: str, value: str) -> ConfigError:
    suffix = var.split("_CB_", 1)[-1]
    close = difflib.get_close_matches(suffix, list(_FIELDS), n=1)
    hint = f"did you mean {var.removesuffix(suffix)}{close[0]}? " if close else ""
    rule = f"is not a known setting; {hint}settings: {', '.join(sorted(_FIELDS))}"
    return ConfigError(
        rule, breaker=breaker, field=var, value=_shown(value), source=f"env:{var}"
    )


def _shown(value: str) -> str:
    """A bad value as an error quotes it: its start, never a megabyte."""
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
