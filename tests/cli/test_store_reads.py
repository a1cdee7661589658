"""
ControlStore's reads that tools build on: status documents and stored specs.

Against both stores, with real instances: what `instance_documents()` returns is
what validating every status gives, whatever format an instance wrote.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def test_status_documents_are_the_validated_statuses(env: StoreEnv):
    """Statuses of this format, of another format, and garbage: as `instances()`."""
    env.instance("payment")
    env.instance("payment", "analytics", app="search")
    env.fake_instance("payment")  # no `format`: written by another cbcontrol
    env.put_status("garbage", '{"format": 0, "instance_id": 7}')
    env.put_status("not-json", "{")
    with env.open() as store:
        documents = store.instance_documents()
        statuses = store.instances()

    assert [s.model_dump(mode="json") for s in statuses] == documents
    assert 3 == len(documents)


def test_a_stored_spec_is_validated_when_asked(env: StoreEnv):
    """A spec's error and generation come from validating it, on first use."""
    env.cbctl("set", "payment", "--max-failures", "3", "--no-wait")
    with env.open() as store:
        stored = store.breakers()["payment"]

    assert (None, 1, 3) == (stored.error, stored.generation, stored.spec.max_failures)


def test_importing_cbcontrol_loads_no_config_models():
    """`import cbcontrol` is cheap; the models (pydantic) load on first use."""
    code = (
        "import sys, cbcontrol, cbcontrol.config\n"
        "before = 'pydantic' in sys.modules\n"
        "from cbcontrol import BreakerConfig, CircuitBreaker\n"
        "CircuitBreaker('x', BreakerConfig(max_failures=2))\n"
        "print(before, 'pydantic' in sys.modules)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "False True\n" == result.stdout
