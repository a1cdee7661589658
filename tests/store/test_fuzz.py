"""
Hypothesis fuzzing of every parser that reads store or command-line input.

Each parser, fed anything, either returns its result or raises its one documented
error with a bounded message: never another exception, never a recursion error,
never a message that quotes a whole document. Example counts are bounded so the file
runs in seconds.
"""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cbcontrol
from cbcontrol._cache import DesiredCache
from cbcontrol._labels import Selector, parse_labels
from cbcontrol._limits import MAX_DEPTH, DocumentError, load_json, load_object
from cbcontrol._names import is_name
from cbcontrol.config import InstanceStatus, parse_duration
from cbcontrol.config._env import EnvSource
from cbcontrol.config._yamldoc import load_yaml, parse_document
from cbcontrol.exceptions import ConfigError
from cbcontrol.store import MemoryStore, Scope, parse_store_url
from cbcontrol.store._keys import classify
from cbcontrol.store._records import HistoryRecord
from cbcontrol.store._status import instance_document

if TYPE_CHECKING:
    from collections.abc import Callable

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
MESSAGE_LIMIT = 800  # an error quotes an excerpt, never the document
_T = TypeVar("_T")


def attempt(
    call: Callable[[], _T], expected: type[Exception] | tuple[type[Exception], ...]
) -> tuple[_T | None, str | None]:
    """``(result, None)``, or ``(None, message)`` when ``call`` raised ``expected``."""
    try:
        return call(), None
    except expected as exc:
        return None, str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
nesting = st.builds(
    lambda depth, opener: opener * depth + "1" + {"[": "]", "{": "}"}[opener] * depth,
    st.integers(0, 3000),
    st.sampled_from(["[", "{"]),
)


@SETTINGS
@given(raw=st.binary(max_size=300) | nesting.map(str.encode))
def test_json_documents_parse_or_fail_with_a_short_message(raw: bytes) -> None:
    """Any bytes: a JSON value within the limits, or a DocumentError that names it."""
    value, error = attempt(lambda: load_json(raw, 'key "x"'), DocumentError)

    if error is None:
        assert json.loads(raw) == value
    else:
        assert error.startswith('key "x" ')
        assert len(error) < MESSAGE_LIMIT


@SETTINGS
@given(value=json_values)
def test_a_json_object_reads_back_as_written(value: Any) -> None:
    """Valid JSON is read as the standard library reads it; non-objects refused."""
    raw = json.dumps(value, allow_nan=True).encode()

    found, error = attempt(lambda: load_object(raw, "doc"), DocumentError)

    if error is None:
        assert json.loads(raw) == found
    else:
        assert (
            not isinstance(value, dict) or "not a number" in error or "range" in error
        )


yaml_text = st.text(
    alphabet=string.ascii_letters + string.digits + " :-[]{},&*<>!|'\"#\n\t@%",
    max_size=300,
)


@SETTINGS
@given(text=yaml_text)
def test_yaml_documents_parse_or_fail_with_a_short_message(text: str) -> None:
    """Any text as a config file: entries, or a DocumentError naming the file."""
    parsed, error = attempt(
        lambda: parse_document(text.encode(), "/x.yaml"), DocumentError
    )

    if parsed is not None:
        assert all((e.data is None) != (e.error is None) for e in parsed.entries)
    else:
        assert str(error).startswith('file "/x.yaml"')
        assert len(str(error)) < MESSAGE_LIMIT


@SETTINGS
@given(
    width=st.integers(1, 12),
    levels=st.integers(1, 12),
    merge=st.booleans(),
)
def test_alias_and_merge_chains_are_refused_before_they_blow_up(
    width: int, levels: int, merge: bool
) -> None:
    """However aliases multiply, the loader stays within its value budget."""
    lines = ["a0: &a0 {k: 1}" if merge else "a0: &a0 [x, x]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        body = f"{{<<: [{refs}], k{level}: 1}}" if merge else f"[{refs}]"
        lines.append(f"a{level}: &a{level} {body}")
    text = "\n".join(lines).encode()

    _, error = attempt(lambda: load_yaml(text, "/x.yaml"), DocumentError)

    assert error is None or "expands to more than" in error


@SETTINGS
@given(depth=st.integers(0, 60))
def test_deep_yaml_is_refused_by_depth(depth: int) -> None:
    """Nesting past the limit is refused, never a RecursionError."""
    text = "x: " + "[" * depth + "]" * depth

    _, error = attempt(lambda: load_yaml(text.encode(), "/x.yaml"), DocumentError)

    assert (error is None) == (depth < MAX_DEPTH)
    assert error is None or "nests deeper" in error


@SETTINGS
@given(key=st.text(max_size=60))
def test_every_key_is_classified_and_names_follow_the_grammar(key: str) -> None:
    """A key gives its kind and a valid name, or ``invalid``: never a shadow name."""
    kind, name, instance = classify(key)

    if kind in ("breakers", "presets", "instances"):
        assert is_name(name)
        assert key == f"{kind}/{name}"
    elif kind == "status":
        assert is_name(name)
        assert is_name(instance)
        assert key == f"status/{name}/{instance}"


@SETTINGS
@given(url=st.text(max_size=80))
def test_store_urls_parse_or_say_what_is_accepted(url: str) -> None:
    """Any text: a StoreURL, or a ConfigError of bounded size."""
    _, error = attempt(lambda: parse_store_url(url, environ={}), ConfigError)

    assert len(error or "") < 2_000


@SETTINGS
@given(
    scheme=st.sampled_from(["etcd", "etcds", "http", "", "etcd:/"]),
    password=st.text(string.ascii_letters + string.digits + "@:/%!", min_size=8),
    rest=st.text(max_size=40),
)
def test_a_password_in_any_store_url_is_never_shown(
    scheme: str, password: str, rest: str
) -> None:
    """Parsed or refused, a URL's password appears in no message and no repr."""
    assume(password not in rest and password not in scheme)

    def shown(secret: str) -> str:
        url = f"{scheme}://ops:{secret}@{rest}"
        parsed, error = attempt(lambda: parse_store_url(url, environ={}), ConfigError)
        return error or f"{parsed} {parsed!r}"

    # A password that is a word of the message itself (`argument`) proves nothing.
    assume(password not in shown("0" * len(password)))

    assert password not in shown(password)


@SETTINGS
@given(text=st.text(alphabet="az=!,() -_.in/\x00", max_size=40) | st.text(max_size=40))
def test_selectors_parse_or_are_refused_naming_the_rule(text: str) -> None:
    """Any text: a selector whose canonical text parses to itself, or a ConfigError."""
    selector, error = attempt(lambda: Selector.parse(text), ConfigError)

    if selector is not None:
        assert selector == Selector.parse(str(selector))
    else:
        assert error is not None
        assert len(error) < MESSAGE_LIMIT


@SETTINGS
@given(text=st.text(max_size=60))
def test_any_labels_text_gives_labels_and_errors_never_an_exception(text: str) -> None:
    """CBCONTROL_LABELS from a deployment never stops an application."""
    labels, errors = parse_labels(text)

    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    assert all(len(str(e)) < MESSAGE_LIMIT for e in errors)


@SETTINGS
@given(
    values=st.dictionaries(
        st.sampled_from(["MAX_FAILURES", "RESET_TIMEOUT", "JITTER", "PRESET", "X"]),
        st.text(max_size=40),
        max_size=4,
    )
)
def test_environment_values_become_a_layer_or_reported_errors(
    values: dict[str, str],
) -> None:
    """Any env values: a layer and errors, never an exception."""
    environ = {f"PAYMENT_CB_{k}": v for k, v in values.items()}

    layer, errors = EnvSource(environ).layer("payment")

    assert set(layer.values) | {e.field for e in errors} <= {
        "max_failures",
        "reset_timeout",
        "jitter",
        "preset",
        *environ,
    }


@SETTINGS
@given(text=st.text(max_size=30))
def test_durations_parse_or_say_what_is_accepted(text: str) -> None:
    """Any text: seconds, or a ValueError naming the accepted forms."""
    seconds, error = attempt(lambda: parse_duration(text), ValueError)

    assert (seconds or 0) >= 0
    assert error is None or "must be a duration" in error


records = st.dictionaries(
    st.sampled_from(
        [
            *("state", "gen", "digest", "cfg", "calls", "window", "opened"),
            *("since", "retry_at", "reason", "error", "local"),
        ]
    ),
    json_values,
    max_size=8,
)


@SETTINGS
@given(
    identity=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    breakers=st.dictionaries(st.sampled_from(["a", "b"]), records, max_size=2),
)
def test_any_status_reads_as_a_valid_instance_status(
    identity: dict[str, Any], breakers: dict[str, dict[str, Any]]
) -> None:
    """Whatever an instance (or anyone) wrote, tools read a valid status from it."""
    document = instance_document(
        identity, breakers, specs={}, layer="etcd", store_presets={}, now=0.0
    )

    InstanceStatus.model_validate(document)


@SETTINGS
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_a_damaged_cache_is_ignored(raw: bytes, tmp_path_factory: Any) -> None:
    """A cache file of any content is read, or ignored with a warning."""
    cache = DesiredCache(tmp_path_factory.mktemp("cache"), "etcd://h:1/ns")
    cache.path.write_bytes(raw)

    cache.load()


@SETTINGS
@given(data=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_history_records_read_or_are_skipped(data: dict[str, Any]) -> None:
    """A stored record of any shape is read, or refused with one of three errors."""
    record, error = attempt(
        lambda: HistoryRecord.from_json(data), (KeyError, TypeError, ValueError)
    )

    assert (record is None) != (error is None)


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(
        ["breakers/payment", "breakers/other", "presets/payment", "epoch"]
    ),
    raw=st.binary(max_size=100) | nesting.map(str.encode),
)
def test_a_running_plane_survives_anything_in_any_desired_key(
    key: str, raw: bytes
) -> None:
    """Garbage in any key is reported; the config stays; later changes still land."""
    store = MemoryStore()
    with cbcontrol.connect(store, app="fuzz") as plane:
        payment = plane.breaker("payment")
        store.put("breakers", "payment", {"max_failures": 2})
        store.put_raw(key, raw)
        errors = plane.errors()
        store.put("breakers", "payment", {"max_failures": 3})
        documents = store.read(Scope.DESIRED).documents

        assert 3 == payment.config.max_failures
        assert all(len(e) < MESSAGE_LIMIT for e in errors.values())
        assert documents
