"""The status publisher: what the store holds follows the process, failures included."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol._agent import StatusPublisher
from cbcontrol.exceptions import StoreError
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

WAIT_S = 5.0


class LeasedWriter:
    """
    A status writer that behaves as the etcd one does: it keeps what it is given,
    a write can fail (the lease is gone), and a new lease writes all it was given.
    """

    def __init__(self) -> None:
        self.given: dict[str, Any] = {}  # what it was asked to hold
        self.stored: dict[str, Any] = {}  # what the store holds
        self.failures = 0
        self.lock = threading.Lock()

    def publish(
        self,
        identity: Mapping[str, Any] | None,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Keep the changes, then write them, or fail while ``failures`` last."""
        with self.lock:
            changes = dict(records)
            if identity is not None:
                changes["identity"] = {
                    k: v for k, v in identity.items() if k != "updated_at"
                }
            self.given.update(changes)
            if self.failures:
                self.failures -= 1
                msg = "etcd: requested lease not found"
                raise StoreError(msg)
            self.stored.update(changes)

    def new_lease(self) -> None:
        """The lease keeper replaced a lost lease: everything given is written."""
        with self.lock:
            self.stored = dict(self.given)

    def keepalive(self) -> None:
        """Nothing to refresh here."""

    def close(self) -> None:
        """Nothing to withdraw here."""


class Process:
    """What the publisher reads: an identity and one breaker's record."""

    def __init__(self) -> None:
        self.identity: dict[str, Any] = {"health": "ok"}
        self.record: dict[str, Any] = {"state": "closed"}


@pytest.fixture
def published() -> Iterator[tuple[StatusPublisher, LeasedWriter, Process]]:
    """A running publisher on a leased writer, with its first status written."""
    writer, process = LeasedWriter(), Process()
    publisher = StatusPublisher(
        writer,
        identity=lambda: dict(process.identity),
        record=lambda _: dict(process.record),
        names=lambda: ["payment"],
    )
    publisher.start()
    assert wait_until(lambda: "payment" in writer.stored, timeout=WAIT_S)
    yield publisher, writer, process
    publisher.close()


def test_an_identity_back_to_what_was_written_before_a_failure_is_written_again(
    published: tuple[StatusPublisher, LeasedWriter, Process],
) -> None:
    """A held state fails to publish, a new lease writes it, the hold ends: the
    store must not keep showing the hold (the wiped-etcd incident)."""
    publisher, writer, process = published

    writer.failures = 1
    process.identity = {"health": "history went backwards"}
    publisher.mark_identity()
    assert wait_until(lambda: writer.failures == 0, timeout=WAIT_S)
    process.identity = {"health": "ok"}  # accepted before the retry
    writer.new_lease()
    publisher.mark_identity()

    assert wait_until(
        lambda: writer.stored["identity"] == {"health": "ok"}, timeout=WAIT_S
    ), writer.stored


def test_a_record_back_to_what_was_written_before_a_failure_is_written_again(
    published: tuple[StatusPublisher, LeasedWriter, Process],
) -> None:
    """A breaker opens while the store fails, then closes again: the store must
    not be left showing it open."""
    publisher, writer, process = published

    writer.failures = 1
    process.record = {"state": "open"}
    publisher.mark(["payment"])
    assert wait_until(lambda: writer.failures == 0, timeout=WAIT_S)
    process.record = {"state": "closed"}  # closed again before the retry
    writer.new_lease()
    publisher.mark(["payment"])

    assert wait_until(
        lambda: writer.stored["payment"] == {"state": "closed"}, timeout=WAIT_S
    ), writer.stored
