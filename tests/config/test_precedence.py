"""Precedence, pinned: default < preset < env < file < etcd, one field at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cbcontrol.config import PRECEDENCE, ConfigBuilder
from cbcontrol.config._merge import Layer, builtin_presets, merge_presets, resolve
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def test_the_order_is_the_documented_one() -> None:
    """The precedence tuple is exactly DESIGN.md §4's, lowest first."""
    assert ("default", "preset", "code", "env", "file", "etcd") == PRECEDENCE


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([], (3, "preset:payment")),
        (["env"], (4, "env:PAYMENT_CB_MAX_FAILURES")),
        (["env", "file"], (5, "file:/x.yaml#breakers.payment.max_failures")),
        (["env", "file", "etcd"], (6, "etcd:/cbcontrol/default/breakers/payment@9")),
        (["etcd", "file", "env"], (6, "etcd:/cbcontrol/default/breakers/payment@9")),
        (["file", "env"], (5, "file:/x.yaml#breakers.payment.max_failures")),
    ],
)
def test_each_layer_overrides_the_ones_below(
    layers: list[str], expected: tuple[int, str]
) -> None:
    """A higher layer wins for a field whatever order the layers arrive in."""
    available = {
        "env": Layer(
            "env", {"max_failures": 4}, {"max_failures": "env:PAYMENT_CB_MAX_FAILURES"}
        ),
        "file": Layer(
            "file",
            {"max_failures": 5},
            {"max_failures": "file:/x.yaml#breakers.payment.max_failures"},
        ),
        "etcd": Layer(
            "etcd",
            {"max_failures": 6},
            {"max_failures": "etcd:/cbcontrol/default/breakers/payment@9"},
        ),
    }

    resolved = resolve("payment", [available[k] for k in layers])

    assert expected == resolved.explain()["max_failures"]


def test_fields_merge_one_at_a_time() -> None:
    """Each field comes from the highest layer that sets it; others show through."""
    resolved = resolve(
        "payment",
        [
            Layer(
                "env",
                {"reset_timeout": 45.0},
                {"reset_timeout": "env:CB_RESET_TIMEOUT"},
            ),
            Layer("etcd", {"jitter": 0.1}, {"jitter": "etcd:/k@2"}),
        ],
    )
    explained = resolved.explain()

    assert (0.1, "etcd:/k@2") == explained["jitter"]
    assert (45.0, "env:CB_RESET_TIMEOUT") == explained["reset_timeout"]
    assert (3, "preset:payment") == explained["max_failures"]
    assert ("alternative", "preset:payment") == explained["fallback"]
    assert (100, "default") == explained["window_size"]


def test_a_breaker_named_like_a_preset_gets_it() -> None:
    """analytics gets the analytics preset; an unknown name gets the defaults."""
    analytics = resolve("analytics", []).config
    other = resolve("inventory", [])

    assert (10, 10.0, "cache") == (
        analytics.max_failures,
        analytics.reset_timeout,
        analytics.fallback,
    )
    assert "default" == other.preset
    assert {"default"} == {source for _, source in other.explain().values()}


def test_a_higher_layer_chooses_the_preset() -> None:
    """The highest layer naming a preset decides which preset applies."""
    resolved = resolve(
        "checkout",
        [
            Layer("env", preset="analytics", preset_source="env:CHECKOUT_CB_PRESET"),
            Layer("etcd", preset="user-profile", preset_source="etcd:/k@3"),
        ],
    )

    assert "user-profile" == resolved.preset
    assert (5, "preset:user-profile") == resolved.explain()["max_failures"]


def test_store_presets_extend_builtin_ones_field_by_field() -> None:
    """A file preset overriding one field keeps the built-in preset's other fields."""
    table = merge_presets(
        builtin_presets(),
        {
            "payment": ({"max_failures": 2}, "file:/x.yaml#presets.payment"),
            "checkout-critical": ({"reset_timeout": 120.0}, "etcd:/p@4"),
        },
    )

    payment = resolve("payment", [], table).explain()
    critical = resolve(
        "cart", [Layer("file", preset="checkout-critical", preset_source="f")], table
    ).explain()

    assert (2, "preset:payment (file:/x.yaml#presets.payment.max_failures)") == payment[
        "max_failures"
    ]
    assert (60.0, "preset:payment") == payment["reset_timeout"]
    assert (120.0, "preset:checkout-critical (etcd:/p@4)") == critical["reset_timeout"]


def test_an_unknown_preset_is_a_config_error() -> None:
    """Naming a preset nobody defined fails with the defined ones listed."""
    with pytest.raises(
        ConfigError,
        match=(
            r'^breaker "cart": field "preset" from source "etcd:/k@1" names a preset '
            r"that is not defined; defined presets: analytics, default, payment, "
            r"user-profile, got 'nope'$"
        ),
    ):
        resolve("cart", [Layer("etcd", preset="nope", preset_source="etcd:/k@1")])


def test_a_cross_field_rule_names_the_layer_that_broke_it() -> None:
    """A merged config that breaks a cross-field rule is rejected, naming the source."""
    with pytest.raises(
        ConfigError,
        match=(
            r'^breaker "cart": config from source "etcd:/k@5" minimum_calls \(10\) '
            r"must be <= window_size \(5\) for a count window"
        ),
    ):
        resolve(
            "cart",
            [
                Layer(
                    "etcd",
                    {"window_size": 5, "failure_rate_threshold": 50.0},
                    {"window_size": "etcd:/k@5", "failure_rate_threshold": "etcd:/k@5"},
                )
            ],
        )


def test_equal_values_of_another_type_are_judged_on_their_own() -> None:
    """Breakers with equal configs share a validated one; strictness still holds
    for a value equal to a valid one (True == 1, 1.0 == 1)."""
    good = resolve("a", [Layer("etcd", {"max_failures": 1}, {"max_failures": "e"})])
    again = resolve("b", [Layer("etcd", {"max_failures": 1}, {"max_failures": "f"})])

    assert good.config is again.config
    assert ("e", "f") == (good.sources["max_failures"], again.sources["max_failures"])
    for value in (True, 1.0):
        with pytest.raises(ConfigError, match="max_failures"):
            resolve(
                "c", [Layer("etcd", {"max_failures": value}, {"max_failures": "g"})]
            )


def test_builder_is_the_article_fluent_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """ConfigBuilder().with_preset().from_environment().build() layers as documented."""
    env = {"PAYMENT_CB_MAX_FAILURES": "7", "CB_RESET_TIMEOUT": "1m30s"}

    builder = (
        ConfigBuilder("payment", environ=env)
        .with_preset("payment")
        .from_environment("PAYMENT_CB")
    )
    config = builder.build()

    assert (7, 90.0, "alternative") == (
        config.max_failures,
        config.reset_timeout,
        config.fallback,
    )
    assert (7, "env:PAYMENT_CB_MAX_FAILURES") == builder.explain()["max_failures"]


def test_builder_call_order_does_not_change_precedence() -> None:
    """Adding the file layer before env still lets the file win."""
    env = {"SVC_CB_MAX_FAILURES": "7"}

    config = (
        ConfigBuilder("svc", environ=env)
        .with_values("file", max_failures=9)
        .from_environment()
        .build()
    )

    assert 9 == config.max_failures


def test_builder_reads_a_file_layer_with_its_presets(tmp_path: Path) -> None:
    """from_file() adds the file's breaker entry and presets, with field provenance."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text(
        "version: 1\npresets:\n  fast: {reset_timeout: 5s}\n"
        "breakers:\n  cart:\n    preset: fast\n    max_failures: 2\n"
    )

    explained = ConfigBuilder("cart", environ={}).from_file(path).explain()

    assert (2, f"file:{path}#breakers.cart.max_failures") == explained["max_failures"]
    assert (5.0, f"preset:fast (file:{path}#presets.fast.reset_timeout)") == explained[
        "reset_timeout"
    ]


def test_builder_refuses_a_bad_file_entry(tmp_path: Path) -> None:
    """A bad value in the file is a ConfigError naming the field's place."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\nbreakers:\n  cart:\n    max_failures: zero\n")

    with pytest.raises(
        ConfigError,
        match=(
            rf'^breaker "cart": field "max_failures" from source '
            rf'"file:{path}#breakers.cart.max_failures" must be an integer, '
            r"got 'zero'$"
        ),
    ):
        ConfigBuilder("cart", environ={}).from_file(path)
